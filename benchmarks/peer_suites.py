"""Do no harm: real projects' own test suites, plainly, under the hook and after the codemod.

Run ``python benchmarks/peer_suites.py [--projects a,b] [--repeats N] [--json]
[--timeout S] [--workdir DIR] [--keep]`` (``--list`` names the projects).

For every project in `PROJECTS` (pinned releases of small open-source libraries
chosen for the traits that stress ``autodurable``: src layouts, a pytest
configuration with ``filterwarnings = error``, code that inspects its caller's
frames, decorators built with ``functools.wraps``, and real file, subprocess
and SQLite I/O) the script:

1. downloads the source distribution from PyPI (``pip download --no-deps
   --no-binary :all: NAME==VERSION``) into the work folder and unpacks it;
2. creates one plain virtual environment for the project (no system site
   packages) and installs into it this checkout of autodurable (editable, with
   the ``codemod`` extra), the project's pinned test requirements, and the
   project itself, editable, from the fixed folder ``run/`` where its suite runs;
3. runs the project's test suite three ways, each from a fresh copy of the
   unpacked source in ``run/`` (removed and copied again before every run):

   - ``plain``: ``python -m pytest -q -p no:cacheprovider ARGS``;
   - ``hook-cold``: ``autodurable run -q -- python -m pytest -q -p no:cacheprovider
     ARGS`` in a fresh copy (no caches: the first run of a checkout);
   - ``hook``: the same again in that copy (caches present: every later run);
   - ``codemod``: ``autodurable codemod --write PACKAGE`` in the copy, then as ``plain``;

4. reads every run's per-test outcomes from pytest's ``--junitxml`` report and
   prints, per project: the tests, those that pass plainly but not under the
   hook or after the codemod (regressions: failed, error, skipped or not run,
   with the first line of their error), the median wall time of each variant
   over ``--repeats`` runs and the ratios to plain (regressions of the hook are
   those of either hook run).

Invariants:
- Nothing downloaded is ever written inside this repository: the work folder is
  a new temporary folder (removed at the end unless ``--keep``) or ``--workdir``,
  which must not lie under a folder holding a ``pyproject.toml`` (the hook and
  the codemod would take that folder for the project's root). A ``--workdir``
  is kept and reused: sdists are not downloaded twice and a venv is rebuilt
  only when its project's pins, this Python or autodurable's pyproject.toml change.
- The three variants of a run see the same source, the same venv, the same
  pytest arguments and the same deselected tests; only the variant differs.
  The subprocesses get no ``PYTHONPATH``, ``AUTODURABLE_*`` or ``PYTEST_*``
  variables from the caller, so the state of the hook lives in the copy
  (``.autodurable/``) and starts empty each run.
- Tests are deselected only where they fail plainly in this environment
  (running as root, order-dependent tests); each is listed with its reason.
- The hook's project root is the copy (it rewrites the tests too, as ``autodurable
  run`` would); the codemod is given only the project's package (`Project.package`).
- A test "passes plainly" when it passed in every plain run; a regression of a
  variant is such a test that did not pass in at least one run of the variant.
- The exit code is 0 whatever the suites do (this is a benchmark, not a test);
  1 when the harness itself failed for a project (download, unpacking or
  installation), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from _peer_projects import PROJECTS, Project  # next to this script: on sys.path when run

ROOT = Path(__file__).resolve().parent.parent  # the autodurable checkout this script lives in

# "hook-cold" runs the hook in a fresh copy (no caches: the project is analysed and
# rewritten); "hook" runs it again in that copy, as a developer's next run does.
VARIANTS = ("plain", "hook-cold", "hook", "codemod")
PASSED, FAILED, ERROR, SKIPPED, MISSING = "passed", "failed", "error", "skipped", "not run"
LISTED = 10  # regressions listed per project and variant in the text report
PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider")


# -- running commands ---------------------------------------------------------------------


def log(message: str) -> None:
    """Progress, on stderr (stdout is for the report)."""
    print(message, file=sys.stderr, flush=True)


class HarnessError(Exception):
    """The harness could not set a project up (download, unpacking, installation)."""


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of every command: the caller's, in `venv`, without leaking settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONBREAKPOINT")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("AUTODURABLE_", "PYTEST_", "COV_CORE_"))
    }
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def run_logged(
    command: Sequence[str], cwd: Path, env: dict[str, str], logfile: Path, timeout: float | None
) -> tuple[int | None, float]:
    """Run `command`, its output into `logfile`; (exit code or None on timeout, seconds).

    The command runs in a session of its own so that a timeout kills it and
    everything it started.
    """
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("wb") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        seconds = time.perf_counter() - start
        # a suite may leave children behind (servers, sleepers): end them, they are ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    return code, seconds


def tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def must(command: Sequence[str], cwd: Path, env: dict[str, str], logfile: Path) -> None:
    """Run a set-up command; a failure is the harness's (HarnessError with the log's tail)."""
    code, _ = run_logged(command, cwd, env, logfile, timeout=1800)
    if code != 0:
        raise HarnessError(f"{' '.join(command[:6])}... failed ({code}):\n{tail(logfile)}")


# -- setting a project up -----------------------------------------------------------------


def normalized(name: str) -> str:
    """A distribution name as sdist file names spell it (PEP 625, and the older spellings)."""
    return name.lower().replace("-", "_").replace(".", "_")


def find_sdist(folder: Path, project: Project) -> Path | None:
    """The downloaded sdist of `project` in `folder`, if there is one."""
    for path in sorted(folder.glob("*")):
        stem = path.name
        for suffix in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        else:
            continue
        name, _, version = stem.rpartition("-")
        if normalized(name) == normalized(project.dist) and version == project.version:
            return path
    return None


def download(project: Project, folder: Path, logs: Path) -> Path:
    """The project's sdist, downloaded from PyPI into `folder` unless it is there already."""
    folder.mkdir(parents=True, exist_ok=True)
    found = find_sdist(folder, project)
    if found is not None:
        return found
    spec = f"{project.dist}=={project.version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    must([*command, "-d", str(folder), spec], folder, dict(os.environ), logs / "download.log")
    found = find_sdist(folder, project)
    if found is None:
        raise HarnessError(f"pip download {spec} left no sdist in {folder}")
    return found


