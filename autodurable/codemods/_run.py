"""``autodurable codemod``: write the durability plan into the source, or take it out.

Runs the libcst commands of this package
(`MakeDurableCommand`, or `StripDurableCommand` with ``--strip``) over files
and folders, the way ``ruff`` or ``pyupgrade`` run their fixers.

Invariants:
- Writes nothing unless asked (``--write``), and then only files found under
  the given paths, each atomically (temporary file, then rename), and only if
  it still holds what was read. Without ``--write`` it prints unified diffs.
- One plan per project: each project (the nearest pyproject.toml above a
  file) is analysed once, in this process, by `_plans.load_project`
  (the hook's own analysis), and every file gets its module's plan from it,
  in worker processes too (``--jobs``).
- A file that cannot be read, does not parse, makes the command fail, or whose
  result would not parse is reported and left untouched; the others go on.
  Results are values (`FileResult`), never exceptions.
- libcst (and the machinery for diffs and worker processes) is imported only
  when a codemod runs, so the other commands start as fast as before; without
  libcst the command says which extra to install.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .._analysis import ModulePlan

CHANGED, UNCHANGED, SKIPPED, FAILED = "changed", "unchanged", "skipped", "failed"
INSTALL_HINT = "pip install 'autodurable[codemod]'"
# Folders never walked into, as project discovery skips them.
_SKIP_DIRS = frozenset(
    {"__pycache__", "site-packages", "dist-packages", "node_modules", "build", "dist", ".git"}
)
_PROGRESS_MIN_FILES = 20  # fewer files are done before a bar would help


@dataclass
class FileResult:
    """What the codemod did (or would do) to one file."""

    path: str
    status: str  # CHANGED | UNCHANGED | SKIPPED | FAILED
    reason: str = ""  # why it was skipped or failed
    original: str = ""
    new: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Job:
    """One file's transform, as sent to a worker."""

    path: str
    source: str
    strip: bool
    unrecordable: str
    module_plan: ModulePlan | None = None
    module: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``autodurable codemod``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="apply the changes to the files")
    mode.add_argument(
        "--check",
        action="store_true",
        help="write nothing, print no diff; exit 1 when a file would change (for CI)",
    )
    parser.add_argument(
        "--strip",
        action="store_true",
        help="the inverse: take autodurable out again (decorators, recorded sites)",
    )
    parser.add_argument(
        "--unrecordable",
        choices=("rerun", "error"),
        default="rerun",
        help='rerun (default, as `autodurable run`): write unrecordable="rerun" on the '
        'decorators it adds; error: unrecordable="error" (the decorators\' default)',
    )
    parser.add_argument(
        "--jobs", "-j", type=int, default=1, metavar="N",
        help="files transformed in parallel (0: one per CPU; default 1)",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="only diffs and errors")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list skipped files and why"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``autodurable codemod``; returns the exit code."""
    try:
        import libcst  # noqa: F401
    except ImportError:
        print(
            f"autodurable: the codemod needs libcst, which is not installed: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"autodurable: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    if args.jobs < 0:
        print("autodurable: --jobs takes a number >= 0", file=sys.stderr)
        return 2
    progress = Progress(sys.stderr)
    results = run_codemod(
        args.paths,
        strip=args.strip,
        unrecordable=args.unrecordable,
        jobs=args.jobs or os.cpu_count() or 1,
        on_result=progress.update,
        on_start=progress.start,
    )
    progress.clear()
    failed = False
    for result in results:
        failed |= _report(result, args)
    changed = sum(r.status == CHANGED for r in results)
    if not args.quiet or failed:
        print(summary(results, written=args.write), file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0


def _report(result: FileResult, args: argparse.Namespace) -> bool:
    """Print what happened to one file; write it with --write. True if it failed."""
    shown = _display(result.path)
    if result.status == CHANGED:
        if args.write:
            problem = write_file(result.path, result.original, result.new)
            if problem:
                result.status, result.reason = FAILED, problem
            elif not args.quiet:
                print(f"rewrote {shown}", file=sys.stderr)
        elif args.check:
            print(f"would change: {shown}")
        else:
            sys.stdout.write(unified_diff(result.original, result.new, shown))
    if not args.quiet:
        for warning in result.warnings:
            print(f"{shown}: warning: {warning}", file=sys.stderr)
    if result.status == SKIPPED and args.verbose:
        print(f"{shown}: skipped: {result.reason}", file=sys.stderr)
    if result.status == FAILED:
        print(f"{shown}: failed: {result.reason}", file=sys.stderr)
        return True
    return False


def summary(results: Sequence[FileResult], *, written: bool) -> str:
    """The one-line summary: files changed / unchanged / skipped / failed."""
    count = {status: sum(r.status == status for r in results) for status in
             (CHANGED, UNCHANGED, SKIPPED, FAILED)}  # fmt: skip
    verb = "changed" if written else "would change"
    line = (
        f"autodurable codemod: {count[CHANGED]} file(s) {verb}, {count[UNCHANGED]} unchanged, "
        f"{count[SKIPPED]} skipped, {count[FAILED]} failed"
    )
    if count[CHANGED] and not written:
        line += " (nothing written: --write applies the changes)"
    return line


# -- the engine ---------------------------------------------------------------------------


def run_codemod(
    paths: Iterable[str | os.PathLike[str]],
    *,
    strip: bool = False,
    unrecordable: str = "rerun",
    jobs: int = 1,
    on_result: Callable[[FileResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[FileResult]:
    """Transform the Python files under `paths` (in memory: nothing is written).

    Each project is analysed once; its files are transformed with their
    module's plan, in `jobs` worker processes when more than one. The results
    come in the order of the (sorted) files.
    """
    files = gather_files(paths)
    prepared = _prepare(files, strip, unrecordable)
    if on_start is not None:
        on_start(len(prepared))
    pending = [item for item in prepared if isinstance(item, _Job)]
    done: dict[str, FileResult] = {}
    for result in _transform_all(pending, jobs):
        done[result.path] = result
        if on_result is not None:
            on_result(result)
    out: list[FileResult] = []
    for item in prepared:
        if isinstance(item, FileResult):
            if on_result is not None:
                on_result(item)
            out.append(item)
        else:
            out.append(done[item.path])
    return out


def gather_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The Python files given, and those in the folders given (skipping environments,
    caches and hidden folders, as project discovery does), each once, sorted."""
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_file():
            found.setdefault(os.path.realpath(path), path)
            continue
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(
                d
                for d in dirs
                if not d.startswith(".")
                and d not in _SKIP_DIRS
                and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
            )
            for name in names:
                if name.endswith(".py"):
                    file = Path(folder) / name
                    found.setdefault(os.path.realpath(file), file)
    return sorted(found.values())


def _prepare(files: list[Path], strip: bool, unrecordable: str) -> list[_Job | FileResult]:
    """A job per file to transform, or its result at once (skipped, unreadable)."""
    from autodurable.codemods._plans import Project, load_project, read_source
    from autodurable.codemods.make_durable import plan_changes, plan_warnings

    from .._project import project_root

    projects: dict[Path, Project] = {}
    out: list[_Job | FileResult] = []
    for file in files:
        path = str(file)
        if not path.endswith(".py"):
            out.append(FileResult(path, SKIPPED, "not a Python file"))
            continue
        if strip:
            try:
                out.append(_Job(path, read_source(file), True, unrecordable))
            except (OSError, UnicodeDecodeError) as exc:
                out.append(FileResult(path, FAILED, f"cannot be read as UTF-8: {exc}"))
            continue
        root = project_root(file.parent)
        if root not in projects:
            projects[root] = load_project(root)
        project = projects[root]
        plan, reason = project.lookup(file)
        if plan is None:
            status = FAILED if os.path.realpath(file) in project.errors else SKIPPED
            out.append(FileResult(path, status, reason))
            continue
        if plan.opted_out:
            out.append(FileResult(path, SKIPPED, "opted out (autodurable: off in its docstring)"))
            continue
        source = project.sources[os.path.realpath(file)]
        if not plan_changes(plan):  # nothing to write: no need to parse it again
            out.append(FileResult(path, UNCHANGED, warnings=plan_warnings(plan, source)))
            continue
        out.append(_Job(path, source, False, unrecordable, plan, plan.module))
    return out


def _transform_all(pending: list[_Job], jobs: int) -> Iterable[FileResult]:
    if jobs <= 1 or len(pending) <= 1:
        yield from map(transform_job, pending)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: workers start with libcst and the analyser already imported. Not with
    # other threads around (one may hold a lock the child would wait on forever).
    fork = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
    context = multiprocessing.get_context("fork" if fork else "spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
        chunk = max(1, min(16, len(pending) // (jobs * 4)))
        yield from pool.map(transform_job, pending, chunksize=chunk)


def transform_job(job: _Job) -> FileResult:
    """Run one file's command (in a worker, or here); never raises."""
    from libcst import ParserSyntaxError
    from libcst.codemod import (
        Codemod,
        CodemodContext,
        TransformFailure,
        TransformSkip,
        transform_module,
    )

    context = CodemodContext(filename=job.path, full_module_name=job.module)
    if job.strip:
        from autodurable.codemods.strip_durable import StripDurableCommand

        command: Codemod = StripDurableCommand(context)
    else:
        from autodurable.codemods.make_durable import MakeDurableCommand

        command = MakeDurableCommand(context, job.unrecordable, module_plan=job.module_plan)
    result = transform_module(command, job.source)
    warnings = list(result.warning_messages)
    if isinstance(result, TransformSkip):
        return FileResult(job.path, SKIPPED, result.skip_description, warnings=warnings)
    if isinstance(result, TransformFailure):
        error = result.error
        if isinstance(error, ParserSyntaxError):
            reason = f"does not parse: {error.message} (line {error.raw_line})"
        else:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return FileResult(job.path, FAILED, reason, warnings=warnings)
    new = getattr(result, "code", job.source)
    if new == job.source:
        return FileResult(job.path, UNCHANGED, warnings=warnings)
    try:
        ast.parse(new, filename=job.path)
    except SyntaxError as exc:  # never hand out code that does not parse
        reason = f"the result would not parse ({exc.msg}, line {exc.lineno}): left unchanged"
        return FileResult(job.path, FAILED, reason, warnings=warnings)
    return FileResult(job.path, CHANGED, original=job.source, new=new, warnings=warnings)


# -- output ------------------------------------------------------------------------------


def unified_diff(original: str, new: str, name: str) -> str:
    """A unified diff of one file, every line ending in a newline."""
    import difflib

    lines = difflib.unified_diff(
        original.splitlines(keepends=True), new.splitlines(keepends=True), name, name
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)  # fmt: skip


def write_file(path: str, original: str, new: str) -> str | None:
    """Replace the file's text atomically if it still holds `original`; None or the problem."""
    try:
        with open(path, "rb") as fh:
            if fh.read() != original.encode("utf-8"):
                return "changed on disk while the codemod ran: left as it is now"
        mode = os.stat(path).st_mode
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".autodurable-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(new.encode("utf-8"))
            os.chmod(temporary, mode & 0o7777)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        return f"cannot be written: {exc}"
    return None


def _display(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


class Progress:
    """A progress bar on a terminal (stderr), for trees of many files; silent otherwise."""

    def __init__(self, stream: IO[str], width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.total = 0
        self.done = 0
        self.enabled = False

    def start(self, total: int) -> None:
        """Begin: shown only on a terminal and for enough files."""
        self.total = total
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) and total >= _PROGRESS_MIN_FILES

    def update(self, result: FileResult) -> None:
        """One more file done."""
        self.done += 1
        if self.enabled:
            self.stream.write("\r" + self.render())
            self.stream.flush()

    def render(self) -> str:
        """``[#####.....]  50/100 files``."""
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        return f"[{bar}] {self.done:>{len(str(self.total))}}/{self.total} files"

    def clear(self) -> None:
        """Erase the bar."""
        if self.enabled:
            self.stream.write("\r" + " " * (self.width + 2 * len(str(self.total)) + 10) + "\r")
            self.stream.flush()
