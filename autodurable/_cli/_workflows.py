"""``autodurable workflows ...`` and ``autodurable send``: operate workflows from a shell.

Invariants:
- Tables for people, ``--json`` for scripts: one JSON document on stdout, in
  the documented shape (README, "Operating workflows"); keys are only ever
  added. Times in JSON are seconds since the epoch, values the recorded JSON.
- Exit codes: 0 done, 1 the workflow is not as asked (cancelling one that
  ended, a run that ends failed or cancelled), 2 bad input (an unknown id, a
  step number out of range, malformed JSON); errors are one line on stderr.
- Bad input changes nothing: every argument and id is checked first.
- The state database is found as git finds its repository (see
  `_config_source`); no command creates one: when there is none where it is
  looked for, the command says which path it looked at and exits with 1
  (``send``: 2, an unknown id; ``send --allow-unknown`` creates it, to record a
  message for a workflow to come). ``list``, ``show`` and ``steps`` say on
  stderr where the state is.
- Nothing imports the application's code except ``--run``, which imports the
  workflow's module (the working directory first on the path) to run it here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .._control._operations import (
    ENDED,
    StepInfo,
    WorkflowInfo,
    cancel,
    delete,
    fork,
    fork_here,
    gc,
    list_workflows,
    program_hint,
    resume,
    run_here,
    workflow_info,
    workflow_steps,
)
from .._control._registry import RUN_PREFIX, find_workflow, is_program_run
from .._core._app_versions import version_for
from .._core._names import PACKAGE_DIR
from .._core._runtime import get_runtime
from .._errors import AutodurableError, WorkflowCancelled, WorkflowNotFound
from .._store import CANCELLED, FAILED, PENDING, SUCCEEDED, WORKFLOW_STATUSES
from ._format import parse_duration, parse_when, preview, span, table, when

_PICKUP = (
    "an executor with its code picks it up (a process that called "
    "autodurable.recover(watch=True): at once on PostgreSQL, within seconds on SQLite)"
)


# -- parsing ------------------------------------------------------------------------------


def _step_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"step numbers start at 1, not {number}")
    return number


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
            "--json", action="store_true", help="one JSON document on stdout (see README)"
        )
    parser.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="state database (default: AUTODURABLE_DATABASE_URL, [tool.autodurable] in "
        "pyproject.toml, or .autodurable/state.db at the project root: the folder of the "
        "nearest pyproject.toml, else the current folder)",
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
    listing.add_argument(
        "--status",
        action="append",
        choices=WORKFLOW_STATUSES,
        help="only workflows with this status (repeat for several)",
    )
    listing.add_argument(
        "--name", help="only workflows of this name ('module:qualname'; * matches anything)"
    )
    listing.add_argument(
        "--since", type=parse_when, help="started at or after: 2h (ago), 7d, or 2024-05-01T12:00"
    )
    listing.add_argument("--until", type=parse_when, help="started before: same forms as --since")
    listing.add_argument("--limit", type=_positive, default=20, help="at most this many (20)")
    listing.add_argument("--offset", type=_positive, default=0, help="skip this many first (0)")
    _common(listing)

    show = sub.add_parser(
        "show",
        help="one workflow: inputs, status, output or error, times, executor, version",
        description="Show everything recorded about one workflow.",
    )
    show.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    _common(show)

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
        "or sleeping stops at once. The cancellation is recorded; resume undoes it.",
    )
    cancel_parser.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    cancel_parser.add_argument("--reason", help="recorded with the cancellation")
    _common(cancel_parser)

    resume_parser = sub.add_parser(
        "resume",
        help="continue a cancelled or failed workflow",
        description="Make a cancelled or failed workflow pending again: its recorded steps "
        "are replayed and a step that failed runs again. An executor with its code picks it "
        "up, or --run runs it here.",
    )
    resume_parser.add_argument("workflow_id", metavar="ID", help="the workflow's id")
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
        type=_step_number,
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
        choices=ENDED,
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
    _common(send_parser)
    workflows.set_defaults(workflows_parser=workflows)


# -- formatting ---------------------------------------------------------------------------


def _short_type(error_type: str | None) -> str:
    return (error_type or "").rpartition(":")[2] or "error"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    elif text:
        print(text)


def _code_version_here(info: WorkflowInfo) -> str | None:
    """The version of this workflow's code as it is here (configured, or its file)."""
    from .._core._app_versions import source_version

    configured = get_runtime().settings.app_version
    if configured:
        return configured
    return source_version(info.name, [os.getcwd(), *sys.path])


# -- commands ----------------------------------------------------------------------------