def unpack(archive: Path, target: Path) -> None:
    """Unpack an sdist so that `target` is its root folder (the one with PKG-INFO)."""
    scratch = Path(tempfile.mkdtemp(prefix="unpack-", dir=target.parent))
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(scratch)
        else:
            with tarfile.open(archive) as bundle:
                bundle.extractall(scratch, filter="data")
        entries = list(scratch.iterdir())
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else scratch
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(root), str(target))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fresh_copy(pristine: Path, run: Path) -> None:
    """Replace `run` with a new copy of the unpacked source."""
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(pristine, run, symlinks=True)


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / "bin" / "python"


def fingerprint(project: Project) -> str:
    """What a project's venv was built from (pins, Python, autodurable's dependencies)."""
    key = [project.dist, project.version, *project.requirements, sys.version, str(ROOT)]
    key.append((ROOT / "pyproject.toml").read_text())  # autodurable's own dependencies
    return hashlib.sha256("\n".join(key).encode()).hexdigest()


def set_up(project: Project, home: Path, sdists: Path) -> tuple[Path, Path, Path]:
    """Download, unpack and install `project`; (pristine source, run folder, venv)."""
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    archive = download(project, sdists, logs)
    pristine, run, venv = home / "pristine", home / "run", home / "venv"
    marker = venv / "peer-suites.fingerprint"
    if not pristine.is_dir() or not marker.is_file():
        unpack(archive, pristine)
    if marker.is_file() and marker.read_text() == fingerprint(project):
        return pristine, run, venv
    log(f"  {project.key}: creating the venv and installing (log: {logs / 'install.log'})")
    shutil.rmtree(venv, ignore_errors=True)
    must([sys.executable, "-m", "venv", str(venv)], home, clean_env(venv), logs / "venv.log")
    env = clean_env(venv)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    requirements = [f"-e{ROOT}[codemod]", *project.requirements]
    must([*pip, *requirements], home, env, logs / "install.log")
    fresh_copy(pristine, run)
    must([*pip, "-e", str(run)], home, env, logs / "install-project.log")
    marker.write_text(fingerprint(project))
    return pristine, run, venv


# -- running a suite ----------------------------------------------------------------------


@dataclass
class Case:
    """One test's outcome in one run, with the first of its error where it did not pass."""

    outcome: str
    message: str = ""
    detail: str = ""


