"""``autodurable workflows show ID --follow``: a workflow's steps and status as they are
recorded, until it ends.

Invariants:
- It only reads, every `POLL` seconds (never in a busy loop), and prints each
  step when it is first seen and again whenever its record changes (a retry, a
  received message), in the order of the store's listing; a change of status
  or of executor is printed when it is seen.
- The workflow row is read before its steps, and steps are written before the
  workflow ends, so the steps printed before the end are all of them.
- Exit codes are those of ``workflows wait``: 0 succeeded, 1 failed or
  cancelled, 3 the ``--timeout`` passed first (it is still pending); 2 for an
  unknown id, or a workflow deleted while followed.
- With ``--json``, one JSON document per line and event, each with an
  ``"event"`` key: ``workflow`` (first: the workflow as ``show --json`` has it),
  ``step`` (a step as ``steps --json`` has it, with ``workflow_id``),
  ``status`` (``workflow_id``, ``status``, ``executor_id``), then ``ended`` (the
  workflow) or ``timeout`` (the workflow, still pending).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .._control._info import StepInfo, WorkflowInfo
from .._control._operations import workflow_info
from .._core._runtime import get_runtime
from .._errors import WorkflowNotFound
from .._store import FINISHED_STATUSES, RETRYING, SUCCEEDED, StepRecord
from ._format import span, when
from ._workflows_read import outcome_text, show_command, status_line, step_result

POLL = 0.2  # seconds between two looks at the store


def _line(document: dict[str, Any]) -> None:
    print(json.dumps(document, ensure_ascii=False, separators=(",", ":")), flush=True)


def _say(text: str) -> None:
    print(text, flush=True)


def _signature(step: StepRecord) -> tuple[Any, ...]:
    """What changes when a step's record is written again."""
    return (step.status, step.attempts, step.finished_at, step.output, step.error)


def _step_text(step: StepInfo) -> str:
    attempts = f"{step.attempts} attempt{'s' if step.attempts != 1 else ''}"
    status = step.status
    if status == RETRYING and isinstance(step.output, int | float):  # when the next is due
        status = f"retrying (attempt {step.attempts + 1} at {when(step.output)})"
    return (
        f"step {step.place}  {step.name}  {status}  {attempts}  {span(step.duration)}  "
        f"{step_result(step)}"
    )


def follow_command(args: argparse.Namespace) -> int:
    """Print the workflow, then its steps and status changes until it ends; wait's codes."""
    store = get_runtime().store
    workflow_id = args.workflow_id
    first = workflow_info(workflow_id)  # an unknown id is refused as by every command
    if args.json:
        _line({"event": "workflow", **first.to_json()})
    else:
        show_command(args)
        print(
            f"autodurable: following {workflow_id} until it ends (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen: dict[tuple[str, int], tuple[Any, ...]] = {}
    last = (first.status, first.executor_id)
    try:
        while True:
            record = store.get_workflow(workflow_id)  # before its steps: see the invariants
            if record is None:
                raise WorkflowNotFound(f"workflow {workflow_id!r} was deleted while followed")
            for step in store.list_steps(workflow_id):
                key, signature = (step.branch, step.position), _signature(step)
                if seen.get(key) != signature:
                    seen[key] = signature
                    _print_step(args, workflow_id, StepInfo.from_record(step))
            info = WorkflowInfo.from_record(record)
            if (record.status, record.executor_id) != last:
                last = (first.status, first.executor_id)
                _print_status(args, info)
            if record.status in FINISHED_STATUSES:
                if args.json:
                    _line({"event": "ended", **info.to_json()})
                else:
                    _say(outcome_text(info))
                return 0 if record.status == SUCCEEDED else 1
            if deadline is not None and time.monotonic() >= deadline:
                if args.json:
                    _line({"event": "timeout", **info.to_json(), "timed_out": True})
                else:
                    _say(f"{workflow_id} is still pending after {span(args.timeout)}")
                return 3
            pause = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            time.sleep(max(0.0, pause))
    except KeyboardInterrupt:
        return 130


def _print_step(args: argparse.Namespace, workflow_id: str, step: StepInfo) -> None:
    if args.json:
        _line({"event": "step", "workflow_id": workflow_id, **step.to_json()})
    else:
        _say(_step_text(step))


def _print_status(args: argparse.Namespace, info: WorkflowInfo) -> None:
    if args.json:
        document = {"workflow_id": info.workflow_id, "status": info.status}
        _line({"event": "status", **document, "executor_id": info.executor_id})
    elif info.status not in FINISHED_STATUSES:  # an end is said by the outcome line
        runner = info.executor_id or "nobody (waiting for an executor)"
        _say(f"status {status_line(info)}, run by {runner}")
