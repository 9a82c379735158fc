"""Start-up: what autodurable adds before a program's first line, and to its CLI.

Run ``python benchmarks/startup.py [--repeats 15]`` (``--quick``: 3 repeats, for
the smoke test). In a temporary project (a ``pyproject.toml`` and a one-line
``hello.py``), each command runs as a fresh process, the variants alternating
within each repeat so the machine's noise is spread over all of them, after
one untimed run of each (warm caches: bytecode, the hook's plan). Prints the
median wall time of each, and the comparisons the targets are about:

- ``import autodurable`` against ``python -c pass`` (the difference, in ms);
- ``autodurable run hello.py`` against ``python hello.py`` (the ratio);
- ``autodurable workflows list`` on a database with no workflows (ms).

The ``autodurable`` console script next to this interpreter is used when it
exists (as a user types it), else ``python -m autodurable``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("autodurable")
    found = str(script) if script.exists() else shutil.which("autodurable")
    return [found] if found else [sys.executable, "-m", "autodurable"]


def _variants(project: Path) -> dict[str, list[str]]:
    cli = _cli()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import autodurable'": [sys.executable, "-c", "import autodurable"],
        "python hello.py": [sys.executable, "hello.py"],
        "autodurable run hello.py": [*cli, "run", "hello.py"],
        "autodurable workflows list": [
            *cli,
            "workflows",
            "list",
            "--database-url",
            _empty(project),
        ],
    }


def _empty(project: Path) -> str:
    """A state database with its tables and no workflows."""
    url = f"sqlite:///{project / 'empty' / 'state.db'}"
    code = "import autodurable, sys; autodurable.configure(database_url=sys.argv[1]); "
    code += "from autodurable._core._runtime import get_runtime; get_runtime().store"
    subprocess.run([sys.executable, "-c", code, url], check=True, cwd=project, env=_env())
    return url


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTODURABLE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=cwd,
        env=_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 repeats")
    options = parser.parse_args()
    repeats = 3 if options.quick else options.repeats
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "pyproject.toml").write_text('[project]\nname = "hello"\nversion = "0"\n')
        (project / "hello.py").write_text('print("hello")\n')
        variants = _variants(project)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for command in variants.values():
            _time(command, project)  # warm: bytecode, the hook's plan
        names = list(variants)
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(_time(variants[name], project))
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"start-up, median of {repeats} runs each (ms):")
    for name, value in median.items():
        spread = (min(times[name]) * 1000, max(times[name]) * 1000)
        print(f"  {name:32} {value:7.1f}   (min {spread[0]:.1f}, max {spread[1]:.1f})")
    imported = median["python -c 'import autodurable'"] - median["python -c pass"]
    run = median["autodurable run hello.py"] / median["python hello.py"]
    print(f"import autodurable over python -c pass: {imported:+.1f} ms (target <= 35)")
    print(f"autodurable run hello.py / python hello.py: {run:.2f}x (target <= 2.5x)")
    listed = median["autodurable workflows list"]
    print(f"autodurable workflows list, no workflows: {listed:.1f} ms (target <= 120)")


if __name__ == "__main__":
    main()
