"""Async steps' records on PostgreSQL, written by the event loop on its own connection.

Async steps finishing together on one event loop hand their records to the loop's
writer (`_core._async_writes`), which writes all those waiting in one statement
(one round trip, one commit) on an ``AsyncConnection`` of psycopg: the loop runs
the other tasks while the server answers, and no thread is handed anything.

Invariants:
- The statement is that of a shared batch written by threads
  (`_postgres_writes`), fenced by ownership row by row; a row the batch does not
  settle is written again alone, by the threads' path (in a worker thread: it
  may retry through an outage), which says why. So each write gets its own
  outcome, and a failing row fails no other.
- One connection per event loop, used by one batch at a time (the loop's writer
  writes one batch after another). A batch that fails or is cancelled midway
  closes its connection: the next batch opens another, never reuses one in an
  unknown state; its rows are written again alone (an insert that meets its own
  row replaces it).
- Global mutable state: the connections by loop, under a lock. A connection is
  closed with the store (`close`, without the loops, which may be closed), when
  its loop is collected, or when a batch on it fails.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from ._group_commit import Outcome, StepWrite, settle_the_rest
from ._postgres_writes import settled, step_columns

if TYPE_CHECKING:
    from ._postgres_sql import Statements
    from ._postgres_url import PostgresURL

Connection = psycopg.AsyncConnection[Any]


class PostgresAsyncWrites:
    """`record_steps_async` for the PostgreSQL store."""

    if TYPE_CHECKING:
        options: PostgresURL
        _sql: Statements
        _closed: bool
        _by_loop: weakref.WeakKeyDictionary[Any, Connection]  # a connection by event loop

        def _connection_kwargs(self) -> dict[str, Any]: ...

        def _record_step_alone(self, workflow_id: str, executor_id: str, step: Any) -> str: ...

    _async_lock = threading.Lock()

    async def record_steps_async(self, batch: Sequence[StepWrite]) -> list[Outcome[str]]:
        """`record_steps` on this event loop's own connection (see the module)."""
        places, columns = step_columns(batch)
        keys: list[tuple[Any, ...]] = []
        if places:
            try:
                conn = await self._async_connection()
                cursor = await conn.execute(self._sql.insert_steps_batched, columns)
                keys = await cursor.fetchall()
            except BaseException as exc:  # failed or cancelled: the connection's state is unknown
                self._drop_async_connection()
                if not isinstance(exc, psycopg.Error | OSError):
                    raise
                # Nothing of it is written: each alone, below.
        found = settled(batch, places, keys)
        if all(found):
            return [Outcome(status) for status in found]
        return await asyncio.to_thread(settle_the_rest, batch, found, self._record_step_alone)

    async def _async_connection(self) -> Connection:
        loop = asyncio.get_running_loop()
        with self._async_lock:
            found = self._by_loop.get(loop)
        if found is not None and not found.closed:
            return found
        if self._closed:
            raise psycopg.OperationalError("the store is closed")
        conn = await psycopg.AsyncConnection.connect(
            self.options.conninfo, **self._connection_kwargs()
        )
        with self._async_lock:
            self._by_loop[loop] = conn
        weakref.finalize(loop, _close_now, conn)  # a loop that is gone closes its own
        return conn

    def _drop_async_connection(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        with self._async_lock:
            conn = self._by_loop.pop(loop, None)
        if conn is not None:
            _close_now(conn)

    def close_async_connections(self) -> None:
        """Close every loop's connection, without the loops (they may be closed)."""
        with self._async_lock:
            connections = list(self._by_loop.values())
            self._by_loop.clear()
        for conn in connections:
            _close_now(conn)


def _close_now(conn: Connection) -> None:
    """Close `conn`'s socket at once: libpq's own ``finish``, which needs no event loop."""
    if not conn.closed:
        conn.pgconn.finish()
