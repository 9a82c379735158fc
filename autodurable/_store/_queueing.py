"""What queues need from a backend: the records and the `QueueStore` protocol.

Invariants every backend keeps (tests/store/test_store_queues.py checks them on
every backend):
- `enqueue_workflow` is durable when it returns. With a dedup id, at most one
  workflow of a queue with that id is waiting or running at a time; a second
  enqueue gets the first one's id back and inserts nothing.
- `enqueue_workflows` is one transaction (one commit, one notification) for a
  whole batch, with the outcome of each entry that enqueuing them one after the
  other would have had; with `reject_duplicates`, a dedup id held by another
  workflow (already, or by an earlier entry) leaves everything unchanged.
- `dequeue_workflows` is atomic across processes and machines: the limits of
  the queue (running at once in all workers, on this worker, started per rate
  period; per partition key when the queue is partitioned) hold whatever the
  number of workers dequeuing at the same moment. It takes the waiting
  workflows whose delay has passed, lowest priority number first, then oldest
  first, and makes them pending and owned by the dequeuing executor, with
  their dequeue time recorded.
- A queue's limits are stored (`define_queue`): every worker applies the ones
  the last declaration wrote, not its own idea of them.
- Debouncing (`Placement.debounce`) replaces the inputs and start time of the
  workflow waiting with the same dedup id, in the same transaction that a
  dequeue would take it in: it starts once, with the latest inputs, after the
  last quiet period; a burst after it started makes a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._records import Record

if TYPE_CHECKING:
    from ._protocol import WorkflowRecord


class QueueSpec(Record, frozen=True):
    """A queue's limits. None means no limit of that kind."""

    name: str
    concurrency: int | None = None  # running at once, in all workers together
    worker_concurrency: int | None = None  # running at once on one worker (executor)
    rate_limit: int | None = None  # started per `rate_period` seconds, all workers together
    rate_period: float | None = None
    partitioned: bool = False  # the limits apply per partition key

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> QueueSpec:
        """The spec a ``queues`` row (`QUEUE_COLUMNS`) holds."""
        name, concurrency, per_worker, rate_limit, rate_period, partitioned = row[:6]
        return cls(name, concurrency, per_worker, rate_limit, rate_period, bool(partitioned))

    def row(self, now: float) -> tuple[object, ...]:
        """The ``queues`` table row (name first, ``updated_at`` last)."""
        return (
            self.name,
            self.concurrency,
            self.worker_concurrency,
            self.rate_limit,
            self.rate_period,
            self.partitioned,
            now,
        )


QUEUE_COLUMNS = (
    "name, concurrency, worker_concurrency, rate_limit, rate_period, partitioned, updated_at"
)


class QueueStats(Record, frozen=True):
    """How a queue stands now."""

    name: str
    enqueued: int  # waiting, delay passed or none
    delayed: int  # waiting for their delay
    running: int  # dequeued and not finished
    oldest_waiting: float | None  # creation time of the oldest waiting workflow
    finished: int  # dequeued once and ended (succeeded, failed or cancelled)


class Dequeued(Record, frozen=True):
    """What a dequeue took, and when to look again if the rate limit held some back."""

    taken: list[WorkflowRecord]  # pending now, owned by the dequeuing executor
    retry_at: float | None = None  # seconds since the epoch: the rate window frees then


class Placement(Record, frozen=True):
    """Where and how an enqueued workflow waits."""

    queue: str
    priority: int = 0  # lower first
    dedup_id: str | None = None
    partition_key: str | None = None
    available_at: float | None = None  # seconds since the epoch; None: at once
    # Debouncing: a workflow of the queue waiting with the same dedup id takes this
    # one's inputs and start time instead (one that already started is left alone).
    debounce: bool = False


class ScheduleRecord(Record, frozen=True):
    """A stored schedule: which workflow it starts, when, and how far it got."""

    name: str
    workflow_name: str  # "module:qualname"
    cron: str
    timezone: str
    catch_up: str  # after downtime: "latest" (one run), "all" (every tick), "skip"
    paused: bool = False
    last_tick: float | None = None  # the latest tick handled, seconds since the epoch
    created_at: float = 0.0

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ScheduleRecord:
        """The record a ``schedules`` row (`SCHEDULE_COLUMNS`) holds."""
        name, workflow_name, cron, timezone, catch_up, paused, last_tick, created_at = row[:8]
        return cls(
            name, workflow_name, cron, timezone, catch_up, bool(paused), last_tick, created_at
        )


SCHEDULE_COLUMNS = "name, workflow_name, cron, timezone, catch_up, paused, last_tick, created_at"


class QueueStore(Protocol):
    """What queues need from a backend (see the module's invariants)."""

    def define_queue(self, spec: QueueSpec) -> None:
        """Store `spec` as the queue's limits (replacing what was there)."""

    def queue_specs(self) -> list[QueueSpec]:
        """Every queue's stored limits, by name."""

    def enqueue_workflow(self, record: WorkflowRecord, placement: Placement) -> str | None:
        """Insert `record` waiting in `placement.queue`, unowned; None when inserted.

        Otherwise the id of the workflow that was there first: the same id, or
        one of the queue waiting or running with the same dedup id (debouncing:
        the waiting one, now with `record`'s inputs and `placement`'s start time).
        """

    def enqueue_workflows(
        self,
        entries: Sequence[tuple[WorkflowRecord, Placement]],
        reject_duplicates: bool = False,
    ) -> list[str | None]:
        """Insert every entry's record waiting in its queue, unowned, in one transaction.

        One outcome per entry, in order, as `enqueue_workflow` would have returned
        had the entries been enqueued one after the other (an earlier entry can be
        the holder of a later one's dedup id or id). With `reject_duplicates`, when
        any entry's dedup id is held by another workflow nothing is inserted, and
        the outcomes say which (an outcome that is neither None nor the entry's own
        id; None there means only that the entry would have been inserted).
        Debouncing placements are refused (`ValueError`): one at a time.
        """

    def dequeue_workflows(self, spec: QueueSpec, executor_id: str, capacity: int) -> Dequeued:
        """Take up to `capacity` waiting workflows of `spec.name` within its limits: their
        records, as they are now (pending, ours, never run: no history to load)."""

    def queue_stats(self, name: str) -> QueueStats:
        """How queue `name` stands now (zeros for a queue nothing was enqueued on)."""

    def changed_elsewhere(self) -> bool:
        """Whether another process (another connection) committed a change since the last
        call: a look that costs next to nothing, for workers of a store that cannot notify
        (always False where the store notifies)."""

    def define_schedule(self, record: ScheduleRecord) -> None:
        """Store a schedule's workflow, cron, zone and catch-up policy; a new one with
        `record.created_at` (and not paused), an existing one keeping its pause and
        last tick."""

    def schedules(self) -> list[ScheduleRecord]:
        """Every stored schedule, by name."""

    def pause_schedule(self, name: str, paused: bool, now: float) -> bool:
        """Pause or resume a schedule (resuming skips the ticks of the pause: its last
        tick becomes `now`); False when there is no such schedule."""

    def advance_schedule(self, name: str, tick: float) -> None:
        """Record `tick` as handled: the last tick only ever moves forward."""
