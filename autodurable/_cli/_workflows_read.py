"""``autodurable workflows list | show | steps``: read the state, change nothing.

Invariants are those of `_workflows` (tables for people, ``--json`` for
scripts, exit codes); these commands never write to the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from .._control._info import StepInfo, WorkflowInfo
from .._control._operations import (
    list_workflows,
    program_hint,
    workflow_info,
    workflow_steps,
)
from .._core._names import PACKAGE_DIR
from .._core._runtime import get_runtime
from .._core._waiting import wait_for
from .._errors import WorkflowNotFound
from .._store import (
    CANCELLED,
    FAILED,
    FINISHED_STATUSES,
    PENDING,
    RETRYING,
    SUCCEEDED,
    LimitWait,
    WorkflowRecord,
)
from ._format import emit, preview, span, table, when

PICKUP = (
    "an executor with its code picks it up (a process that called "
    "autodurable.recover(watch=True): at once on PostgreSQL, within seconds on SQLite)"
)


# -- formatting ---------------------------------------------------------------------------


def _short_type(error_type: str | None) -> str:
    return (error_type or "").rpartition(":")[2] or "error"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def code_version_here(info: WorkflowInfo) -> str | None:
    """The version of this workflow's code as it is here (configured, or its file)."""
    from .._core._app_versions import source_version

    configured = get_runtime().settings.app_version
    if configured:
        return configured
    return source_version(info.name, [os.getcwd(), *sys.path])


def say_where(args: argparse.Namespace) -> None:
    """Say on stderr where the state read lives (people's output only: --json stays one
    document on stdout)."""
    if not args.json:
        print(f"autodurable: state in {get_runtime().location}", file=sys.stderr)


