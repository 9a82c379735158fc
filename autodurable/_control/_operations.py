"""Operating workflows: list, inspect, cancel, resume, fork and delete them.

Used by `WorkflowHandle` methods, `autodurable.list_workflows` /
`delete_workflows` and the ``autodurable workflows`` commands.

Invariants:
- Reads never decode the application's values: inputs, outputs and step
  results are the recorded JSON, parsed (values the codec tags, such as
  tuples or datetimes, appear as their tagged objects), and exceptions are
  their type, message and traceback. So they work without the application's
  code, in the CLI.
- Bad input raises before anything changes: an unknown id
  (`WorkflowNotFound`), a step number outside the recorded steps, an id that
  exists, a status that does not allow the operation (`AutodurableError`,
  naming the problem and the fix).
- Each change is one store call that re-checks the state itself, so racing
  operators and executors cannot corrupt a workflow: cancelling only changes
  a pending workflow, resuming only a failed or cancelled one.
- `resume` and `fork` run the workflow in this process when asked to and its
  code is importable here; otherwise it is left pending and unowned for an
  executor that has the code (``recover(watch=True)``). Programs run by
  ``autodurable run`` are resumed by running their command again.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Collection, Sequence
from concurrent.futures import Future
from typing import Any

from .._core._app_versions import version_for
from .._core._runtime import Runtime, get_runtime
from .._errors import AutodurableError, WorkflowCancelled, WorkflowNotFound
from .._store import (
    CANCELLED,
    ENDED_STATUSES,
    FAILED,
    FINISHED_STATUSES,
    PENDING,
    QUEUED_STATUSES,
    WORKFLOW_STATUSES,
    Claim,
    StepRecord,
    WorkflowFilter,
    WorkflowRecord,
)
from ._info import StepInfo, WorkflowInfo
from ._registry import RUN_PREFIX, find_workflow, is_program_run

# _LAUNCHING: the functions that start or run a workflow here import `_launch` (and
# with it the workflow machinery and asyncio) when called: reading and changing stored
# workflows, what most commands do, never needs it.


def _root(step: StepRecord) -> int:
    """The position in the workflow's own code where `step`, or its branch, was called.

    A step of branch "3.2" has 3: the workflow started the work at its
    position 3 (and that work started branch "3.2"). `fork` counts these, as
    the store's `fork_workflow` does.
    """
    return int(step.branch.split(".", 1)[0]) if step.branch else step.position


# -- reading -----------------------------------------------------------------------------


def _record(runtime: Runtime, workflow_id: str) -> WorkflowRecord:
    record = runtime.store.get_workflow(workflow_id)
    if record is None:
        raise WorkflowNotFound(
            f"no workflow with id {workflow_id!r} in {runtime.store.url} "
            "(autodurable workflows list shows the ids; is the database URL the right one?)"
        )
    return record


def workflow_info(workflow_id: str) -> WorkflowInfo:
    """What the store holds about a workflow; raises `WorkflowNotFound`."""
    return WorkflowInfo.from_record(_record(get_runtime(), workflow_id))


def workflow_steps(workflow_id: str) -> list[StepInfo]:
    """A workflow's recorded steps in order; raises `WorkflowNotFound`."""
    runtime = get_runtime()
    _record(runtime, workflow_id)
    return [StepInfo.from_record(step) for step in runtime.store.list_steps(workflow_id)]


