"""Serving queues: what a worker process does with the room it has.

Invariants:
- Each queue is dequeued within its stored limits (the store applies them in
  the same transaction that takes the workflows); this process never takes
  more than it has room for (worker threads not yet busy).
- A dequeued workflow is pending and owned by this process: it is claimed and
  handed to a worker thread like an adopted one, so it is recovered the usual
  way if this process dies. One whose code cannot be found here is released
  (pending, unowned) for a process that has it, and reported.
- With telemetry on, the time each dequeued workflow waited is recorded
  (`_telemetry.Telemetry.dequeued`); its span's parent is the trace context
  recorded at its enqueue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from .._core._runtime import Runtime
from .._errors import AutodurableError
from .._store import Claim, WorkflowRecord
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


@dataclass
class Served:
    """What one round of serving queues did."""

    started: int = 0
    retry_at: float | None = None  # a rate limit held work back until then


def serve_queues(
    runtime: Runtime, capacity: int, only: Collection[str] | None, report: RecoveryReport
) -> Served:
    """Dequeue and start up to `capacity` workflows from the queues served here
    (`only` those named, or all)."""
    store = runtime.store
    served = Served()
    for spec in store.queue_specs():
        if only is not None and spec.name not in only:
            continue
        room = capacity - served.started
        if room <= 0:
            break
        dequeued = store.dequeue_workflows(spec, runtime.executor.id, room)
        if dequeued.retry_at is not None:
            served.retry_at = min(served.retry_at or dequeued.retry_at, dequeued.retry_at)
        if runtime.telemetry is not None and dequeued.taken:
            now = time.time()
            for record in dequeued.taken:
                runtime.telemetry.dequeued(record, spec.name, now)
        for record in dequeued.taken:
            served.started += 1
            _start(runtime, record, report)
    return served


def _start(runtime: Runtime, record: WorkflowRecord, report: RecoveryReport) -> None:
    """Run a workflow this process dequeued: it is pending and ours already, and has no
    history, so the dequeue's record is its claim (no second round trip)."""
    store = runtime.store
    workflow_id = record.workflow_id
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
    claim = Claim(record, True, [], None)
    report.resumed.append(WorkflowHandle(workflow_id, submit_claimed(runtime, fn, claim, inputs)))