def missing_state() -> str | None:
    """Why there is nothing to operate on: no state database where it is looked for.

    None when the store exists (or is a server). Checked before the store is
    opened, which would create an empty database (and its folders) there.
    """
    runtime = get_runtime()
    if runtime.state_exists():
        return None
    return (
        f"no state database at {runtime.location} (nothing has run with it yet; the project "
        f"root is {runtime.root}). Run the command inside the project, or name the database "
        "with --database-url or AUTODURABLE_DATABASE_URL; nothing was created"
    )


def _where(args: argparse.Namespace) -> None:
    """Say on stderr where the state read lives (people's output only: --json stays one
    document on stdout)."""
    if not args.json:
        print(f"autodurable: state in {get_runtime().location}", file=sys.stderr)


def main_workflows(args: argparse.Namespace) -> int:
    """Run ``autodurable workflows ACTION``; returns the exit code."""
    action = getattr(args, "action", None)
    if action is None:
        args.workflows_parser.print_help()
        return 0
    problem = missing_state()
    if problem is not None:
        print(f"autodurable: {problem}", file=sys.stderr)
        return 1
    handlers = {
        "list": _list,
        "show": _show,
        "steps": _steps,
        "cancel": _cancel,
        "resume": _resume,
        "fork": _fork,
        "delete": _delete,
        "gc": _gc,
    }
    status = handlers[action](args)
    if status == 0 and action in ("list", "show", "steps"):
        _where(args)
    return status


def _list(args: argparse.Namespace) -> int:
    found = list_workflows(
        args.status,
        args.name,
        since=args.since,
        until=args.until,
        limit=args.limit + 1,
        offset=args.offset,
    )
    more = len(found) > args.limit
    found = found[: args.limit]
    next_offset = args.offset + args.limit if more else None
    rows, elsewhere = [], 0
    for info in found:
        version = info.app_version or "-"
        if info.status == PENDING and info.app_version and not info.is_program_run:
            here = _code_version_here(info)
            if here is not None and here != info.app_version:
                version += " *"
                elsewhere += 1
        rows.append(
            [
                _cut(info.workflow_id, 40),
                _cut(info.name, 48),
                info.status,
                when(info.created_at),
                span(info.duration),
                version,
            ]
        )
    lines = []
    if rows:
        lines.append(table(["ID", "NAME", "STATUS", "STARTED", "DURATION", "VERSION"], rows))
    else:
        lines.append("no workflows" + (" match" if _filtered(args) else " yet"))
    if more:
        lines.append(f"more: add --offset {next_offset} for the next {args.limit}")
    if elsewhere:
        lines.append(
            f"* {elsewhere} pending workflow(s) were started by another version of their code "
            "than the one here: recover() here leaves them to a process running that version. "
            "Run one here with the current code: autodurable workflows resume ID --run"
        )
    document = {
        "workflows": [info.to_json() for info in found],
        "offset": args.offset,
        "limit": args.limit,
        "next_offset": next_offset,
    }
    _emit(args, document, "\n".join(lines))
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.status, args.name, args.since, args.until, args.offset))


def _show(args: argparse.Namespace) -> int:
    runtime = get_runtime()
    info = workflow_info(args.workflow_id)
    store = runtime.store
    steps = store.list_steps(info.workflow_id)
    events = {key: json.loads(value) for key, value in store.list_events(info.workflow_id).items()}
    messages = store.list_messages(info.workflow_id)
    waiting = [m for m in messages if m.consumed_at is None]
    executor = store.get_executor(info.executor_id) if info.executor_id else None
    document = info.to_json()
    document["steps_recorded"] = len(steps)
    document["events"] = events
    document["messages"] = {"waiting": len(waiting), "received": len(messages) - len(waiting)}
    document["executor"] = None
    if executor is not None:
        document["executor"] = {
            "executor_id": executor.executor_id,
            "hostname": executor.hostname,
            "pid": executor.pid,
            "heartbeat_age": executor.heartbeat_age,
        }
    lines = [
        ("workflow", info.workflow_id),
        ("name", info.name),
        ("status", _status_line(info)),
        ("version", _version_line(info)),
        ("executor", _executor_line(info, executor)),
        ("started", when(info.created_at)),
    ]
    if info.ended_at is not None:
        lines.append(("ended", f"{when(info.ended_at)} (after {span(info.duration)})"))
    else:
        lines.append(("pending", f"for {span(info.duration)}"))
    if info.deadline is not None:
        lines.append(("deadline", when(info.deadline)))
    if info.forked_from:
        lines.append(("forked", f"from {info.forked_from} at step {info.forked_at_step}"))
    lines.append(
        ("steps", f"{len(steps)} recorded (autodurable workflows steps {info.workflow_id})")
    )
    lines.append(("inputs", preview(info.inputs, 200)))
    if info.status == SUCCEEDED:
        lines.append(("output", preview(info.output, 200)))
    for key, value in events.items():
        lines.append(("event", f"{key} = {preview(value, 120)}"))
    if messages:
        topics = sorted({m.topic or "(no topic)" for m in waiting})
        detail = f" (topics: {', '.join(topics)})" if topics else ""
        lines.append(
            ("messages", f"{len(waiting)} waiting{detail}, {len(messages) - len(waiting)} received")
        )
    text = "\n".join(f"{label:<10} {value}" for label, value in lines)
    if info.traceback and info.status == FAILED:
        trace = _without_our_frames(info.traceback)
        text += "\ntraceback:\n" + "\n".join("  " + line for line in trace.splitlines())
    hint = _hint(info, executor)
    if hint:
        text += f"\n\nhint: {hint}"
    _emit(args, document, text)
    return 0