def list_command(args: argparse.Namespace) -> int:
    found = list_workflows(
        args.status,
        args.name,
        since=args.since,
        until=args.until,
        app_version=args.where_version,
        error_type=args.where_error,
        queue=args.where_queue,
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
            here = code_version_here(info)
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
    emit(args, document, "\n".join(lines))
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any(
        (args.status, args.name, args.since, args.until, args.offset, args.where_version)
    ) or bool(args.where_error or args.where_queue)


def show_command(args: argparse.Namespace) -> int:
    runtime = get_runtime()
    info = workflow_info(args.workflow_id)
    store = runtime.store
    steps = store.list_steps(info.workflow_id)
    events = {key: json.loads(value) for key, value in store.list_events(info.workflow_id).items()}
    messages = store.list_messages(info.workflow_id)
    waiting = [m for m in messages if m.consumed_at is None]
    executor = store.get_executor(info.executor_id) if info.executor_id else None
    waits = store.limit_waits(info.workflow_id)
    streams = store.list_streams(info.workflow_id)
    document = info.to_json()
    document["steps_recorded"] = len(steps)
    document["events"] = events
    document["messages"] = {"waiting": len(waiting), "received": len(messages) - len(waiting)}
    document["limit_waits"] = [
        {"step": w.step, "step_name": w.step_name, "limit": w.key, "waited": w.waited}
        for w in waits
    ]
    document["streams"] = streams
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
        ("status", status_line(info)),
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
    lines += [("limits", line) for line in _limit_lines(waits)]
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
    for key, count in sorted(streams.items()):
        where = f"autodurable workflows stream {info.workflow_id} {key}"
        lines.append(("stream", f"{key}: {count} value(s) ({where})"))
    text = "\n".join(f"{label:<10} {value}" for label, value in lines)
    if info.traceback and info.status == FAILED:
        trace = _without_our_frames(info.traceback)
        text += "\ntraceback:\n" + "\n".join("  " + line for line in trace.splitlines())
    hint = _hint(info, executor)
    if hint:
        text += f"\n\nhint: {hint}"
    emit(args, document, text)
    return 0


def _limit_lines(waits: list[LimitWait]) -> list[str]:
    """One line per limit on APIs the workflow's steps waited for: how many attempts
    took a permit, the time they waited in all, and the longest wait."""
    lines = []
    for key in sorted({w.key for w in waits}):
        under = [w for w in waits if w.key == key]
        longest = max(under, key=lambda w: w.waited)
        total = sum(w.waited for w in under)
        lines.append(
            f"{key}: {len(under)} attempt(s) waited {span(total)} in all; longest "
            f"{span(longest.waited)} (step {longest.step} {longest.step_name})"
        )
    return lines


def status_line(info: WorkflowInfo) -> str:
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
    here = code_version_here(info)
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
        here = code_version_here(info)
        if here is not None and here != info.app_version:
            return (
                "nobody runs it now, and it was started by another version of its code than "
                "the one here: executors running this code leave it to a process running "
                "that version. To run it here with this code: autodurable workflows resume "
                f"{info.workflow_id} --run"
            )
    return (
        f"nobody runs it now: {PICKUP}; or run it here: autodurable workflows resume "
        f"{info.workflow_id} --run"
    )


def steps_command(args: argparse.Namespace) -> int:
    found = workflow_steps(args.workflow_id)
    info = workflow_info(args.workflow_id)
    alive = runs_now(info)
    running = running_steps(info, found, alive)
    states = {entry["place"]: entry for entry in running}
    rows = [
        [
            step.place,
            _cut(step.name, 40),
            _step_status(step, states.get(step.place)),
            str(step.attempts),
            span(step.duration),
            step_result(step),
        ]
        for step in found
    ]
    if rows:
        text = table(["STEP", "NAME", "STATUS", "ATTEMPTS", "DURATION", "RESULT"], rows)
    else:
        text = f"{args.workflow_id} has no recorded steps"
    if info.status == PENDING and alive and not running:
        text += (
            f"\n{info.workflow_id} is pending: a step in its first attempt is recorded when "
            "that attempt ends, so it is not listed while it runs"
        )
    document: dict[str, Any] = {
        "workflow_id": args.workflow_id,
        "steps": [step.to_json() for step in found],
    }
    if info.status == PENDING:
        document["running"] = running
    emit(args, document, text)
    return 0


def runs_now(info: WorkflowInfo) -> bool:
    """Whether a live executor owns the (pending) workflow."""
    if info.status != PENDING or info.executor_id is None:
        return False
    executor = get_runtime().store.get_executor(info.executor_id)
    return executor is not None and _alive(executor)


def running_steps(info: WorkflowInfo, steps: list[StepInfo], alive: bool) -> list[dict[str, Any]]:
    """The steps of a pending workflow whose next attempt runs now or is due, as far as
    the store knows: ``{"place", "name", "attempt", "state", "due"}`` each.

    Only a step whose earlier attempts failed is known before it ends: each failed
    attempt that will be retried is recorded (status retrying, with the time the next
    attempt is due), so its next attempt is number attempts + 1, and it runs once that
    time has passed (state "running"; "backoff" before; "due" when no live executor
    runs the workflow, `alive` false, so the attempt runs when one takes it). A step in
    its first attempt writes nothing until that attempt ends (one write per step, none
    before), so the store cannot tell which step runs then, nor its name: none is listed.
    """
    if info.status != PENDING:
        return []
    retrying = [step for step in steps if step.status == RETRYING]
    if not retrying:
        return []
    now = time.time()
    found = []
    for step in retrying:
        due = step.output if isinstance(step.output, int | float) else None
        if not alive:
            state = "due"
        elif due is not None and due > now:
            state = "backoff"
        else:
            state = "running"
        entry = {"place": step.place, "name": step.name, "attempt": step.attempts + 1}
        found.append({**entry, "state": state, "due": due})
    return found


def _step_status(step: StepInfo, running: dict[str, Any] | None) -> str:
    if running is None:
        return step.status
    attempt = running["attempt"]
    if running["state"] == "running":
        return f"running (attempt {attempt})"
    if running["state"] == "backoff":
        return f"retrying (attempt {attempt} at {when(running['due'])})"
    return f"retrying (attempt {attempt} when it runs again)"


def step_result(step: StepInfo) -> str:
    if step.error_type is not None:
        return _cut(f"{_short_type(step.error_type)}: {step.error_message}", 60)
    if step.status == "waiting" and isinstance(step.output, int | float):
        return f"waiting for a message until {when(float(step.output))}"
    if step.status == "timed_out":
        return "no message before its timeout: None"
    if step.status == "unrecorded":
        return "(not recordable: runs again on resume)"
    if step.name == "autodurable.sleep" and isinstance(step.output, int | float):
        return f"sleeps until {when(float(step.output))}"  # its recorded wake-up time
    return preview(step.output)


def outcome_text(info: WorkflowInfo) -> str:
    """How an ended workflow ended, on one line."""
    if info.status == SUCCEEDED:
        return f"{info.workflow_id} succeeded: {preview(info.output, 200)}"
    return f"{info.workflow_id} {status_line(info)}"


def report_outcome(
    args: argparse.Namespace, info: WorkflowInfo, extra: dict[str, Any] | None = None
) -> int:
    """Show how an ended workflow ended (`extra` keys added to the JSON); 0 when it
    succeeded, else 1."""
    emit(args, {**info.to_json(), **(extra or {})}, outcome_text(info))
    return 0 if info.status == SUCCEEDED else 1


def wait_command(args: argparse.Namespace) -> int:
    """``workflows wait ID``: block until the workflow ends (woken by the store where it
    can notify), wherever it runs; 3 when the timeout passes first."""
    runtime = get_runtime()
    workflow_id = args.workflow_id
    workflow_info(workflow_id)  # an unknown id is refused at once

    def ended() -> WorkflowRecord | None:
        record = runtime.store.get_workflow(workflow_id)
        if record is None:
            raise WorkflowNotFound(f"workflow {workflow_id!r} was deleted while waited for")
        return record if record.status in FINISHED_STATUSES else None

    record = wait_for(runtime, workflow_id, ended, timeout=args.timeout)
    if record is None:
        text = f"{workflow_id} is still pending after {span(args.timeout)}"
        emit(args, {**workflow_info(workflow_id).to_json(), "timed_out": True}, text)
        return 3
    return report_outcome(args, WorkflowInfo.from_record(record))
