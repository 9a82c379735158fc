"""The SQLite store's operations: finding, cancel, fork, delete, messages and events.

A mixin of `SQLiteStore` (kept apart so that each module stays one concern);
it uses the store's connection, lock and transactions.

Invariants:
- Every statement is parameterised; every multi-statement change is one
  ``BEGIN IMMEDIATE`` transaction, so other processes see all of it or none.
- Consuming a message, and setting an event, happen in the same transaction
  as recording the step that did it, and only while the caller owns the
  workflow (checked inside that transaction).
- Changes that waiters care about wake this process's subscribers after they
  are committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._errors import StoreError
from ._large import SQLiteLargeValues
from ._listing import Listing
from ._protocol import (
    CANCELLED,
    MESSAGE_COLUMNS,
    PENDING,
    QUEUED_STATUSES,
    STEP_COLUMNS,
    WORKFLOW_COLUMNS,
    ExecutorRecord,
    MessageRecord,
    Received,
    StepRecord,
    WorkflowFilter,
    WorkflowRecord,
)
from ._rules import ENDED, not_owned, receive_step, received
from ._sqlite_driver import sqlite3
from ._stream_sql import SQLITE_STREAMS, SQLiteStreams

if TYPE_CHECKING:
    from ._local import Hub

# A step written again (a recv that waited, then got its message) keeps its start.
# Receives and events are steps of the workflow's own code (branch '') or of a
# branch (work it runs concurrently), given after the writer.
_UPSERT_STEP = (
    "INSERT INTO steps (workflow_id, position, name, status, output, error, "
    "attempts, started_at, finished_at, executor_id, branch) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (workflow_id, branch, position) DO UPDATE SET name = excluded.name, "
    "status = excluded.status, output = excluded.output, error = excluded.error, "
    "attempts = excluded.attempts, finished_at = excluded.finished_at, "
    "executor_id = excluded.executor_id"
)
# The type of a recorded exception ("module:qualname"), matched whole, dotted, or by its
# qualname; an error that is not a JSON object has none.
_ERROR_TYPE = "CASE WHEN json_valid(error) THEN json_extract(error, '$.c') END"
_ERROR_MATCH = (
    f"({_ERROR_TYPE} = ? OR substr({_ERROR_TYPE}, instr({_ERROR_TYPE}, ':') + 1) = ? "
    f"OR replace({_ERROR_TYPE}, ':', '.') = ?)"
)


def ended_sql(count: int) -> str:
    """The ids of ended workflows in `count` statuses, last updated before a time, oldest
    first: read in order from the index that holds ended workflows only (it repeats
    its WHERE), which SQLite would not pick without statistics."""
    return (
        f"SELECT workflow_id FROM workflows INDEXED BY workflows_ended WHERE {ENDED} AND "
        f"status IN ({', '.join('?' * count)}) AND updated_at < ? "
        "ORDER BY updated_at, workflow_id LIMIT ?"
    )


class SQLiteOperations(Listing, SQLiteStreams, SQLiteLargeValues):
    """Operations of the SQLite store beyond running workflows (see the `Store` protocol)."""

    if TYPE_CHECKING:
        _lock: threading.Lock
        _conn: sqlite3.Connection
        _hub: Hub

        def _transaction(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, action: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

        def _write(self, action: str, sql: str, params: tuple[Any, ...]) -> int: ...

        def get_workflow(self, workflow_id: str) -> WorkflowRecord | None: ...

        def _error(self, action: str, exc: sqlite3.Error) -> StoreError: ...

    # -- operating workflows ----------------------------------------------------------

    def find_workflows(
        self, where: WorkflowFilter, limit: int, offset: int = 0
    ) -> list[WorkflowRecord]:
        """Workflows that match `where`, newest first (then by id)."""
        conditions, params = where.conditions("?", _ERROR_MATCH)
        clause = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        rows = self._query(
            "read",
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows {clause}"
            "ORDER BY created_at DESC, workflow_id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [WorkflowRecord(*row) for row in rows]

    def cancel_workflow(self, workflow_id: str, error: str) -> str | None:
        """Mark a pending (or queued) workflow cancelled, keeping its owner; the status after."""
        with self._transaction("cancel a workflow in") as conn:
            conn.execute(
                "UPDATE workflows SET status = ?, error = ?, updated_at = ? "
                "WHERE workflow_id = ? AND status IN (?, ?, ?)",
                (CANCELLED, error, time.time(), workflow_id, PENDING, *QUEUED_STATUSES),
            )
            row = conn.execute(
                "SELECT status FROM workflows WHERE workflow_id = ?", (workflow_id,)
            ).fetchone()
        if row is None:
            return None
        self._hub.wake(workflow_id)
        status: str = row[0]
        return status

    def fork_workflow(
        self, source_id: str, record: WorkflowRecord, from_position: int
    ) -> int | None:
        """Create `record` with copies of `source_id`'s steps before `from_position`."""
        values = record.values()
        with self._transaction("fork a workflow in") as conn:
            created = conn.execute(
                f"INSERT INTO workflows ({WORKFLOW_COLUMNS}) "
                f"VALUES ({', '.join('?' * len(values))}) ON CONFLICT (workflow_id) DO NOTHING",
                values,
            ).rowcount
            if not created:
                return None
            copied = conn.execute(
                f"INSERT INTO steps (workflow_id, {STEP_COLUMNS}) "
                f"SELECT ?, {STEP_COLUMNS} FROM steps WHERE workflow_id = ? AND "
                "(CASE WHEN branch = '' THEN position ELSE CAST(branch AS INTEGER) END) < ?",
                (record.workflow_id, source_id, from_position),
            ).rowcount
            # Stream values written by the copied steps come with them.
            conn.execute(SQLITE_STREAMS.fork, (record.workflow_id, source_id, from_position))
        if record.executor_id is None:
            self._hub.wake(record.workflow_id, released=True)
        return int(copied)

    def delete_workflows(self, workflow_ids: Sequence[str]) -> int:
        """Delete workflows with their steps, messages, events and streams; how many existed."""
        deleted = 0
        with self._transaction("delete workflows in") as conn:
            for workflow_id in workflow_ids:
                for table in ("steps", "messages", "events", "limit_permits"):
                    conn.execute(f"DELETE FROM {table} WHERE workflow_id = ?", (workflow_id,))
                conn.execute(SQLITE_STREAMS.delete, (workflow_id,))
                deleted += conn.execute(
                    "DELETE FROM workflows WHERE workflow_id = ?", (workflow_id,)
                ).rowcount
        for workflow_id in workflow_ids:
            self._hub.wake(workflow_id)
        return deleted

    def ended_workflows(self, before: float, statuses: Collection[str], limit: int) -> list[str]:
        """Ids of workflows in `statuses` last updated before `before`, oldest first."""
        chosen = list(statuses)
        if not chosen:
            return []
        rows = self._query("read", ended_sql(len(chosen)), (*chosen, before, limit))
        return [row[0] for row in rows]

    def delete_orphan_messages(self, before: float) -> int:
        """Delete messages sent before `before` to workflow ids that do not exist."""
        return self._write(
            "delete messages in",
            "DELETE FROM messages WHERE sent_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM workflows w WHERE w.workflow_id = messages.workflow_id)",
            (before,),
        )

    def get_executor(self, executor_id: str) -> ExecutorRecord | None:
        """One executor's row (with its heartbeat age), or None."""
        rows = self._query(
            "read",
            "SELECT executor_id, hostname, pid, process_started, started_at, heartbeat_at "
            "FROM executors WHERE executor_id = ?",
            (executor_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return ExecutorRecord.from_row(row, time.time() - row[5])

    # -- messages -------------------------------------------------------------------------

    def send_message(
        self,
        workflow_id: str,
        topic: str,
        payload: str,
        idempotency_key: str | None,
        sent_at: float,
    ) -> bool:
        """Store a message (unless one with the same key was stored); wakes the receiver."""
        stored = self._write(
            "send a message in",
            "INSERT INTO messages (workflow_id, topic, payload, idempotency_key, sent_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (workflow_id, idempotency_key) DO NOTHING",
            (workflow_id, topic, payload, idempotency_key, sent_at),
        )
        if stored:
            self._hub.wake(workflow_id)
        return stored == 1

    def receive_message(
        self,
        workflow_id: str,
        executor_id: str,
        position: int,
        name: str,
        topic: str,
        deadline: float,
        first: bool,
        branch: str = "",
        now: float | None = None,
    ) -> Received:
        """One look for a message, as the recv step at `position` of `branch` (one transaction)."""
        now = time.time() if now is None else now
        with self._transaction("receive a message in") as conn:
            status = _owned_status(conn, workflow_id, executor_id)
            if status != PENDING:
                return Received(status)
            found = conn.execute(
                "SELECT message_id, payload FROM messages WHERE workflow_id = ? AND topic = ? "
                "AND consumed_at IS NULL ORDER BY message_id LIMIT 1",
                (workflow_id, topic),
            ).fetchone()
            if found is not None:
                conn.execute(
                    "UPDATE messages SET consumed_at = ?, consumed_at_step = ? "
                    "WHERE message_id = ?",
                    (now, position, found[0]),
                )
            row = receive_step(
                workflow_id, executor_id, position, name, branch,
                found[1] if found is not None else None, now, deadline, first,
            )  # fmt: skip
            if row is not None:
                conn.execute(_UPSERT_STEP, row)
            return received(status, row, found)

    def list_messages(self, workflow_id: str) -> list[MessageRecord]:
        """The messages sent to a workflow, in the order they were stored."""
        rows = self._query(
            "read",
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE workflow_id = ? ORDER BY message_id",
            (workflow_id,),
        )
        return [MessageRecord(*row) for row in rows]

    # -- events -----------------------------------------------------------------------------

    def set_event(
        self, workflow_id: str, executor_id: str, key: str, value: str, step: StepRecord
    ) -> str:
        """Set an event and record the step that set it, in one fenced transaction."""
        with self._transaction("set an event in") as conn:
            status = _owned_status(conn, workflow_id, executor_id)
            conn.execute(
                "INSERT OR REPLACE INTO events (workflow_id, key, value, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (workflow_id, key, value, time.time()),
            )
            conn.execute(_UPSERT_STEP, (workflow_id, *step.outcome(), executor_id, step.branch))
        self._hub.wake(workflow_id)
        return status

    def get_event(self, workflow_id: str, key: str) -> str | None:
        """The value of a workflow's event, or None when it is not set."""
        rows = self._query(
            "read",
            "SELECT value FROM events WHERE workflow_id = ? AND key = ?",
            (workflow_id, key),
        )
        return rows[0][0] if rows else None

    def list_events(self, workflow_id: str) -> dict[str, str]:
        """Every event a workflow has set, by key."""
        rows = self._query(
            "read",
            "SELECT key, value FROM events WHERE workflow_id = ? ORDER BY key",
            (workflow_id,),
        )
        return dict(rows)


def _owned_status(conn: sqlite3.Connection, workflow_id: str, executor_id: str) -> str:
    """The workflow's status, inside a transaction; raises `OwnershipLost` if not ours."""
    row = conn.execute(
        "SELECT status FROM workflows WHERE workflow_id = ? AND executor_id = ?",
        (workflow_id, executor_id),
    ).fetchone()
    if row is None:
        raise not_owned(workflow_id)
    status: str = row[0]
    return status
