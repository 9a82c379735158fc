"""An unmodified program made durable: killed with SIGKILL mid-way, then resumed.

    python examples/unmodified/demo.py [--keep]

1. starts a local price service that counts the requests it answers;
2. copies ``app.py`` (a plain program: no autodurable import, no decorators)
   into a new folder with a ``pyproject.toml`` of its own, so the run's state
   (``.autodurable/state.db`` there) starts empty every time;
3. runs ``autodurable run app.py URL`` and kills it with SIGKILL as soon as it
   reports its third label, like a power cut: no cleanup runs;
4. runs the very same command again: it resumes. The prices fetched and the
   labels written before the kill are replayed from the record, not done again;
5. checks the outside world: every price was asked for once and every label
   written once. Exits 1 if a finished step ran twice or anything else is off.

The folder is removed at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
KILL_AFTER = 3  # labels reported before the kill
INDENT = "     "

sys.path.insert(0, str(HERE))  # app.py and service.py sit next to this file
from app import ITEMS  # noqa: E402
from service import PriceService  # noqa: E402


def make_project(folder: Path) -> Path:
    """A project of its own for the program: the state database goes under it."""
    project = folder / "labels-project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "labels"\nversion = "0"\n')
    shutil.copy(HERE / "app.py", project / "app.py")
    return project


def command(url: str) -> list[str]:
    """``autodurable run app.py URL``, with this interpreter."""
    return [sys.executable, "-m", "autodurable", "run", "app.py", url]


def run_and_kill(project: Path, url: str) -> tuple[list[str], int]:
    """Start the program, SIGKILL it after its KILL_AFTER-th label line.

    Returns the lines it printed before the kill and its exit code.
    """
    child = subprocess.Popen(
        command(url), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    printed: list[str] = []
    try:
        for line in child.stdout:
            printed.append(line.rstrip("\n"))
            print(INDENT + printed[-1])
            if len(printed) == KILL_AFTER:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # the program is pausing between two labels
        _, err = child.communicate(timeout=60)
    for line in err.splitlines():
        print(INDENT + line)
    return printed, child.returncode


def run_to_the_end(project: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Run the same command again and show what it prints."""
    done = subprocess.run(command(url), cwd=project, capture_output=True, text=True, timeout=120)
    for line in (done.stderr + done.stdout).splitlines():  # autodurable's status line first
        print(INDENT + line)
    return done


def show_steps(project: Path, stderr: str) -> None:
    """Print the steps autodurable recorded for the run (``autodurable workflows steps``)."""
    found = re.search(r"\b(run-[0-9a-f]+)\b", stderr)
    if found is None:
        return
    steps = [sys.executable, "-m", "autodurable", "workflows", "steps", found.group(1)]
    done = subprocess.run(steps, cwd=project, capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        print(INDENT + line)


def labels_written(project: Path) -> Counter[str]:
    """How many times each item's label was appended to labels.txt."""
    path = project / "labels.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return Counter(line.split(":")[0] for line in lines)


def counts_line(service: PriceService, project: Path) -> str:
    asked = sum(service.requests.values())
    return f"price requests: {asked}, labels written: {sum(labels_written(project).values())}"


def check(service: PriceService, project: Path, finished: list[str]) -> list[str]:
    """The problems in what the outside world saw (none when all is well)."""
    problems = []
    labels = labels_written(project)
    # Only the first item not finished can have been in flight when the kill came.
    in_flight = next((item for item in ITEMS if item not in finished), None)
    for item in ITEMS:
        asked = service.requests[f"/price/{item}"]
        written = labels[item]
        if item in finished and (asked, written) != (1, 1):
            problems.append(
                f"{item} was finished before the kill, yet its price was asked for "
                f"{asked} times and its label written {written} times"
            )
        elif asked < 1 or written < 1:
            problems.append(f"{item} was never done (asked {asked}, written {written})")
        elif (asked, written) != (1, 1) and item != in_flight:
            problems.append(f"{item} was done more than once (asked {asked}, written {written})")
        elif (asked, written) != (1, 1):
            # A step in flight at the kill may run again: at least once, by design.
            print(f"   note: {item} was in flight at the kill and was done again")
    return problems


def demo(folder: Path) -> list[str]:
    """Run the demo in `folder`; return the problems found."""
    project = make_project(folder)
    with PriceService() as service:
        print(f"1. Started the price service at {service.url}")
        print(f"   The program: {project / 'app.py'} (a copy of examples/unmodified/app.py)")

        print()
        print(f"2. Running `autodurable run app.py {service.url}`,")
        print(f"   killed with SIGKILL once it has written label {KILL_AFTER}:")
        started = time.monotonic()
        printed, code = run_and_kill(project, service.url)
        if code != -signal.SIGKILL:
            return [f"the first run should die of SIGKILL, its exit code is {code}"]
        finished = [item for item in ITEMS if any(f"] {item}:" in line for line in printed)]
        print(f"   -> killed by SIGKILL after {time.monotonic() - started:.1f} s")
        print(f"   Now: {counts_line(service, project)}. Finished: {', '.join(finished)}.")

        print()
        print("3. Running the same command again. It resumes:")
        second = run_to_the_end(project, service.url)
        if second.returncode != 0:
            return [f"the second run failed with exit code {second.returncode}"]
        print("   (the program's own code runs again, so it prints its first lines again;")
        print("   the steps it had finished return their recorded results instead of running)")

        print()
        print("4. What the outside world saw:")
        labels = labels_written(project)
        for item in ITEMS:
            asked = service.requests[f"/price/{item}"]
            print(f"{INDENT}{item:<7} price asked for {asked}x, label written {labels[item]}x")
        problems = check(service, project, finished)
    if not problems:
        print(
            f"   -> the {len(finished)} items finished before the kill were replayed, "
            "not done again; the others were done once."
        )

    print()
    print("5. The steps recorded for the run (`autodurable workflows steps RUN_ID`):")
    show_steps(project, second.stderr)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the demo's folder")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="autodurable-unmodified-"))
    try:
        problems = demo(folder)
    finally:
        if args.keep:
            print(f"\nKept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1
    print("OK: killed mid-way and resumed; no finished step ran twice.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