@dataclass
class Run:
    """One run of a suite in one variant."""

    variant: str
    seconds: float
    exit_code: int | None  # None: killed at the timeout
    cases: dict[str, Case]
    log: str  # where its output is
    log_tail: str = ""
    codemod_seconds: float | None = None
    codemod_exit: int | None = None
    codemod_summary: str = ""


SEVERITY = {PASSED: 0, SKIPPED: 1, FAILED: 2, ERROR: 3}


def read_junit(path: Path) -> dict[str, Case]:
    """Per-test outcomes from a pytest junit XML report (empty if there is none).

    A test is named ``classname::name`` as the report gives them; a test
    reported twice (a failure in its teardown) keeps its worst outcome.
    """
    if not path.is_file():
        return {}
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError:
        return {}
    cases: dict[str, Case] = {}
    for element in tree.getroot().iter("testcase"):
        ident = f"{element.get('classname', '')}::{element.get('name', '')}"
        case = Case(PASSED)
        for tag, outcome in (("error", ERROR), ("failure", FAILED), ("skipped", SKIPPED)):
            child = element.find(tag)
            if child is not None:
                text = (child.text or "").strip()
                message = (child.get("message") or "").strip() or last_line(text)
                case = Case(outcome, message[:500], text[-3000:])
                break
        previous = cases.get(ident)
        if previous is None or SEVERITY[case.outcome] > SEVERITY[previous.outcome]:
            cases[ident] = case
    return cases


def last_line(text: str) -> str:
    """The last non-empty line of a traceback: usually the exception."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def last_error_line(text: str) -> str:
    """The last ``E`` line of a pytest traceback (the innermost error), else ''."""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    hints = ("...Full output truncated", "Use -v to get", "Omitting ")  # pytest's, not errors
    lines = [line for line in lines if line and not line.startswith(hints)]
    return lines[-1] if lines else ""


def pytest_command(python: Path, project: Project, junit: Path) -> list[str]:
    """The pytest command line of every variant."""
    command = [str(python), *PYTEST, f"--junitxml={junit}", "-o", "junit_logging=no"]
    for node, _why in project.deselect:
        command += ["--deselect", node]
    return [*command, *project.pytest_args, *project.tests]


def run_variant(
    project: Project,
    variant: str,
    index: int,
    paths: tuple[Path, Path, Path],
    home: Path,
    timeout: float,
) -> Run:
    """Run the suite once in `variant` from a fresh copy of the source."""
    pristine, run, venv = paths
    if variant != "hook":  # the warm run reuses the cold run's copy and its caches
        fresh_copy(pristine, run)
    env = clean_env(venv)
    logs = home / "logs"
    junit = home / "junit" / f"{variant}-{index}.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)
    command = pytest_command(venv_python(venv), project, junit)
    result_extra: dict[str, Any] = {}
    if variant in ("hook", "hook-cold"):
        command = [str(venv / "bin" / "autodurable"), "run", "-q", "--", *command]
    elif variant == "codemod":
        codemod_log = logs / f"codemod-{index}.log"
        codemod = [str(venv / "bin" / "autodurable"), "codemod", "--write", *project.package]
        code, seconds = run_logged(codemod, run, env, codemod_log, timeout)
        result_extra = {
            "codemod_seconds": seconds,
            "codemod_exit": code,
            "codemod_summary": last_line(tail(codemod_log, 3)),
        }
    logfile = logs / f"{variant}-{index}.log"
    code, seconds = run_logged(command, run, env, logfile, timeout)
    return Run(
        variant,
        seconds,
        code,
        read_junit(junit),
        str(logfile),
        tail(logfile, 8),
        **result_extra,
    )


# -- comparing ----------------------------------------------------------------------------


@dataclass
class Regression:
    """A test that passes plainly and did not pass in a variant."""

    test: str
    outcome: str
    message: str  # pytest's one-line message
    excerpt: str  # the innermost error line of the traceback, where it says more
    detail: str  # the end of the traceback


@dataclass
class VariantReport:
    """A variant's timings and regressions over the repeats."""

    seconds: list[float]
    median: float
    ratio: float | None  # median over the plain median
    exit_codes: list[int | None]
    regressions: list[Regression]
    log: str
    log_tail: str
    codemod_seconds: float | None = None
    codemod_exit: int | None = None
    codemod_summary: str = ""


