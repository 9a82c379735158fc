"""Serving queues: what a worker process does with the room it has.

Invariants:
- Each queue is dequeued within its stored limits (the store applies them in
  the same transaction that takes the workflows); this process never takes
  more than it has room for (worker threads not yet busy).
- A dequeued workflow is pending and owned by this process: it is claimed and
  handed to a worker thread like an adopted one, so it is recovered the usual
  way if this process dies. One whose code cannot be found here is released
  (pending, unowned) for a process that has it, and reported.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from .._core._app_versions import version_for
from .._core._runtime import Runtime
from .._errors import AutodurableError
from ._handle import WorkflowHandle
from ._launch import submit_claimed
from ._queues import declared_queues
from ._recovery_report import RecoveryReport, Unrecoverable
from ._registry import find_workflow

log = logging.getLogger("autodurable")


def declare_queues(runtime: Runtime) -> None:
    """Store the limits of every queue declared in this process."""
    for queue in declared_queues():
        queue.declare()


def serve_queues(
    runtime: Runtime, capacity: int, only: Collection[str] | None, report: RecoveryReport
) -> int:
    """Dequeue and start up to `capacity` workflows from the queues served here
    (`only` those named, or all); how many were started."""
    store = runtime.store
    started = 0
    for spec in store.queue_specs():
        if only is not None and spec.name not in only:
            continue
        room = capacity - started
        if room <= 0:
            break
        for workflow_id in store.dequeue_workflows(spec, runtime.executor.id, room):
            started += 1
            _start(runtime, workflow_id, report)
    return started


def _start(runtime: Runtime, workflow_id: str, report: RecoveryReport) -> None:
    """Run a workflow this process dequeued (it owns it already)."""
    store = runtime.store
    record = store.get_workflow(workflow_id)
    if record is None:  # deleted by an operator in between
        return
    try:
        fn = find_workflow(record.name)
        inputs = runtime.codec.decode(record.inputs)
    except (LookupError, AutodurableError) as exc:
        store.release_workflow(workflow_id, runtime.executor.id)
        report.unrecoverable.append(Unrecoverable(workflow_id, record.name, str(exc)))
        log.warning(
            "autodurable: dequeued workflow %s cannot run here (%s); released for a process "
            "that has its code",
            workflow_id,
            exc,
        )
        return
    claim = store.claim_workflow(workflow_id, runtime.executor, version_for(runtime.settings, fn))
    if claim is None or not claim.claimed:
        return  # cancelled or taken over meanwhile
    report.resumed.append(WorkflowHandle(workflow_id, submit_claimed(runtime, fn, claim, inputs)))
