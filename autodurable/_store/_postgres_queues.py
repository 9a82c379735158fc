"""Queues on PostgreSQL (see `QueueStore`): any number of machines.

Invariants:
- Dequeues of one queue are serialised by a transaction-level advisory lock on
  the queue's name, so the limits counted in the transaction hold across every
  worker; the rows taken are locked ``FOR UPDATE SKIP LOCKED`` as well, so a
  concurrent operator's update is never waited for. An idle worker's look is a
  read that takes no lock.
- Enqueues with a dedup id take the advisory lock of (queue, dedup id): two
  enqueuers racing with the same id insert one workflow.
- A batch enqueue (`enqueue_workflows`) is one transaction and one
  notification; it takes the advisory locks of its dedup ids in one order.
- An enqueue notifies the schema's channel (as a release does), so waiting
  workers of every machine look at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._protocol import WorkflowRecord
from ._queue_batch import BatchSQL, Entry, dedup_keys, enqueue_batch
from ._queue_sql import QueueSQL, dequeue, enqueue, row_values, stats_of
from ._queueing import Dequeued, Placement, QueueSpec, QueueStats, ScheduleRecord

if TYPE_CHECKING:
    from psycopg import Cursor

T = TypeVar("T")


class PostgresQueues:
    """The queue side of the PostgreSQL store."""

    if TYPE_CHECKING:
        schema: str

        def _run(self, action: str, work: Callable[[Cursor[Any]], T]) -> T: ...

        def _fetch(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> list[tuple[Any, ...]]: ...

    _queue_sql: QueueSQL | None = None

    @property
    def _insert_and_notify(self) -> str:
        """`QueueSQL.insert` that, when it inserts, notifies the workers (params: the
        row's values, then the channel)."""
        return (
            f"WITH inserted AS ({self._q.insert} RETURNING workflow_id) "
            "SELECT pg_notify(%s, 'enqueued ' || workflow_id) FROM inserted"
        )

    @property
    def _q(self) -> QueueSQL:
        if self._queue_sql is None:
            self._queue_sql = QueueSQL(
                "%s", "IS NOT DISTINCT FROM", f'"{self.schema}".', "FOR UPDATE SKIP LOCKED"
            )
        return self._queue_sql

    def define_queue(self, spec: QueueSpec) -> None:
        """Store `spec` as the queue's limits."""
        self._run("declare a queue in", lambda c: c.execute(self._q.define, spec.row(time.time())))

    def queue_specs(self) -> list[QueueSpec]:
        """Every queue's stored limits, by name."""
        rows = self._fetch("read", self._q.specs, ())
        return [QueueSpec.from_row(row) for row in rows]

    def enqueue_workflow(self, record: WorkflowRecord, placement: Placement) -> str | None:
        """Insert `record` waiting in its queue; None, or the id that was there first."""
        sql = self._q
        if placement.dedup_id is None:
            # Nothing to look up first: the insert and the workers' wake-up are one
            # statement, its own transaction, one round trip instead of four (BEGIN,
            # INSERT, NOTIFY, COMMIT). The notification goes out only if it inserted.
            values = (*row_values(record, placement), self.schema)

            def alone(cursor: Cursor[Any]) -> str | None:
                inserted = cursor.execute(self._insert_and_notify, values).fetchone()
                return None if inserted is not None else record.workflow_id  # the id exists

            return self._run("enqueue a workflow in", alone)

        def work(cursor: Cursor[Any]) -> str | None:
            with cursor.connection.transaction():
                if placement.dedup_id is not None:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        (f"autodurable.dedup:{placement.queue}:{placement.dedup_id}",),
                    )
                first = enqueue(sql, record, placement, cursor.execute)
                if first is None:
                    cursor.execute(
                        "SELECT pg_notify(%s, 'enqueued ' || %s)",
                        (self.schema, record.workflow_id),
                    )
            return first

        return self._run("enqueue a workflow in", work)

    def enqueue_workflows(
        self, entries: Sequence[Entry], reject_duplicates: bool = False
    ) -> list[str | None]:
        """Insert every entry waiting in its queue in one transaction; each one's outcome."""
        if not entries:
            return []
        batch = BatchSQL("%s", f'"{self.schema}".')
        keys = dedup_keys(entries)

        def work(cursor: Cursor[Any]) -> list[str | None]:
            with cursor.connection.transaction():
                if keys:  # in the order of the locks, so that two batches cannot deadlock
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT "
                        "hashtextextended(k, 0) AS h FROM unnest(%s::text[]) AS k "
                        "ORDER BY h) AS locks",
                        (keys,),
                    )
                outcomes, woken = enqueue_batch(batch, entries, reject_duplicates, cursor.execute)
                if woken is not None:  # one notification for the batch
                    cursor.execute("SELECT pg_notify(%s, 'enqueued ' || %s)", (self.schema, woken))
            return outcomes

        return self._run("enqueue workflows in", work)

    def dequeue_workflows(self, spec: QueueSpec, executor_id: str, capacity: int) -> Dequeued:
        """Take up to `capacity` ready workflows of the queue, within its limits."""
        sql = self._q
        now = time.time()
        if capacity <= 0 or not self._fetch("read", sql.any_ready, (spec.name, now)):
            return Dequeued([])

        def work(cursor: Cursor[Any]) -> Dequeued:
            with cursor.connection.transaction():
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"autodurable.queue:{spec.name}",),
                )
                return dequeue(
                    sql,
                    spec,
                    executor_id,
                    capacity,
                    time.time(),
                    lambda q, p: cursor.execute(q, p).fetchall(),
                )

        return self._run("dequeue from", work)

    def define_schedule(self, record: ScheduleRecord) -> None:
        """Store a schedule (keeping an existing one's pause and last tick)."""
        row = (record.name, record.workflow_name, record.cron, record.timezone)
        params = (*row, record.catch_up, record.created_at, time.time())
        self._run("declare a schedule in", lambda c: c.execute(self._q.define_schedule, params))

    def schedules(self) -> list[ScheduleRecord]:
        """Every stored schedule, by name."""
        return [ScheduleRecord.from_row(row) for row in self._fetch("read", self._q.schedules, ())]

    def pause_schedule(self, name: str, paused: bool, now: float) -> bool:
        """Pause or resume a schedule; False when there is none of that name."""
        params = (paused, time.time(), paused, now, name)
        changed = self._run(
            "pause a schedule in", lambda c: c.execute(self._q.pause_schedule, params).rowcount
        )
        return bool(changed == 1)

    def advance_schedule(self, name: str, tick: float) -> None:
        """Record `tick` as handled (the last tick only moves forward)."""
        params = (tick, name, tick)
        self._run("advance a schedule in", lambda c: c.execute(self._q.advance_schedule, params))

    def changed_elsewhere(self) -> bool:
        """False: this store notifies (LISTEN/NOTIFY wakes its subscriptions)."""
        return False

    def queue_stats(self, name: str) -> QueueStats:
        """How queue `name` stands now."""
        return stats_of(name, self._fetch("read", self._q.stats, (time.time(), name)))
