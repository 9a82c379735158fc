"""The SQL of durable streams, written once for both backends, and their mixins.

A stream is the rows of the ``streams`` table of one (workflow, key), numbered
0, 1, 2 ... (``stream_offset``) in the order they were written. A row whose
value is NULL is the close marker (`close_stream`); a stream also ends when its
workflow ends, which readers tell from the workflow's status (no marker is
written then). The SQL is written once for both dialects: it differs only in its
placeholder, its table prefix, its row lock and the expression of a step's
root position, chosen by `StreamSQL`.

Invariants:
- Appending a value (or the close marker) and recording the step that wrote it
  are one transaction, fenced by ownership: the writer owns the workflow, and
  nothing is written unless it is pending. A value is never stored without its
  step, nor a step without its value.
- An append whose step is recorded already writes nothing: a transaction
  retried after a lost connection (PostgreSQL) stores its value once.
- Offsets are one past the highest stored of the stream; two writers that
  race for one (branches of one workflow on PostgreSQL) do not both get it:
  the loser's insert does nothing and it takes the next.
- A stream with a close marker takes no more values (the append reports
  `closed`, writes nothing and records no step).
- Rows follow their workflow: deleted with it, copied by a fork when the step
  that wrote them comes before the fork's step, deleted by a rewind when it
  comes at or after the rewind's step (by root position, as steps are).
- Every statement is parameterised; the only text put into SQL is the store's
  validated schema name and constants of this module. Committed writes wake
  the workflow's subscribers (``pg_notify`` in the transaction on
  PostgreSQL; this process's hub on SQLite).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from ._protocol import PENDING, StepRecord
from ._rules import not_owned
from ._sqlite_driver import sqlite3
from ._streams import StreamItem, Written

if TYPE_CHECKING:
    import psycopg

    from ._local import Hub

    Cursor = psycopg.Cursor[Any]

T = TypeVar("T")
Execute = Callable[[str, Sequence[Any]], Any]  # a cursor's execute: returns the cursor


class StreamSQL:
    """The statements of streams in one dialect (``?`` placeholders become the dialect's)."""

    def __init__(self, prefix: str, mark: str, root: str, lock: str) -> None:
        t = f"{prefix}streams"
        # The position in the workflow's own code where the writing step was called,
        # or where its branch was started ("3.1" -> 3): what forks and rewinds cut at.
        at = f"(CASE WHEN branch = '' THEN written_at_step ELSE {root} END)"

        def sql(text: str) -> str:
            return text.replace("?", mark)

        self.owned = sql(
            f"SELECT status FROM {prefix}workflows WHERE workflow_id = ? AND executor_id = ?{lock}"
        )
        self.step_done = sql(
            f"SELECT 1 FROM {prefix}steps WHERE workflow_id = ? AND branch = ? AND position = ?"
        )
        self.closed = sql(
            f"SELECT 1 FROM {t} WHERE workflow_id = ? AND key = ? AND value IS NULL LIMIT 1"
        )
        self.next_offset = sql(
            f"SELECT coalesce(max(stream_offset) + 1, 0) FROM {t} WHERE workflow_id = ? AND key = ?"
        )
        self.append = sql(
            f"INSERT INTO {t} (workflow_id, key, stream_offset, value, written_at_step, branch, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.record_step = sql(
            f"INSERT INTO {prefix}steps (workflow_id, position, name, status, output, error, "
            "attempts, started_at, finished_at, executor_id, branch) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.read = sql(
            f"SELECT stream_offset, value, created_at FROM {t} WHERE workflow_id = ? AND key = ? "
            "AND (stream_offset >= ? OR value IS NULL) ORDER BY stream_offset LIMIT ?"
        )
        self.keys = sql(
            f"SELECT key, count(value) FROM {t} WHERE workflow_id = ? GROUP BY key ORDER BY key"
        )
        self.delete = sql(f"DELETE FROM {t} WHERE workflow_id = ?")
        self.fork = sql(
            f"INSERT INTO {t} (workflow_id, key, stream_offset, value, written_at_step, branch, "
            "created_at) SELECT ?, key, stream_offset, value, written_at_step, branch, "
            f"created_at FROM {t} WHERE workflow_id = ? AND {at} < ?"
        )
        self.rewind = sql(f"DELETE FROM {t} WHERE workflow_id = ? AND {at} >= ?")


SQLITE_STREAMS = StreamSQL("", "?", "CAST(branch AS INTEGER)", "")


@functools.cache
def postgres_streams(schema: str) -> StreamSQL:
    """The statements for the PostgreSQL schema `schema` (a validated identifier)."""
    return StreamSQL(f'"{schema}".', "%s", "split_part(branch, '.', 1)::integer", " FOR SHARE")


def append(
    execute: Execute,
    sql: StreamSQL,
    workflow_id: str,
    executor_id: str,
    key: str,
    value: str | None,
    step: StepRecord,
) -> Written:
    """The body of `write_stream`'s transaction, for either dialect (see the invariants)."""
    row = execute(sql.owned, (workflow_id, executor_id)).fetchone()
    if row is None:
        raise not_owned(workflow_id)
    status: str = row[0]
    if status != PENDING:
        return Written(status)
    if execute(sql.step_done, (workflow_id, step.branch, step.position)).fetchone() is not None:
        return Written(status)  # this very write, committed before its connection broke
    if execute(sql.closed, (workflow_id, key)).fetchone() is not None:
        if value is not None:
            return Written(status, closed=True)
    else:
        while True:  # a concurrent writer may take the offset first: take the next
            (offset,) = execute(sql.next_offset, (workflow_id, key)).fetchone()
            stored = execute(
                sql.append,
                (workflow_id, key, offset, value, step.position, step.branch, step.started_at),
            ).rowcount
            if stored == 1:
                break
    execute(sql.record_step, (workflow_id, *step.outcome(), executor_id, step.branch))
    return Written(status)


def _items(rows: Sequence[Sequence[Any]]) -> list[StreamItem]:
    return [StreamItem(int(offset), value, created_at) for offset, value, created_at in rows]


class SQLiteStreams:
    """Durable streams, for the SQLite store (a mixin of it)."""

    if TYPE_CHECKING:
        _lock: threading.Lock
        _hub: Hub

        def _transaction(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, action: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def write_stream(
        self, workflow_id: str, executor_id: str, key: str, value: str | None, step: StepRecord
    ) -> Written:
        """Append to a stream and record the step, in one fenced transaction."""
        with self._transaction("write to a stream in") as conn:
            written = append(
                conn.execute, SQLITE_STREAMS, workflow_id, executor_id, key, value, step
            )
        self._hub.wake(workflow_id)
        return written

    def read_stream(self, workflow_id: str, key: str, offset: int, limit: int) -> list[StreamItem]:
        """Rows of a stream from `offset` on, and its close marker."""
        return _items(self._query("read", SQLITE_STREAMS.read, (workflow_id, key, offset, limit)))

    def list_streams(self, workflow_id: str) -> dict[str, int]:
        """How many values each stream of a workflow holds, by key."""
        return dict(self._query("read", SQLITE_STREAMS.keys, (workflow_id,)))


class PostgresStreams:
    """Durable streams, for the PostgreSQL store (a mixin of it)."""

    if TYPE_CHECKING:
        schema: str

        def _run(self, action: str, work: Callable[[Cursor], T]) -> T: ...

        def _fetch(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> list[tuple[Any, ...]]: ...

    def write_stream(
        self, workflow_id: str, executor_id: str, key: str, value: str | None, step: StepRecord
    ) -> Written:
        """Append to a stream and record the step, in one fenced transaction; notify."""
        sql = postgres_streams(self.schema)

        def work(cursor: Cursor) -> Written:
            with cursor.connection.transaction():
                written = append(cursor.execute, sql, workflow_id, executor_id, key, value, step)
                cursor.execute("SELECT pg_notify(%s, %s)", (self.schema, f"stream {workflow_id}"))
            return written

        return self._run("write to a stream in", work)

    def read_stream(self, workflow_id: str, key: str, offset: int, limit: int) -> list[StreamItem]:
        """Rows of a stream from `offset` on, and its close marker."""
        sql = postgres_streams(self.schema)
        return _items(self._fetch("read", sql.read, (workflow_id, key, offset, limit)))

    def list_streams(self, workflow_id: str) -> dict[str, int]:
        """How many values each stream of a workflow holds, by key."""
        rows = self._fetch("read", postgres_streams(self.schema).keys, (workflow_id,))
        return {key: int(count) for key, count in rows}