def _timestamp(value: float | dt.datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.timestamp()  # a naive datetime is local time, as datetime.now() gives
    raise TypeError(f"expected seconds since the epoch or a datetime, not {type(value).__name__}")


def name_pattern(name: str) -> tuple[str | None, str | None]:
    """(exact name, LIKE pattern) for a name filter; ``*`` in it matches anything."""
    if "*" not in name:
        return name, None
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return None, escaped.replace("*", "%")


def check_statuses(statuses: Collection[str]) -> list[str]:
    """The statuses, validated: each one of pending, succeeded, failed, cancelled."""
    unknown = sorted(set(statuses) - set(WORKFLOW_STATUSES))
    if unknown:
        raise AutodurableError(
            f"unknown status {', '.join(map(repr, unknown))}: the statuses are "
            f"{', '.join(WORKFLOW_STATUSES)}"
        )
    return list(statuses)


def workflow_filter(
    status: str | Collection[str] | None = None,
    name: str | None = None,
    *,
    since: float | dt.datetime | None = None,
    until: float | dt.datetime | None = None,
    app_version: str | None = None,
    error_type: str | None = None,
    queue: str | None = None,
) -> WorkflowFilter:
    """The store's filter for these arguments (those of `list_workflows`), validated."""
    statuses = None
    if status is not None:
        statuses = tuple(check_statuses([status] if isinstance(status, str) else list(status)))
    exact, like = name_pattern(name) if name else (None, None)
    for label, value in (
        ("app_version", app_version),
        ("error_type", error_type),
        ("queue", queue),
    ):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise AutodurableError(f"{label} must be a non-empty string, not {value!r}")
    return WorkflowFilter(
        statuses, exact, like, _timestamp(since), _timestamp(until), app_version, error_type, queue
    )


def list_workflows(
    status: str | Collection[str] | None = None,
    name: str | None = None,
    *,
    since: float | dt.datetime | None = None,
    until: float | dt.datetime | None = None,
    app_version: str | None = None,
    error_type: str | None = None,
    queue: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[WorkflowInfo]:
    """Workflows, newest first: ``list_workflows(status="failed", since=time.time() - 3600)``.

    `status` is one status or several (enqueued, delayed, pending, succeeded,
    failed, cancelled);
    `name` a workflow name (``"module:qualname"`` or the ``@workflow(name=...)``),
    where ``*`` matches anything (``"*:checkout"``); `since` / `until` bound the
    start time (seconds since the epoch or datetimes); `app_version` is the
    version recorded for the workflow; `error_type` the type of its recorded
    exception, as ``"ValueError"``, ``"builtins:ValueError"`` or
    ``"myapp.errors.CardDeclined"``; `queue` the queue it was enqueued on;
    `limit` and `offset` page through the rest.
    """
    if limit < 1 or offset < 0:
        raise AutodurableError("limit must be at least 1 and offset at least 0")
    where = workflow_filter(
        status,
        name,
        since=since,
        until=until,
        app_version=app_version,
        error_type=error_type,
        queue=queue,
    )
    records = get_runtime().store.find_workflows(where, limit, offset)
    return [WorkflowInfo.from_record(record) for record in records]


def matching_workflows(where: WorkflowFilter) -> list[WorkflowInfo]:
    """Every workflow `where` matches, newest first (read in pages, before anything is
    changed: a batch action acts on this list)."""
    store = get_runtime().store
    found: dict[str, WorkflowInfo] = {}  # one started meanwhile shifts the pages: once each
    offset = 0
    while True:
        page = store.find_workflows(where, 500, offset)
        for record in page:
            found.setdefault(record.workflow_id, WorkflowInfo.from_record(record))
        offset += len(page)
        if len(page) < 500:
            return list(found.values())


# -- starting ---------------------------------------------------------------------------


def start_pending(
    fn: Any, args: Sequence[Any], kwargs: dict[str, Any], workflow_id: str | None = None
) -> WorkflowInfo:
    """Record a new workflow of `fn` pending and unowned, for an executor with its code.

    Nothing runs here: any process that called ``recover(watch=True)`` takes it
    (at once on PostgreSQL). It is recorded as `start` records one (inputs,
    version, deadline) and then released. Raises `AutodurableError` when
    `workflow_id` exists or the inputs cannot be recorded.
    """
    from ._launch import new_child_id, record_before_start  # see _LAUNCHING

    runtime = get_runtime()
    workflow_id = workflow_id or new_child_id(fn)
    timeout = getattr(fn, "_self_autodurable_timeout", None)
    claim = record_before_start(fn, workflow_id, tuple(args), dict(kwargs), timeout)
    if claim is None:
        if runtime.store.get_workflow(workflow_id) is not None:
            raise AutodurableError(f"a workflow with id {workflow_id!r} exists already")
        raise AutodurableError(
            f"the inputs of {workflow_id!r} cannot be recorded (autodurable's codec "
            "refuses them); nothing was recorded"
        )
    runtime.store.release_workflow(workflow_id, runtime.executor.id)
    return WorkflowInfo.from_record(_record(runtime, workflow_id))


# -- cancel ----------------------------------------------------------------------------


def cancel(workflow_id: str, reason: str | None = None) -> tuple[bool, WorkflowInfo]:
    """Cancel a pending or queued workflow: (whether this call cancelled it, its info after).

    A workflow that is running stops at its next step boundary (the step it is
    in finishes and is recorded); one that waits in `recv` or `sleep` stops
    at once; one waiting in a queue is never started. A workflow that has
    ended is left as it is.
    """
    runtime = get_runtime()
    before = _record(runtime, workflow_id)
    changed = False
    if before.status == PENDING or before.status in QUEUED_STATUSES:
        error = WorkflowCancelled(workflow_id, reason or "cancelled by an operator")
        runtime.store.cancel_workflow(workflow_id, runtime.codec.encode_error(error))
        after = _record(runtime, workflow_id)
        changed = after.status == CANCELLED
    else:
        after = before
    return changed, WorkflowInfo.from_record(after)


# -- resume and fork -------------------------------------------------------------------


def run_here(runtime: Runtime, workflow_id: str) -> Future[Any]:
    """Claim a pending workflow and run it on a worker thread here; its future.

    Raises LookupError when its code cannot be imported here, and
    `AutodurableError` when its inputs cannot be decoded or a live executor
    runs it.
    """
    from ._launch import submit_claimed  # see _LAUNCHING

    record = _record(runtime, workflow_id)
    if is_program_run(record.name):
        raise AutodurableError(program_hint(record.workflow_id, record.name))
    fn = find_workflow(record.name)
    claim = runtime.store.claim_workflow(
        workflow_id, runtime.executor, version_for(runtime.settings, fn)
    )
    if claim is None:
        raise WorkflowNotFound(f"workflow {workflow_id!r} was deleted meanwhile")
    if not claim.claimed:
        if claim.workflow.status in FINISHED_STATUSES:
            raise AutodurableError(
                f"workflow {workflow_id!r} has {claim.workflow.status} meanwhile; nothing to run"
            )
        raise AutodurableError(
            f"workflow {workflow_id!r} is running on executor {claim.workflow.executor_id} "
            "(alive); it is not run twice"
        )
    return submit_claimed(runtime, fn, claim)


def program_hint(workflow_id: str, name: str) -> str:
    """How to continue a program run by ``autodurable run``."""
    label = name[len(RUN_PREFIX) :]
    return (
        f"{workflow_id} is a program run by `autodurable run {label}`: run the same command "
        f"again, in the same folder, to continue it (or `autodurable run --run-id {workflow_id} "
        f"{label}`)"
    )


def resume(
    workflow_id: str, *, app_version: str | None = None, any_version: bool = False
) -> tuple[int, WorkflowInfo]:
    """Make a failed or cancelled workflow pending again: (steps kept, its info after).

    Its failed step, if the last step failed, runs again; earlier steps are
    replayed. Its deadline is dropped. `app_version` changes its version,
    `any_version` lets code of any version run it (it then takes the version
    of the code that claims it); by default it keeps its version.
    """
    runtime = get_runtime()
    record = _record(runtime, workflow_id)
    if record.status not in (FAILED, CANCELLED):
        if record.status == PENDING:
            raise AutodurableError(
                f"workflow {workflow_id!r} is pending already: only failed and cancelled "
                "workflows are resumed (a pending one runs, or waits for an executor with "
                "its code)"
            )
        raise AutodurableError(
            f"workflow {workflow_id!r} has succeeded; there is nothing to resume (fork it "
            "to run its steps again: autodurable workflows fork ID --from-step N)"
        )
    kept = runtime.store.reopen_workflow(workflow_id, app_version=app_version, unpin=any_version)
    if kept is None:  # changed meanwhile
        raise AutodurableError(
            f"workflow {workflow_id!r} changed while it was being resumed; look again "
            "(autodurable workflows show ID)"
        )
    return kept, WorkflowInfo.from_record(_record(runtime, workflow_id))


def fork(
    workflow_id: str,
    from_step: int,
    *,
    new_id: str | None = None,
    app_version: str | None = None,
) -> tuple[int, WorkflowInfo]:
    """Start a new workflow that replays `workflow_id`'s steps before `from_step`.

    From step `from_step` on it runs the code as it is now (the fix-the-bug-
    and-continue flow). `from_step` is a position of the workflow's own code:
    work it ran concurrently (a branch, whose steps have places such as
    ``"3.1"``) is replayed whole when it was started before `from_step`, and
    runs again whole otherwise. The new workflow gets the same name and
    inputs, a new id (`new_id` or a fresh one) and `app_version` (None:
    whichever code runs it first); an executor with its code runs it. Returns
    (the number of steps copied, the new workflow's info).
    """
    copied, record, _ = _fork(get_runtime(), workflow_id, from_step, new_id, app_version, None)
    return copied, WorkflowInfo.from_record(record)


def fork_here(
    workflow_id: str,
    from_step: int,
    fn: Any,
    *,
    new_id: str | None = None,
    app_version: str | None = None,
) -> tuple[int, WorkflowInfo, Future[Any]]:
    """`fork`, with the new workflow owned by this process and run here at once by
    `fn` (its code, found here): (steps copied, its info, the future of its run)."""
    from ._launch import submit_claimed  # see _LAUNCHING

    runtime = get_runtime()
    owner = runtime.executor.id
    copied, record, kept = _fork(runtime, workflow_id, from_step, new_id, app_version, owner)
    future = submit_claimed(runtime, fn, Claim(record, True, kept, None))
    return copied, WorkflowInfo.from_record(record), future


def _fork(
    runtime: Runtime,
    workflow_id: str,
    from_step: int,
    new_id: str | None,
    app_version: str | None,
    owner: str | None,
) -> tuple[int, WorkflowRecord, list[StepRecord]]:
    """Copy `workflow_id` as a new pending workflow: (steps copied, its record, its
    steps: its own before `from_step` and the branches started before it)."""
    source = _record(runtime, workflow_id)
    steps = runtime.store.list_steps(workflow_id)
    last = max((_root(s) for s in steps), default=0)
    if isinstance(from_step, bool) or not isinstance(from_step, int):
        raise AutodurableError(f"from_step must be a step number, not {from_step!r}")
    if last == 0:
        raise AutodurableError(
            f"workflow {workflow_id!r} has no recorded steps: there is nothing to fork from; "
            "start it again instead"
        )
    if not 1 <= from_step <= last:
        raise AutodurableError(
            f"workflow {workflow_id!r} has steps recorded up to step {last}: --from-step takes "
            f"1 to {last}, the first step to run with the current code (autodurable workflows "
            "steps ID lists them; a step 3.1 is part of step 3)"
        )
    new_id = new_id or f"{workflow_id}-fork-{uuid.uuid4().hex[:8]}"
    taken = f"a workflow with id {new_id!r} exists already; choose another id"
    if runtime.store.get_workflow(new_id) is not None:
        raise AutodurableError(taken)
    now = time.time()
    record = WorkflowRecord(
        new_id, source.name, PENDING, source.inputs, None, None, owner, now, now,
        app_version, None, workflow_id, from_step,
    )  # fmt: skip
    copied = runtime.store.fork_workflow(workflow_id, record, from_step)
    if copied is None:
        raise AutodurableError(taken)
    return copied, record, [s for s in steps if _root(s) < from_step]


# -- deleting ----------------------------------------------------------------------------


def delete(workflow_id: str, force: bool = False) -> WorkflowInfo:
    """Delete a workflow with its steps, messages and events; its info before.

    A pending workflow is deleted only with `force` (cancel it first: a
    running one would otherwise stop at its next step with its history gone).
    """
    runtime = get_runtime()
    record = _record(runtime, workflow_id)
    if record.status == PENDING and not force:
        raise AutodurableError(
            f"workflow {workflow_id!r} is pending: cancel it first (autodurable workflows "
            "cancel ID), or delete it anyway with --force"
        )
    runtime.store.delete_workflows([workflow_id])
    return WorkflowInfo.from_record(record)


def gc(
    older_than: float, statuses: Sequence[str] = ENDED_STATUSES, dry_run: bool = False
) -> tuple[list[str], int]:
    """Delete workflows in `statuses` that ended more than `older_than` seconds ago.

    Also deletes messages older than that sent to workflow ids that do not
    exist. Returns (the ids deleted, or that would be with `dry_run`; the
    number of such messages deleted).
    """
    if older_than < 0:
        raise AutodurableError("older_than must be a duration of 0 seconds or more")
    chosen = check_statuses(statuses)
    if not set(chosen) <= set(ENDED_STATUSES):
        raise AutodurableError(
            "gc deletes workflows that ended (succeeded, failed, cancelled), never pending "
            "or queued ones: cancel them first"
        )
    store = get_runtime().store
    cutoff = time.time() - older_than
    if dry_run:
        return store.ended_workflows(cutoff, chosen, 1_000_000), 0
    deleted: list[str] = []
    while True:  # in batches, so that no transaction grows without bound
        batch = store.ended_workflows(cutoff, chosen, 500)
        if not batch:
            break
        store.delete_workflows(batch)
        deleted += batch
    return deleted, store.delete_orphan_messages(cutoff)


def delete_workflows(older_than: float, status: str | Sequence[str] = ENDED_STATUSES) -> int:
    """Delete workflows that ended more than `older_than` seconds ago; how many.

    ``delete_workflows(30 * 86400)`` keeps the last 30 days. `status` narrows
    it to some of succeeded, failed and cancelled; pending workflows are never
    deleted this way. Their steps, messages and events go with them.
    """
    statuses = [status] if isinstance(status, str) else list(status)
    deleted, _ = gc(older_than, statuses)
    return len(deleted)
