"""The arguments of ``autodurable workflows ...`` and ``autodurable send`` (argparse).

Invariant: parsing only; the commands are in `_workflows` (dispatch and the
commands that change state) and `_workflows_read` (list, show, steps).
"""

from __future__ import annotations

import argparse
from typing import Any

from .._store import CANCELLED, ENDED_STATUSES, FAILED, PENDING, WORKFLOW_STATUSES
from ._format import parse_duration, parse_when, step_number

ENDED_BY_FAILURE = (FAILED, CANCELLED)  # what resume acts on

# -- parsing ------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is negative")
    return number


def _common(parser: argparse.ArgumentParser, json_output: bool = True) -> None:
    if json_output:
        parser.add_argument(
            "--json",
            action="store_true",
            help="one JSON document on stdout (see docs/operating.md)",
        )
    parser.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="state database (default: AUTODURABLE_DATABASE_URL, [tool.autodurable] in "
        "pyproject.toml, or .autodurable/state.db at the project root: the folder of the "
        "nearest pyproject.toml, else the current folder)",
    )


def _filters(parser: argparse.ArgumentParser, statuses: Any, version_flag: bool = True) -> None:
    """The filters of ``list``, also taken by the batch forms of ``cancel`` and ``resume``."""
    parser.add_argument(
        "--status",
        action="append",
        choices=statuses,
        help="only workflows with this status (repeat for several)",
    )
    parser.add_argument(
        "--name", help="only workflows of this name ('module:qualname'; * matches anything)"
    )
    parser.add_argument(
        "--since", type=parse_when, help="started at or after: 2h (ago), 7d, or 2024-05-01T12:00"
    )
    parser.add_argument("--until", type=parse_when, help="started before: same forms as --since")
    flags = ["--version", "--app-version"] if version_flag else ["--app-version"]
    parser.add_argument(
        *flags,
        dest="where_version",
        metavar="VERSION",
        help="only workflows recorded with this version of their code (the VERSION column)",
    )
    parser.add_argument(
        "--error",
        dest="where_error",
        metavar="TYPE",
        help="only workflows whose recorded exception is of this type: ValueError, "
        "builtins:ValueError or myapp.errors.CardDeclined",
    )
    parser.add_argument(
        "--queue", dest="where_queue", metavar="NAME", help="only workflows enqueued on this queue"
    )


def _batch(parser: argparse.ArgumentParser, verb: str) -> None:
    """The switches of acting on every workflow the filters select."""
    parser.add_argument(
        "--all-matching",
        "--yes",
        dest="all_matching",
        action="store_true",
        help=f"{verb} every workflow the filters select (required with filters)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"list the workflows the filters select; {verb} nothing",
    )


