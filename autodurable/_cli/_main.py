"""The ``autodurable`` command line.

Invariants: every command exits 0 on success, 1 when the thing asked about is
not as asked (for example a failed workflow, or no state database where it is
looked for: commands that read never create one), 2 on bad input; errors are
one readable line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._errors import AutodurableError
from .._hook import _collector

if TYPE_CHECKING:
    import argparse

# The commands, each built by one part of the parser below.
COMMANDS = frozenset(
    {"info", "run", "compile", "explain", "codemod", "ai", "mcp", "workflows", "send", "worker",
     "queues", "schedules", "replay", "ui"}
)  # fmt: skip


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `only`, just the parser of that command.

    Building a command's parser imports the module that defines its arguments, so
    a command builds only its own: ``run`` starts every command run under the hook,
    and every command pays for the others' modules otherwise. With no command (or
    an unknown one), all of them are built, for the help and the error.
    """

    import argparse

    def wanted(*names: str) -> bool:
        return only is None or only in names

    parser = argparse.ArgumentParser(
        prog="autodurable",
        description="Crash-proof Python programs: durable workflows and steps.",
    )
    parser.add_argument("--version", action="version", version=f"autodurable {__version__}")
    parser.add_argument(
        "--database-url",
        help="state database (default: AUTODURABLE_DATABASE_URL, [tool.autodurable] in "
        "pyproject.toml, or .autodurable/state.db at the project root: the folder of the "
        "nearest pyproject.toml above the script for run, above the current folder "
        "otherwise, else that folder; a relative sqlite path is relative to the project root)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    if wanted("info"):
        commands.add_parser("info", help="where the state lives and how many workflows it holds")
    if wanted("run"):
        _add_run_parser(commands)
    if wanted("compile"):
        _add_compile_parser(commands)
    if wanted("explain"):
        _add_explain_parser(commands)
    if wanted("codemod"):
        _add_codemod_parser(commands)
    if wanted("ai", "mcp"):
        from .._ai._commands import add_ai_parser, add_mcp_parser

        add_ai_parser(commands)
        add_mcp_parser(commands)
    if wanted("workflows", "send"):
        from ._workflows_args import add_parsers

        add_parsers(commands)
    if wanted("worker", "queues"):
        from ._queues import add_parsers as add_queue_parsers

        add_queue_parsers(commands)
    if wanted("schedules"):
        from ._schedules import add_parsers as add_schedule_parsers

        add_schedule_parsers(commands)
    if wanted("replay"):
        from ._changes_args import add_replay_parser

        add_replay_parser(commands)
    if wanted("ui"):
        from ._ui import add_ui_parser

        add_ui_parser(commands)
    return parser


def _add_run_parser(commands: Any) -> None:
    import argparse

    run = commands.add_parser(
        "run",
        help="run a program durably: SCRIPT [ARGS], -m MODULE [ARGS], or -- COMMAND [ARGS]",
        description="Run an unmodified program durably. Run the same command again after a "
        "crash and it resumes; a failed run is retried from its failing step.",
        usage="autodurable run [-q] [--new] [--run-id ID] (SCRIPT | -m MODULE | -- COMMAND) "
        "[ARGS ...]",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no status line on stderr")
    run.add_argument("--new", action="store_true", help="start a new run even if one is unfinished")
    run.add_argument("--run-id", help="the id of the run (default: derived from the command)")
    run.add_argument("-m", dest="module", help="run a module, as python -m does")
    run.add_argument(
        "target", nargs=argparse.REMAINDER, help="the script or command, then its arguments"
    )


def _add_compile_parser(commands: Any) -> None:
    compile_ = commands.add_parser(
        "compile",
        help="build the caches of autodurable run ahead of time (as compileall does)",
        description="Analyse each project and write every cache `autodurable run` reads: the "
        "plan, the rewritten code of the modules it changes and of each SCRIPT named, and "
        "the plain bytecode of the others. Run it in a Dockerfile: with "
        "PYTHONDONTWRITEBYTECODE set, the caches go to autodurable's own folder in the "
        "user's cache (AUTODURABLE_CACHE_DIR names another: set it in the image), and runs "
        "start warm even on a read-only tree.",
    )
    compile_.add_argument(
        "targets", nargs="*", metavar="SCRIPT|FOLDER",
        help="scripts to be run (their projects are found from them) or project folders; "
        "default: the current folder's project",
    )  # fmt: skip


def _add_explain_parser(commands: Any) -> None:
    explain = commands.add_parser(
        "explain",
        help="show which functions become steps and workflows, and why",
        description="Print the durability plan of the given files or folders.",
    )
    explain.add_argument("paths", nargs="+", metavar="PATH")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a function does I/O that cannot be made durable safely",
    )


def _add_codemod_parser(commands: Any) -> None:
    codemod = commands.add_parser(
        "codemod",
        help="write the plan into the source as decorators (shows a diff; --write applies)",
        description="Write the durability plan of `autodurable run` into the given files as "
        "@autodurable.step / @autodurable.workflow and recorded calls (libcst). Shows a "
        "unified diff and writes nothing unless --write is given.",
    )
    from ..codemods._run import add_arguments

    add_arguments(codemod)


def console_main() -> int:
    """The ``autodurable`` console script and ``python -m autodurable``: `main`, with
    the cyclic garbage collector paused while the command starts (`_collector`)."""
    _collector.pause()
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and len(argv) > 1 and not argv[1].startswith("-"):
        return _run_script(argv[1], argv[2:])  # the launcher resumes the collector
    parser = _parser(only=argv[0] if argv[:1] and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "run":  # the program's own output is the program's business
        return _command(parser, args)
    _collector.resume()  # a command's own work may last: a worker, the dashboard
    try:
        return _command(parser, args)
    except BrokenPipeError:
        # Piped into `head` or a pager that quit: stop quietly, as `cat` does. Later
        # writes (the interpreter's final flush) go nowhere instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.database_url:
            from .._core._runtime import configure

            configure(database_url=args.database_url)
        if args.command == "run":
            return _run(parser, args)
        if args.command == "compile":
            return _compile(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "codemod":
            from ..codemods._run import main as codemod

            return codemod(args)
        if args.command in ("workflows", "send"):
            from ._workflows import main_send, main_workflows

            return main_workflows(args) if args.command == "workflows" else main_send(args)
        if args.command in ("worker", "queues"):
            from ._queues import main_queues, main_worker

            return main_worker(args) if args.command == "worker" else main_queues(args)
        if args.command == "replay":
            from ._changes import replay_command

            return replay_command(args)
        if args.command == "ui":
            from ._ui import main_ui

            return main_ui(args)
        if args.command == "schedules":
            from ._schedules import main_schedules

            return main_schedules(args)
        if args.command in ("ai", "mcp"):
            from .._ai._commands import main_ai, main_mcp

            return main_ai(args) if args.command == "ai" else main_mcp()
        return _info()
    except AutodurableError as exc:
        print(f"autodurable: {exc}", file=sys.stderr)
        return 2


def _run_script(script: str, args: list[str]) -> int:
    """``run SCRIPT [ARGS]`` as the parser reads it (everything after SCRIPT is the
    script's), without argparse: its imports and parsers cost every run about 4 ms."""
    from .._hook._launcher import Target, run

    try:
        return run(Target("script", script, args))
    except AutodurableError as exc:
        print(f"autodurable: {exc}", file=sys.stderr)
        return 2


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    rest = list(args.target)
    if rest and rest[0] == "--" and not args.module:
        if len(rest) < 2:
            parser.error("run -- needs a command")
        from .._hook._child import exec_command  # light: it runs before every command

        return exec_command(rest[1], rest[2:], quiet=args.quiet)
    from .._hook._launcher import Target, run

    if args.module:
        target = Target("module", args.module, rest)
    elif rest:
        target = Target("script", rest[0], rest[1:])
    else:
        parser.error("run needs a SCRIPT, -m MODULE or -- COMMAND")
    return run(target, new=args.new, run_id=args.run_id, quiet=args.quiet)


def _compile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._core._config import load_settings
    from .._hook._compile import compile_project, projects_of

    failed = False
    for root, scripts in projects_of([Path(t) for t in args.targets]).items():
        settings = load_settings(cwd=root)
        done = compile_project(root, scripts, settings.io, settings.roles, settings.exclude)
        where = done.cache or "beside the sources (__pycache__)"
        print(
            f"{done.root}: {len(done.rewritten)} rewritten by the hook, {len(done.plain)} "
            f"compiled plainly; caches {where}"
        )
        for path, why in sorted(done.failed.items()):
            print(f"  {path}: not compiled: {why}", file=sys.stderr)
        failed = failed or bool(done.failed)
    return 1 if failed else 0


def _explain(args: argparse.Namespace) -> int:
    from .._core._runtime import get_runtime
    from ._explain import (
        limit_warnings,
        limited_steps,
        plans_for,
        render_json,
        render_table,
        unsafe,
    )

    settings = get_runtime().settings
    plans, errors = plans_for(args.paths, settings)
    if args.json:
        print(render_json(plans, errors))
    else:
        print(render_table(plans, errors, limited_steps(plans, settings)))
    for warning in limit_warnings(plans, settings):
        print(warning, file=sys.stderr)
    if args.strict and (unsafe(plans) or errors):
        return 1
    return 0


def _info() -> int:
    from .._core._runtime import get_runtime
    from ._workflows import missing_state

    runtime = get_runtime()
    problem = missing_state()  # reading creates nothing
    if problem is not None:
        print(f"autodurable: {problem}", file=sys.stderr)
        return 1
    store = runtime.store
    counts = Counter(record.status for record in store.list_workflows(limit=1_000_000))
    print(f"database: {runtime.location}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    print(f"workflows: {summary}")
    return 0
