"""Queues on SQLite (see `QueueStore`): many processes of one machine, one file.

Invariants:
- A dequeue looks first with a read, which takes no write lock: an idle worker
  never holds the database's write lock. Only when something is ready does it
  take a ``BEGIN IMMEDIATE`` transaction, which serialises dequeues of every
  process on the file, so the limits counted in it hold.
- A batch enqueue (`enqueue_workflows`) is one ``BEGIN IMMEDIATE`` transaction
  and one wake-up, whatever its size.
- An enqueue wakes the workers of this process at once; those of other
  processes notice it within milliseconds by polling ``PRAGMA data_version``
  (`changed_elsewhere`: a read of the shared-memory index, no query), and only
  then look for work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._errors import StoreError
from ._protocol import WorkflowRecord
from ._queue_batch import BatchSQL, Entry, enqueue_batch
from ._queue_sql import QueueSQL, dequeue, enqueue, stats_of
from ._queueing import Dequeued, Placement, QueueSpec, QueueStats, ScheduleRecord
from ._sqlite_driver import sqlite3

if TYPE_CHECKING:
    from ._local import Hub

_SQL = QueueSQL("?", "IS")
_BATCH = BatchSQL("?")


class SQLiteQueues:
    """The queue side of the SQLite store."""

    if TYPE_CHECKING:
        _lock: threading.Lock
        _conn: sqlite3.Connection
        _hub: Hub

        def _transaction(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, action: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

        def _error(self, action: str, exc: sqlite3.Error) -> StoreError: ...

    def define_queue(self, spec: QueueSpec) -> None:
        """Store `spec` as the queue's limits."""
        with self._transaction("declare a queue in") as conn:
            conn.execute(_SQL.define, spec.row(time.time()))

    def queue_specs(self) -> list[QueueSpec]:
        """Every queue's stored limits, by name."""
        rows = self._query("read", _SQL.specs)
        return [QueueSpec.from_row(row) for row in rows]

    def enqueue_workflow(self, record: WorkflowRecord, placement: Placement) -> str | None:
        """Insert `record` waiting in its queue; None, or the id that was there first."""
        with self._transaction("enqueue a workflow in") as conn:
            first = enqueue(_SQL, record, placement, conn.execute)
        if first is None:
            self._hub.wake(record.workflow_id, enqueued=True)  # this process's workers look
        return first

    def enqueue_workflows(
        self, entries: Sequence[Entry], reject_duplicates: bool = False
    ) -> list[str | None]:
        """Insert every entry waiting in its queue in one transaction; each one's outcome."""
        if not entries:
            return []
        with self._transaction("enqueue workflows in") as conn:
            outcomes, woken = enqueue_batch(_BATCH, entries, reject_duplicates, conn.execute)
        if woken is not None:
            self._hub.wake(woken, enqueued=True)  # one wake-up: the workers look once
        return outcomes

    def dequeue_workflows(self, spec: QueueSpec, executor_id: str, capacity: int) -> Dequeued:
        """Take up to `capacity` ready workflows of the queue, within its limits."""
        now = time.time()
        if capacity <= 0 or not self._query("read", _SQL.any_ready, (spec.name, now)):
            return Dequeued([])
        with self._transaction("dequeue from") as conn:
            return dequeue(
                _SQL, spec, executor_id, capacity, now, lambda q, p: conn.execute(q, p).fetchall()
            )

    def changed_elsewhere(self) -> bool:
        """Whether another connection committed since the last call (``data_version``)."""
        version = self._query("read", "PRAGMA data_version")[0][0]
        changed = version != self._seen_version
        self._seen_version = version
        return bool(changed)

    _seen_version: object = None

    def define_schedule(self, record: ScheduleRecord) -> None:
        """Store a schedule (keeping an existing one's pause and last tick)."""
        row = (record.name, record.workflow_name, record.cron, record.timezone)
        with self._transaction("declare a schedule in") as conn:
            conn.execute(
                _SQL.define_schedule, (*row, record.catch_up, record.created_at, time.time())
            )

    def schedules(self) -> list[ScheduleRecord]:
        """Every stored schedule, by name."""
        return [ScheduleRecord.from_row(row) for row in self._query("read", _SQL.schedules)]

    def pause_schedule(self, name: str, paused: bool, now: float) -> bool:
        """Pause or resume a schedule; False when there is none of that name."""
        with self._transaction("pause a schedule in") as conn:
            params = (paused, time.time(), paused, now, name)
            return conn.execute(_SQL.pause_schedule, params).rowcount == 1

    def advance_schedule(self, name: str, tick: float) -> None:
        """Record `tick` as handled (the last tick only moves forward)."""
        with self._transaction("advance a schedule in") as conn:
            conn.execute(_SQL.advance_schedule, (tick, name, tick))

    def queue_stats(self, name: str) -> QueueStats:
        """How queue `name` stands now."""
        rows = self._query("read", _SQL.stats, (time.time(), name))
        return stats_of(name, rows)