def add_parsers(commands: Any) -> None:
    """Add ``workflows`` and ``send`` to the top-level subcommands."""
    workflows = commands.add_parser(
        "workflows",
        help="list, inspect, cancel, resume, fork and delete workflows",
        description="Operate the workflows recorded in the state database. Every command "
        "takes --json (for scripts) and --database-url.",
    )
    sub = workflows.add_subparsers(dest="action", metavar="ACTION")

    listing = sub.add_parser(
        "list",
        help="workflows, newest first",
        description="List workflows, newest first, 20 at a time (--limit, --offset).",
    )
    _filters(listing, WORKFLOW_STATUSES)
    listing.add_argument("--limit", type=_positive, default=20, help="at most this many (20)")
    listing.add_argument("--offset", type=_positive, default=0, help="skip this many first (0)")
    _common(listing)

    show = sub.add_parser(
        "show",
        help="one workflow: inputs, status, output or error, times, executor, version",
        description="Show everything recorded about one workflow.",
    )
    show.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    show.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="then print its steps and status changes as they are recorded until it ends; "
        "exit codes as wait's (0 succeeded, 1 failed or cancelled, 3 --timeout passed); with "
        "--json one JSON document per line and event",
    )
    show.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="with --follow: stop following after this long (30s, 15m, 2h)",
    )
    _common(show)

    start = sub.add_parser(
        "start",
        help="start a workflow by name, with JSON arguments",
        description="Record a new workflow of NAME with the given arguments, pending for an "
        "executor with its code (a process that called autodurable.recover(watch=True)), or "
        "run it here and wait for it with --run. Its module is imported here (the current "
        "folder first on the path) to check the name and the arguments; nothing is recorded "
        "when they are wrong.",
    )
    start.add_argument(
        "name", metavar="NAME", help="the workflow: 'module:qualname' or its @workflow(name=...)"
    )
    start.add_argument(
        "arguments",
        nargs="*",
        metavar="ARG",
        help="its positional arguments, each a JSON value: 42, '\"text\"', '[1, 2]', '{\"a\": 1}'",
    )
    start.add_argument(
        "--kwargs",
        metavar="JSON",
        help='its keyword arguments as a JSON object, such as \'{"order_id": "o-7"}\'',
    )
    start.add_argument(
        "--id", dest="new_id", metavar="ID", help="the workflow's id (default: a fresh one)"
    )
    start.add_argument(
        "--run", action="store_true", help="run it here and wait for it (exit 1 if it fails)"
    )
    _common(start)

    wait = sub.add_parser(
        "wait",
        help="wait until a workflow ends; its outcome",
        description="Wait until the workflow succeeds, fails or is cancelled, wherever it "
        "runs, and show its outcome. Exit code 0 when it succeeded, 1 when it failed or was "
        "cancelled, 3 when --timeout passed first (it is still pending).",
    )
    wait.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    wait.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="give up after this long (30s, 15m, 2h); default: wait as long as it takes",
    )
    _common(wait)

    steps = sub.add_parser(
        "steps",
        help="the recorded steps of a workflow",
        description="List a workflow's steps: place, name, status, attempts, duration "
        "and a preview of the result. The place of a step of the workflow's own code is its "
        "position (3); a step of work it ran concurrently (a thread, a pool, an asyncio task) "
        "has the position where that work was started, then its own (3.1, 3.2, ...).",
    )
    steps.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    _common(steps)

    cancel_parser = sub.add_parser(
        "cancel",
        help="cancel a pending workflow (it stops at its next step)",
        description="Cancel a pending workflow. A running one stops at its next step "
        "boundary (the step it is in finishes and is recorded); one waiting for a message "
        "or sleeping stops at once. The cancellation is recorded; resume undoes it. Instead "
        "of an ID, the filters of list select pending workflows to cancel, with "
        "--all-matching (or --dry-run to see which).",
    )
    cancel_parser.add_argument(
        "workflow_id", metavar="ID", nargs="?", help="the workflow's id (or filters instead)"
    )
    cancel_parser.add_argument("--reason", help="recorded with the cancellation")
    _filters(cancel_parser, [PENDING])
    _batch(cancel_parser, "cancel")
    _common(cancel_parser)

    resume_parser = sub.add_parser(
        "resume",
        help="continue a cancelled or failed workflow",
        description="Make a cancelled or failed workflow pending again: its recorded steps "
        "are replayed and a step that failed runs again. An executor with its code picks it "
        "up, or --run runs it here. Instead of an ID, the filters of list select failed and "
        "cancelled workflows to resume, with --all-matching (or --dry-run to see which); "
        "--app-version filters by version there, since --version records one.",
    )
    resume_parser.add_argument(
        "workflow_id", metavar="ID", nargs="?", help="the workflow's id (or filters instead)"
    )
    resume_parser.add_argument(
        "--run",
        action="store_true",
        help="run it here and wait for it (imports its module; the current folder comes "
        "first on the path); also runs a pending workflow that nobody runs",
    )
    versions = resume_parser.add_mutually_exclusive_group()
    versions.add_argument(
        "--any-version", action="store_true", help="let code of any version run it"
    )
    versions.add_argument(
        "--version", dest="app_version", metavar="VERSION", help="record this version instead"
    )
    _filters(resume_parser, ENDED_BY_FAILURE, version_flag=False)
    _batch(resume_parser, "resume")
    _common(resume_parser)

    fork_parser = sub.add_parser(
        "fork",
        help="a new workflow that reuses the steps before N and runs the current code from N",
        description="Start a new workflow with the same inputs that replays the recorded "
        "results of the steps before --from-step and runs the code as it is now from that "
        "step on: fix a bug, then fork from the step that hit it.",
    )
    fork_parser.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    fork_parser.add_argument(
        "--from-step",
        type=step_number,
        required=True,
        metavar="N",
        help="the first step to run again (autodurable workflows steps ID lists them); "
        "work run concurrently from step N (its steps N.1, N.2, ...) runs again whole",
    )
    fork_parser.add_argument(
        "--id", dest="new_id", help="the new workflow's id (default: ID-fork-<random>)"
    )
    fork_parser.add_argument(
        "--run", action="store_true", help="run it here and wait for it (imports its module)"
    )
    fork_parser.add_argument(
        "--version",
        dest="app_version",
        metavar="VERSION",
        help="the version to record (default: none, so that code of any version may run it)",
    )
    _common(fork_parser)

    delete_parser = sub.add_parser(
        "delete",
        help="delete workflows with their steps, messages and events",
        description="Delete workflows with their steps, messages and events. A pending "
        "workflow is only deleted with --force (cancel it first).",
    )
    delete_parser.add_argument("workflow_ids", nargs="+", metavar="ID", help="workflow ids")
    delete_parser.add_argument("--force", action="store_true", help="delete pending ones too")
    _common(delete_parser)

    gc_parser = sub.add_parser(
        "gc",
        help="delete workflows that ended long ago (retention)",
        description="Delete workflows that succeeded, failed or were cancelled more than "
        "--older-than ago, with their steps, messages and events, and messages older than "
        "that sent to workflows that never existed. Pending workflows are kept.",
    )
    gc_parser.add_argument(
        "--older-than",
        type=parse_duration,
        required=True,
        metavar="AGE",
        help="for example 30d, 12h or 2w",
    )
    gc_parser.add_argument(
        "--status",
        action="append",
        choices=ENDED_STATUSES,
        help="only workflows with this status (repeat for several; default: all three)",
    )
    gc_parser.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    _common(gc_parser)

    send_parser = commands.add_parser(
        "send",
        help="send a message to a workflow (for its recv)",
        description="Send a JSON message to a workflow, which receives it with "
        "autodurable.recv(topic). The workflow need not be waiting yet.",
    )
    send_parser.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    send_parser.add_argument(
        "message",
        metavar="JSON",
        help="the message as JSON, such as '{\"approved\": true}'; - reads it from standard input",
    )
    send_parser.add_argument("--topic", help="the topic the workflow receives on")
    send_parser.add_argument(
        "--idempotency-key",
        help="sending the same key to the same workflow again sends nothing",
    )
    send_parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="send even if no workflow has this id yet (it receives it when it starts)",
    )
    send_parser.add_argument(
        "--strict",
        action="store_true",
        help="send nothing (exit 2) when the workflow waits on another topic",
    )
    _common(send_parser)
    from ._changes_args import add_workflow_parsers
    from ._streams import add_stream_parser

    add_workflow_parsers(sub, _common)
    add_stream_parser(sub, _common)
    workflows.set_defaults(workflows_parser=workflows)
