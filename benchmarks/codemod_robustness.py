"""Robustness and speed of the make_durable codemod on real code.

Run ``python benchmarks/codemod_robustness.py [--jobs N] [PACKAGE ...]``
(``--quick``: the standard library's ``json`` only, for the smoke test).

Each package (by default the standard library's ``json``, ``http`` and
``email`` and, when installed, ``pydantic`` and ``wrapt``) is copied into a
temporary project of its own (a ``pyproject.toml`` marks the root) and the
codemod runs over it twice, in diff mode (in memory: the engine behind
``autodurable codemod``, nothing written by it):

- ``default``: the project as it is: the shipped catalogue decides what does I/O;
- ``stress``: ``[tool.autodurable] io`` also names ``os``, ``sys``, ``io``, ``re``,
  ``struct``, ``time``, ``len`` and ``str``, so that almost every function does
  "I/O": most become steps or inline workflows, and every kind of site
  (expressions, loops, with-blocks, clocks) is written many times over.

For every run it checks, and fails (exit 1) if not: no file failed; every file
that changed still parses and compiles; and a second pass over the changed
files (written into the copy) changes nothing. It prints, per package and
mode, the files, how many changed, the seconds of the first pass (analysis of
the whole package included) and files per second.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autodurable.codemods._run import CHANGED, FAILED, run_codemod  # noqa: E402

STDLIB = ["json", "http", "email"]
THIRD_PARTY = ["pydantic", "wrapt"]
STRESS_IO = ["os", "sys", "io", "re", "struct", "time", "len", "str"]


def package_dir(name: str) -> Path | None:
    """Where an importable package's source lives (None if it is not installed)."""
    if name in STDLIB:
        return Path(sysconfig.get_paths()["stdlib"]) / name
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def make_project(folder: Path, name: str, source: Path, stress: bool) -> Path:
    """Copy the package's Python files into a project of its own; its folder."""
    target = folder / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "tests", "*.so"))
    io = f"io = {STRESS_IO!r}\n" if stress else ""
    (folder / "pyproject.toml").write_text(f"[project]\nname = 'copy'\n\n[tool.autodurable]\n{io}")
    return target


def check(name: str, mode: str, source: Path, jobs: int) -> tuple[int, int, float]:
    """One package in one mode: (files, changed, seconds); raises AssertionError on a problem."""
    with tempfile.TemporaryDirectory(prefix="codemod-robustness-") as tmp:
        package = make_project(Path(tmp), name, source, mode == "stress")
        started = time.perf_counter()
        results = run_codemod([package], jobs=jobs)
        seconds = time.perf_counter() - started
        failed = [f"{r.path}: {r.reason}" for r in results if r.status == FAILED]
        assert not failed, f"{name}/{mode}: failed:\n" + "\n".join(failed)
        changed = [r for r in results if r.status == CHANGED]
        for result in changed:
            compile(result.new, result.path, "exec", dont_inherit=True)  # parses and compiles
            Path(result.path).write_text(result.new, encoding="utf-8")
        again = [r.path for r in run_codemod([package], jobs=jobs) if r.status != "unchanged"
                 and r.status != "skipped"]  # fmt: skip
        assert not again, f"{name}/{mode}: a second pass changed or failed:\n" + "\n".join(again)
        return len(results), len(changed), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="packages (default: json http email "
                        "pydantic wrapt)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--quick", action="store_true", help="json only, default mode")
    args = parser.parse_args(argv)
    names = args.packages or (["json"] if args.quick else STDLIB + THIRD_PARTY)
    modes = ["default"] if args.quick else ["default", "stress"]
    print(f"Python {sys.version.split()[0]}, jobs={args.jobs}")
    print(f"{'package':<10} {'mode':<8} {'files':>6} {'changed':>8} {'seconds':>8} {'files/s':>8}")
    total_files, total_seconds, problems = 0, 0.0, []
    for name in names:
        source = package_dir(name)
        if source is None:
            print(f"{name:<10} not installed: skipped")
            continue
        for mode in modes:
            try:
                files, changed, seconds = check(name, mode, source, args.jobs)
            except AssertionError as exc:
                problems.append(str(exc))
                print(f"{name:<10} {mode:<8} FAILED")
                continue
            total_files += files
            total_seconds += seconds
            rate = files / seconds if seconds else float("inf")
            print(f"{name:<10} {mode:<8} {files:>6} {changed:>8} {seconds:>8.2f} {rate:>8.1f}")
    if total_seconds:
        rate = total_files / total_seconds
        print(f"{'all':<10} {'':<8} {total_files:>6} {'':>8} {total_seconds:>8.2f} {rate:>8.1f}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
