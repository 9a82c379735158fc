"""The dialect-free rules of the store's transactions, written once for every backend.

A backend runs the SQL; the decisions taken inside its transactions (what a
look for a message records, what a finish that wrote nothing means, when a
workflow is no longer ours) are made here, so SQLite and PostgreSQL cannot
drift apart.

Invariants:
- Pure functions of the values a transaction read; no I/O.
- A write fenced by ownership that changed nothing means the workflow is no
  longer this executor's (`not_owned`), except a finish that found its own
  workflow cancelled meanwhile, which reports the cancellation.
"""

from __future__ import annotations

import json
from typing import Any

from .._errors import OwnershipLost
from ._protocol import (
    CANCELLED,
    ENDED_STATUSES,
    SUCCEEDED,
    TIMED_OUT,
    WAITING,
    Received,
    WorkflowRecord,
)

# The ended workflows, as the WHERE of the index of them by last update (migrations
# sqlite/0015, postgresql/0014) says it: a query that repeats it word for word is
# one SQLite answers from that index, which holds nothing else.
ENDED = f"status IN ({', '.join(repr(status) for status in ENDED_STATUSES)})"

StepRow = tuple[str, int, str, str, str | None, None, int, float, float | None, str, str]


def not_owned(workflow_id: str) -> OwnershipLost:
    """The error of a write refused because another executor owns the workflow now."""
    return OwnershipLost(f"workflow {workflow_id!r} is no longer owned by this executor")


def finished_status(
    workflow_id: str, executor_id: str, status: str, written: int, found: WorkflowRecord | None
) -> str:
    """The status a finish leaves: `status` when it wrote its row, CANCELLED when the
    workflow, still ours, was cancelled meanwhile; otherwise `not_owned`."""
    if written == 1:
        return status
    if found is None or found.executor_id != executor_id or found.status != CANCELLED:
        raise not_owned(workflow_id)
    return CANCELLED


def receive_step(
    workflow_id: str,
    executor_id: str,
    position: int,
    name: str,
    branch: str,
    payload: str | None,
    now: float,
    deadline: float,
    first: bool,
) -> StepRow | None:
    """The recv step a look records: the message consumed (`payload`), a time-out once
    the deadline passed, the deadline itself on the first look; None: nothing to record."""
    step: tuple[str, str | None, float | None]
    if payload is not None:
        step = (SUCCEEDED, payload, now)
    elif now >= deadline:
        step = (TIMED_OUT, None, now)
    elif first:
        step = (WAITING, json.dumps(deadline), None)
    else:
        return None
    status, output, finished = step
    return (
        workflow_id, position, name, status, output, None, 1, now, finished, executor_id, branch,
    )  # fmt: skip


def received(status: str, row: StepRow | None, found: Any) -> Received:
    """What a look for a message tells the waiter, given the step it recorded."""
    if row is None or row[3] == WAITING:
        return Received(status)
    return Received(status, row[4] if found is not None else None, found is None)


# The event a rewind leaves on its workflow: every rewind, oldest first, so that the
# lineage of a workflow run again in place stays readable (`workflows show`, the
# dashboard). A list of {"to_step": N, "at": epoch seconds}, plain JSON.
REWINDS_EVENT = "autodurable.rewinds"


def rewinds_after(previous: str | None, to_step: int, at: float) -> str:
    """The value of `REWINDS_EVENT` once one more rewind, to `to_step`, is added."""
    try:
        found = json.loads(previous) if previous is not None else []
    except ValueError:
        found = []
    history = found if isinstance(found, list) else []
    return json.dumps([*history, {"to_step": to_step, "at": at}], separators=(",", ":"))
