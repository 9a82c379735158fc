"""``autodurable workflows ...`` and ``autodurable send``: operate workflows from a shell.

Invariants:
- Tables for people, ``--json`` for scripts: one JSON document on stdout, in
  the documented shape (docs/operating.md); keys are only ever
  added. Times in JSON are seconds since the epoch, values the recorded JSON.
- Exit codes: 0 done, 1 the workflow is not as asked (cancelling one that
  ended, a run that ends failed or cancelled), 2 bad input (an unknown id, a
  step number out of range, malformed JSON); errors are one line on stderr.
- Bad input changes nothing: every argument and id is checked first.
- The state database is found as git finds its repository (see
  `_config_source`); no command creates one but ``start``: when there is none
  where it is looked for, the command says which path it looked at and exits
  with 1 (``send``: 2, an unknown id; ``send --allow-unknown`` creates it, to
  record a message for a workflow to come). ``list``, ``show`` and ``steps``
  say on stderr where the state is.
- Nothing imports the application's code except ``--run`` and ``start``, which
  import the workflow's module (the working directory first on the path).
- The batch forms of ``cancel`` and ``resume``, ``start`` and running a workflow
  here are in `_workflows_act`; ``show --follow`` is in `_workflows_follow`;
  ``stream`` is in `_streams`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .._control._info import WorkflowInfo
from .._control._operations import (
    cancel,
    delete,
    fork,
    fork_here,
    gc,
    program_hint,
    resume,
    run_here,
    workflow_info,
)
from .._control._registry import RUN_PREFIX, is_program_run
from .._core._app_versions import version_for
from .._core._runtime import get_runtime
from .._errors import AutodurableError, WorkflowNotFound
from .._store import CANCELLED, ENDED_STATUSES, FAILED, PENDING, SUCCEEDED, WAITING
from ._format import span
from ._streams import stream_command
from ._workflows_act import (
    batch_cancel,
    batch_resume,
    check_code_here,
    import_here,
    other_version,
    run_and_report,
    selection,
    start_command,
    version_problem,
)
from ._workflows_follow import follow_command
from ._workflows_read import (
    PICKUP,
    emit,
    list_command,
    say_where,
    show_command,
    steps_command,
    wait_command,
)

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


def _changes_command(name: str) -> Callable[[argparse.Namespace], int]:
    """The command `name` of `_changes`, imported when it runs: it brings the replay
    machinery (and asyncio), which the other commands never need."""

    def command(args: argparse.Namespace) -> int:
        from . import _changes

        return int(getattr(_changes, name)(args))

    return command


def main_workflows(args: argparse.Namespace) -> int:
    """Run ``autodurable workflows ACTION``; returns the exit code."""
    action = getattr(args, "action", None)
    if action is None:
        args.workflows_parser.print_help()
        return 0
    problem = missing_state() if action != "start" else None  # starting one records it
    if problem is not None:
        print(f"autodurable: {problem}", file=sys.stderr)
        return 1
    handlers = {
        "list": list_command,
        "show": _show,
        "start": start_command,
        "steps": steps_command,
        "wait": wait_command,
        "cancel": _cancel,
        "resume": _resume,
        "fork": _fork,
        "delete": _delete,
        "gc": _gc,
        "export": _changes_command("export_command"),
        "upgrade": _changes_command("upgrade_command"),
        "rewind": _changes_command("rewind_command"),
        "stream": stream_command,
    }
    status = handlers[action](args)
    if status == 0 and action in ("list", "show", "steps"):
        say_where(args)
    return status


def _show(args: argparse.Namespace) -> int:
    if args.follow:
        return follow_command(args)
    if args.timeout is not None:
        raise AutodurableError(
            "--timeout goes with --follow (show prints at once; wait and show --follow wait)"
        )
    return show_command(args)


def _cancel(args: argparse.Namespace) -> int:
    reason = args.reason or f"cancelled with the autodurable command line by {_who()}"
    found = selection(args, "cancel")
    if found is not None:
        return batch_cancel(args, found, reason)
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
    emit(args, document, text)  # one stream: the exit code says it was not pending
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
    found = selection(args, "resume")
    if found is not None:
        return batch_resume(args, found)
    info = workflow_info(args.workflow_id)
    if args.run:
        return _resume_here(args, info)
    problem = version_problem(info, args)
    if problem is not None:
        raise AutodurableError(problem)
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
            f"{PICKUP}; or run it here: autodurable workflows resume {after.workflow_id} --run"
        )
        here = other_version(after)
        if here is not None:  # asked for with --version: a process of that version runs it
            lines.append(
                f"note: it is of version {after.app_version} and the code here is version "
                f"{here}: only a process running version {after.app_version} takes it"
            )
    emit(args, document, "\n".join(lines))
    return 0


def _resume_here(args: argparse.Namespace, info: WorkflowInfo) -> int:
    if info.is_program_run:
        raise AutodurableError(program_hint(info.workflow_id, info.name) + "; --run cannot")
    if info.status == SUCCEEDED:
        raise AutodurableError(f"workflow {info.workflow_id!r} has succeeded; nothing to run")
    import_here()
    check_code_here(info)
    if info.status in (FAILED, CANCELLED):
        resume(info.workflow_id, app_version=args.app_version, any_version=args.any_version)
    return run_and_report(args, info.workflow_id, lambda: run_here(get_runtime(), info.workflow_id))


def _fork(args: argparse.Namespace) -> int:
    source = workflow_info(args.workflow_id)
    fn = None
    if args.run:
        if source.is_program_run:
            raise AutodurableError(
                f"{source.workflow_id} is a program run by `autodurable run`: fork it without "
                "--run, then run its command with --run-id NEW_ID"
            )
        import_here()
        fn = check_code_here(source)
    version = args.app_version
    if fn is not None:
        if version is None:
            version = version_for(get_runtime().settings, fn)
        _, info, future = fork_here(
            source.workflow_id, args.from_step, fn, new_id=args.new_id, app_version=version
        )
        note = _new_keys(info.workflow_id, args.from_step)
        if not args.json:
            print(f"autodurable: note: {note}", file=sys.stderr)
        extra = {"idempotency_note": note}
        return run_and_report(args, info.workflow_id, lambda: future, extra)
    copied, info = fork(source.workflow_id, args.from_step, new_id=args.new_id, app_version=version)
    document = {
        "workflow_id": info.workflow_id,
        "forked_from": source.workflow_id,
        "from_step": args.from_step,
        "steps_copied": copied,
        "status": info.status,
        "idempotency_note": _new_keys(info.workflow_id, args.from_step),
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
            f"{PICKUP}; or run it here: autodurable workflows resume {info.workflow_id} --run"
        )
    emit(args, document, "\n".join(lines))
    if not args.json:
        print(f"autodurable: note: {document['idempotency_note']}", file=sys.stderr)
    return 0


def _new_keys(workflow_id: str, from_step: int) -> str:
    """What a fork means for the idempotency keys of the steps it runs again."""
    return (
        f"steps from {from_step} on run again under new idempotency keys ({workflow_id}:"
        f"{from_step}, ...): an API that deduplicates by key sees them as new requests"
    )


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
    emit(args, {"deleted": ids}, f"deleted {len(ids)} workflow(s): {', '.join(ids)}")
    return 0


def _gc(args: argparse.Namespace) -> int:
    statuses = args.status or list(ENDED_STATUSES)
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
    emit(args, document, text)
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
    elsewhere = _waits_elsewhere(args.workflow_id, args.topic) if record is not None else None
    if elsewhere is not None and args.strict:
        raise AutodurableError(f"{elsewhere}; nothing was sent (--strict)")
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
    document = {"workflow_id": args.workflow_id, "topic": args.topic, "sent": sent}
    if elsewhere is not None:
        document["warning"] = elsewhere
    emit(args, document, text)
    if elsewhere is not None and not args.json:
        print(f"autodurable: note: {elsewhere} (a recv on that topic receives it)", file=sys.stderr)
    return 0


def _topic_label(topic: str | None) -> str:
    return f"topic {topic!r}" if topic else "no topic"


def _waits_elsewhere(workflow_id: str, topic: str | None) -> str | None:
    """Why a message on `topic` does not reach the workflow's waiting recv, or None.

    Only a workflow waiting right now tells: one that is not waiting may recv on
    `topic` later, and a message is kept until it does.
    """
    prefix = "autodurable.recv"
    waiting = {
        step.name[len(prefix) + 1 :] or None
        for step in get_runtime().store.list_steps(workflow_id)
        if step.status == WAITING and step.name.startswith(prefix)
    }
    if not waiting or topic in waiting:
        return None
    on = ", ".join(sorted(_topic_label(t) for t in waiting))
    return f"workflow {workflow_id!r} is waiting on {on}, not on {_topic_label(topic)}"