@dataclass
class ProjectReport:
    """What the script found for one project."""

    project: str
    version: str
    traits: list[str]
    deselected: list[list[str]]
    tests: int = 0
    plain_passed: int = 0
    plain_outcomes: dict[str, int] = field(default_factory=dict)
    variants: dict[str, VariantReport] = field(default_factory=dict)
    setup_seconds: float = 0.0
    harness_error: str = ""


def regressions(passing: Iterable[str], runs: list[Run]) -> list[Regression]:
    """The tests of `passing` that did not pass in one of `runs` (the first such run's)."""
    found = []
    for test in sorted(passing):
        for run in runs:
            case = run.cases.get(test, Case(MISSING))
            if case.outcome != PASSED:
                excerpt = last_error_line(case.detail)
                found.append(Regression(test, case.outcome, case.message, excerpt, case.detail))
                break
    return found


def compare(project: Project, runs: dict[str, list[Run]]) -> ProjectReport:
    """Compare the variants' runs with the plain ones."""
    report = ProjectReport(
        project.key, project.version, list(project.traits), [list(d) for d in project.deselect]
    )
    plain = runs["plain"]
    first = plain[0].cases
    report.tests = len(first)
    for case in first.values():
        report.plain_outcomes[case.outcome] = report.plain_outcomes.get(case.outcome, 0) + 1
    passing = [
        t for t in first if all(r.cases.get(t, Case(MISSING)).outcome == PASSED for r in plain)
    ]
    report.plain_passed = len(passing)
    plain_median = statistics.median(r.seconds for r in plain)
    for variant in VARIANTS:
        these = runs[variant]
        median = statistics.median(r.seconds for r in these)
        codemod = [r.codemod_seconds for r in these if r.codemod_seconds is not None]
        report.variants[variant] = VariantReport(
            seconds=[round(r.seconds, 3) for r in these],
            median=round(median, 3),
            ratio=round(median / plain_median, 3) if plain_median > 0 else None,
            exit_codes=[r.exit_code for r in these],
            regressions=[] if variant == "plain" else regressions(passing, these),
            log=these[0].log,
            log_tail=these[0].log_tail,
            codemod_seconds=round(statistics.median(codemod), 3) if codemod else None,
            codemod_exit=these[0].codemod_exit,
            codemod_summary=these[0].codemod_summary,
        )
    return report