def _status_line(info: WorkflowInfo) -> str:
    if info.status == FAILED:
        return f"failed: {_short_type(info.error_type)}: {info.error_message}"
    if info.status == CANCELLED:
        return f"cancelled: {info.error_message}"
    return info.status


def _version_line(info: WorkflowInfo) -> str:
    if info.app_version is None:
        return "- (any version may run it)"
    if info.status != PENDING or info.is_program_run:
        return info.app_version
    here = _code_version_here(info)
    if here is None:
        return info.app_version
    if here == info.app_version:
        return f"{info.app_version} (the code here is the same)"
    return f"{info.app_version} (the code here is version {here})"


def _alive(executor: Any) -> bool:
    from .._core._executor import is_alive

    return is_alive(executor, get_runtime().settings.lease_seconds)


def _executor_line(info: WorkflowInfo, executor: Any) -> str:
    if info.executor_id is None:
        return "- (nobody runs it)" if info.status == PENDING else "-"
    if executor is None:
        return f"{info.executor_id} (exited)"
    age = executor.heartbeat_age
    beat = f", last heartbeat {span(age)} ago" if age is not None else ""
    state = "alive" if _alive(executor) else "gone: others may adopt its workflows"
    return f"{info.executor_id} on {executor.hostname}, pid {executor.pid}{beat} ({state})"


def _without_our_frames(trace: str) -> str:
    """A recorded traceback without autodurable's own frames (the JSON keeps them all)."""
    ours = f'  File "{PACKAGE_DIR}'
    kept: list[str] = []
    skipping = False
    for line in trace.splitlines():
        if line.startswith("  File "):
            skipping = line.startswith(ours)
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _hint(info: WorkflowInfo, executor: Any = None) -> str:
    if info.is_program_run and info.status in (PENDING, FAILED, CANCELLED):
        prefix = (
            f"resume it first (autodurable workflows resume {info.workflow_id}); then "
            if info.status == CANCELLED
            else ""
        )
        return prefix + program_hint(info.workflow_id, info.name)
    if info.status in (FAILED, CANCELLED):
        return (
            f"continue it with: autodurable workflows resume {info.workflow_id} (--run to run "
            f"it here); or run the current code from step N: autodurable workflows fork "
            f"{info.workflow_id} --from-step N"
        )
    if info.status != PENDING or (executor is not None and _alive(executor)):
        return ""
    if info.app_version:
        here = _code_version_here(info)
        if here is not None and here != info.app_version:
            return (
                "nobody runs it now, and it was started by another version of its code than "
                "the one here: executors running this code leave it to a process running "
                "that version. To run it here with this code: autodurable workflows resume "
                f"{info.workflow_id} --run"
            )
    return (
        f"nobody runs it now: {_PICKUP}; or run it here: autodurable workflows resume "
        f"{info.workflow_id} --run"
    )


def _steps(args: argparse.Namespace) -> int:
    found = workflow_steps(args.workflow_id)
    rows = [
        [
            step.place,
            _cut(step.name, 40),
            step.status,
            str(step.attempts),
            span(step.duration),
            _step_result(step),
        ]
        for step in found
    ]
    if rows:
        text = table(["STEP", "NAME", "STATUS", "ATTEMPTS", "DURATION", "RESULT"], rows)
    else:
        text = f"{args.workflow_id} has no recorded steps"
    document = {"workflow_id": args.workflow_id, "steps": [step.to_json() for step in found]}
    _emit(args, document, text)
    return 0


def _step_result(step: StepInfo) -> str:
    if step.error_type is not None:
        return _cut(f"{_short_type(step.error_type)}: {step.error_message}", 60)
    if step.status == "waiting" and isinstance(step.output, int | float):
        return f"waiting for a message until {when(float(step.output))}"
    if step.status == "timed_out":
        return "no message before its timeout: None"
    if step.status == "unrecorded":
        return "(not recordable: runs again on resume)"
    return preview(step.output)


def _cancel(args: argparse.Namespace) -> int:
    reason = args.reason or f"cancelled with the autodurable command line by {_who()}"
    changed, info = cancel(args.workflow_id, reason)
    document = {"workflow_id": info.workflow_id, "cancelled": changed, "status": info.status}
    if changed:
        text = (
            f"cancelled {info.workflow_id}: a running workflow stops at its next step boundary "
            f"(the step it is in finishes first). Resume it with: autodurable workflows resume "
            f"{info.workflow_id}"
        )
    else:
        text = f"{info.workflow_id} has {info.status} already; nothing was cancelled"
    _emit(args, document, text)
    if not changed:
        print(f"autodurable: {info.workflow_id} is {info.status}, not pending", file=sys.stderr)
    return 0 if changed else 1


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _resume(args: argparse.Namespace) -> int:
    info = workflow_info(args.workflow_id)
    if args.run:
        return _resume_here(args, info)
    kept, after = resume(
        args.workflow_id, app_version=args.app_version, any_version=args.any_version
    )
    document = {
        "workflow_id": after.workflow_id,
        "status": after.status,
        "steps_kept": kept,
        "app_version": after.app_version,
    }
    lines = [f"resumed {after.workflow_id}: pending again, {kept} recorded step(s) kept"]
    if after.is_program_run:
        lines.append(program_hint(after.workflow_id, after.name))
    else:
        lines.append(
            f"{_PICKUP}; or run it here: autodurable workflows resume {after.workflow_id} --run"
        )
        here = _code_version_here(after) if after.app_version else None
        if here is not None and here != after.app_version:
            lines.append(
                f"note: it is of version {after.app_version} and the code here is version "
                f"{here}: executors running this code leave it alone. --any-version lets "
                "them run it"
            )
    _emit(args, document, "\n".join(lines))
    return 0


def _resume_here(args: argparse.Namespace, info: WorkflowInfo) -> int:
    if info.is_program_run:
        raise AutodurableError(program_hint(info.workflow_id, info.name) + "; --run cannot")
    if info.status == SUCCEEDED:
        raise AutodurableError(f"workflow {info.workflow_id!r} has succeeded; nothing to run")
    _import_here()
    _check_code_here(info)
    if info.status in (FAILED, CANCELLED):
        resume(info.workflow_id, app_version=args.app_version, any_version=args.any_version)
    return _run_and_report(
        args, info.workflow_id, lambda: run_here(get_runtime(), info.workflow_id)
    )


def _import_here() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _check_code_here(info: WorkflowInfo) -> Any:
    try:
        return find_workflow(info.name)
    except LookupError as exc:
        raise AutodurableError(
            f"cannot run {info.workflow_id} here: {exc}. Run this command where its code is "
            "importable, or leave out --run so that an executor with its code picks it up"
        ) from None


def _run_and_report(args: argparse.Namespace, workflow_id: str, begin: Any) -> int:
    handle = begin()
    if not args.json:
        print(f"running {workflow_id} here...", file=sys.stderr)
    try:
        handle.result()
    except (Exception, WorkflowCancelled) as exc:
        if isinstance(exc, AutodurableError) and not isinstance(exc, WorkflowNotFound):
            raise
    info = workflow_info(workflow_id)
    if info.status == SUCCEEDED:
        text = f"{workflow_id} succeeded: {preview(info.output, 200)}"
    else:
        text = f"{workflow_id} {_status_line(info)}"
    _emit(args, info.to_json(), text)
    return 0 if info.status == SUCCEEDED else 1