def bench(project: Project, workdir: Path, repeats: int, timeout: float) -> ProjectReport:
    """Set `project` up, run its suite in every variant `repeats` times and compare."""
    home = workdir / project.key
    start = time.perf_counter()
    log(f"{project.key} {project.version}: setting up")
    try:
        paths = set_up(project, home, workdir / "sdists")
    except (HarnessError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        report = ProjectReport(project.key, project.version, list(project.traits), [])
        report.harness_error = str(exc)
        return report
    setup_seconds = time.perf_counter() - start
    runs: dict[str, list[Run]] = {variant: [] for variant in VARIANTS}
    for index in range(repeats):
        for variant in VARIANTS:  # interleaved, so that a slow spell of the machine hits all
            log(f"  {project.key}: {variant} run {index + 1}/{repeats}")
            run = run_variant(project, variant, index, paths, home, timeout)
            log(
                f"    {run.seconds:.1f} s, exit {run.exit_code}, "
                f"{sum(c.outcome == PASSED for c in run.cases.values())}/{len(run.cases)} passed"
            )
            runs[variant].append(run)
    report = compare(project, runs)
    report.setup_seconds = round(setup_seconds, 1)
    return report


# -- reporting ----------------------------------------------------------------------------


def one_line(text: str, width: int = 150) -> str:
    """`text` on one line, cut at `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def exits(codes: list[int | None]) -> str:
    """Exit codes as the report prints them (``timeout`` for a killed run)."""
    return ",".join("timeout" if code is None else str(code) for code in codes)


def print_report(reports: list[ProjectReport], repeats: int, timeout: float) -> None:
    """The human-readable report on stdout."""
    for report in reports:
        print(f"\n== {report.project} {report.version}  ({', '.join(report.traits)})")
        if report.harness_error:
            print(f"  HARNESS ERROR: {report.harness_error}")
            continue
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(report.plain_outcomes.items()))
        print(f"  tests: {report.tests} ({outcomes}); passing plainly: {report.plain_passed}")
        for node, why in report.deselected:
            print(f"  deselected (fails plainly here: {why}): {node}")
        for variant, result in report.variants.items():
            ratio = "" if variant == "plain" else f"  x{result.ratio}"
            line = f"  {variant:8} {result.median:7.2f} s{ratio}  exit {exits(result.exit_codes)}"
            if variant != "plain":
                line += f"  regressions: {len(result.regressions)}"
            if result.codemod_seconds is not None:
                line += (
                    f"  (codemod {result.codemod_seconds:.1f} s, exit {result.codemod_exit}: "
                    f"{one_line(result.codemod_summary, 80)})"
                )
            print(line)
            for regression in result.regressions[:LISTED]:
                print(f"      {regression.test}  [{regression.outcome}]")
                shown = one_line(regression.message)
                if shown:
                    print(f"          {shown}")
                if regression.excerpt and regression.excerpt not in shown:
                    print(f"          ... {one_line(regression.excerpt)}")
            if len(result.regressions) > LISTED:
                print(f"      ... and {len(result.regressions) - LISTED} more")
            if result.regressions and not any(r.message for r in result.regressions):
                print(f"      output ({result.log}):")
                for text in result.log_tail.splitlines():
                    print(f"        {one_line(text)}")
    print(f"\nSummary (median of {repeats} run(s), timeout {timeout:.0f} s a suite)")
    header = (
        f"{'project':15} {'version':9} {'tests':>6} {'plain s':>8} {'cold hook x':>11} "
        f"{'hook x':>7} {'codemod x':>9} {'hook regr':>9} {'codemod regr':>12}"
    )
    print(header)
    for report in reports:
        if report.harness_error:
            print(f"{report.project:15} {report.version:9} harness error")
            continue
        plain, cold, hook, codemod = (report.variants[v] for v in VARIANTS)
        hook_regressions = {r.test for r in cold.regressions} | {r.test for r in hook.regressions}
        print(
            f"{report.project:15} {report.version:9} {report.tests:6} {plain.median:8.2f} "
            f"{cold.ratio or 0:11.2f} {hook.ratio or 0:7.2f} {codemod.ratio or 0:9.2f} "
            f"{len(hook_regressions):9} {len(codemod.regressions):12}"
        )


# -- command line -------------------------------------------------------------------------


def checkout_revision() -> str:
    """The autodurable commit measured, with ``+changes`` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if changes else head


def under_a_project(folder: Path) -> Path | None:
    """The nearest folder at or above `folder` holding a pyproject.toml, if any."""
    for parent in (folder, *folder.parents):
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--projects", help="comma-separated keys (default: all; --list)")
    parser.add_argument("--list", action="store_true", help="list the projects and exit")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant (median)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per suite run")
    parser.add_argument("--workdir", type=Path, help="work folder, kept and reused")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen projects' suites and print the report."""
    args = parse_args(argv)
    if args.list:
        for project in PROJECTS:
            print(f"{project.key:15} {project.version:9} {', '.join(project.traits)}")
        return 0
    by_key = {project.key: project for project in PROJECTS}
    chosen = list(PROJECTS)
    if args.projects:
        keys = [key.strip() for key in args.projects.split(",") if key.strip()]
        unknown = [key for key in keys if key not in by_key]
        if unknown:
            print(f"unknown project(s): {', '.join(unknown)} (--list)", file=sys.stderr)
            return 2
        chosen = [by_key[key] for key in keys]
    if args.repeats < 1:
        print("--repeats must be at least 1", file=sys.stderr)
        return 2
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="peer-suites-")) if temporary else args.workdir
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    enclosing = under_a_project(workdir)
    if enclosing is not None:
        print(
            f"--workdir {workdir} lies under {enclosing}, which holds a pyproject.toml: "
            "choose a folder outside any project",
            file=sys.stderr,
        )
        return 2
    log(f"work folder: {workdir}")
    revision = checkout_revision()
    try:
        reports = [bench(project, workdir, args.repeats, args.timeout) for project in chosen]
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            log(f"removed {workdir} and the logs in it (--keep or --workdir keeps them)")
    if args.json:
        document = {
            "python": sys.version.split()[0],
            "autodurable": revision,
            "repeats": args.repeats,
            "timeout": args.timeout,
            "projects": [asdict(report) for report in reports],
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"autodurable {revision} ({ROOT}), Python {sys.version.split()[0]}")
        print_report(reports, args.repeats, args.timeout)
    return 1 if any(report.harness_error for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