def _fork(args: argparse.Namespace) -> int:
    source = workflow_info(args.workflow_id)
    fn = None
    if args.run:
        if source.is_program_run:
            raise AutodurableError(
                f"{source.workflow_id} is a program run by `autodurable run`: fork it without "
                "--run, then run its command with --run-id NEW_ID"
            )
        _import_here()
        fn = _check_code_here(source)
    version = args.app_version
    if fn is not None:
        if version is None:
            version = version_for(get_runtime().settings, fn)
        _, info, future = fork_here(
            source.workflow_id, args.from_step, fn, new_id=args.new_id, app_version=version
        )
        return _run_and_report(args, info.workflow_id, lambda: future)
    copied, info = fork(
        source.workflow_id, args.from_step, new_id=args.new_id, app_version=version
    )
    document = {
        "workflow_id": info.workflow_id,
        "forked_from": source.workflow_id,
        "from_step": args.from_step,
        "steps_copied": copied,
        "status": info.status,
    }
    reused = f"steps 1-{args.from_step - 1} reused" if args.from_step > 1 else "no step reused"
    lines = [
        f"forked {source.workflow_id} as {info.workflow_id}: {reused}, the current code "
        f"runs from step {args.from_step}"
    ]
    if is_program_run(info.name):
        label = info.name[len(RUN_PREFIX) :]
        lines.append(f"run it with: autodurable run --run-id {info.workflow_id} {label}")
    else:
        lines.append(
            f"{_PICKUP}; or run it here: autodurable workflows resume {info.workflow_id} --run"
        )
    _emit(args, document, "\n".join(lines))
    return 0


def _delete(args: argparse.Namespace) -> int:
    infos = [workflow_info(workflow_id) for workflow_id in dict.fromkeys(args.workflow_ids)]
    pending = [info.workflow_id for info in infos if info.status == PENDING]
    if pending and not args.force:
        raise AutodurableError(
            f"{', '.join(pending)} {'is' if len(pending) == 1 else 'are'} pending: cancel "
            "first (autodurable workflows cancel ID), or delete anyway with --force; nothing "
            "was deleted"
        )
    for info in infos:
        delete(info.workflow_id, force=True)
    ids = [info.workflow_id for info in infos]
    _emit(args, {"deleted": ids}, f"deleted {len(ids)} workflow(s): {', '.join(ids)}")
    return 0


def _gc(args: argparse.Namespace) -> int:
    statuses = args.status or list(ENDED)
    ids, messages = gc(args.older_than, statuses, dry_run=args.dry_run)
    age = span(args.older_than)
    if args.dry_run:
        text = f"would delete {len(ids)} workflow(s) that ended more than {age} ago"
        if ids:
            text += ":\n" + "\n".join(f"  {workflow_id}" for workflow_id in ids)
    else:
        text = f"deleted {len(ids)} workflow(s) that ended more than {age} ago"
        if messages:
            text += f", and {messages} message(s) sent to workflows that do not exist"
    document = {"deleted": ids, "dry_run": args.dry_run, "orphan_messages_deleted": messages}
    _emit(args, document, text)
    return 0


def main_send(args: argparse.Namespace) -> int:
    """Run ``autodurable send``; returns the exit code."""
    from .._core._messages import send

    text = sys.stdin.read() if args.message == "-" else args.message
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise AutodurableError(
            f"the message is not valid JSON ({exc}); write it as JSON, for example "
            "'{\"approved\": true}' or '\"yes\"' (a string needs its quotes); nothing was sent"
        ) from None
    if message is None:
        raise AutodurableError(
            "the message is null, which recv() returns on a timeout; send a value instead, "
            "such as '{\"approved\": false}'; nothing was sent"
        )
    if not args.allow_unknown and missing_state() is not None:  # opening would create it
        raise WorkflowNotFound(
            f"no workflow with id {args.workflow_id!r}: there is no state database at "
            f"{get_runtime().location}; nothing was sent (--allow-unknown sends it anyway, "
            "for a workflow that starts later)"
        )
    store = get_runtime().store
    record = store.get_workflow(args.workflow_id)
    if record is None and not args.allow_unknown:
        raise WorkflowNotFound(
            f"no workflow with id {args.workflow_id!r} in {store.url}; nothing was sent "
            "(--allow-unknown sends it anyway, for a workflow that starts later)"
        )
    if record is not None and record.status in (SUCCEEDED, FAILED):
        print(
            f"autodurable: workflow {args.workflow_id!r} has {record.status}: nothing will "
            "receive the message; nothing was sent",
            file=sys.stderr,
        )
        return 1
    sent = send(args.workflow_id, message, topic=args.topic, idempotency_key=args.idempotency_key)
    topic = f" on topic {args.topic!r}" if args.topic else ""
    if sent:
        text = f"sent to {args.workflow_id}{topic}"
        if record is not None and record.status == CANCELLED:
            text += " (it is cancelled: it receives the message once it is resumed)"
    else:
        text = (
            f"not sent again: {args.workflow_id} already has a message with idempotency key "
            f"{args.idempotency_key!r}"
        )
    _emit(args, {"workflow_id": args.workflow_id, "topic": args.topic, "sent": sent}, text)
    return 0
