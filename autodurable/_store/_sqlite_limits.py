"""Limits on APIs on SQLite (see `LimitStore`): many processes of one machine.

Invariant: a take runs in one ``BEGIN IMMEDIATE`` transaction, which serialises
every writer of the file, so the permits counted in it are all there are.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ._limit_sql import LimitSQL, take, waits_of
from ._limiting import Grant, LimitWait, PermitRequest
from ._sqlite_driver import sqlite3

if TYPE_CHECKING:
    from ._protocol import Liveness

_SQL = LimitSQL("?")


class SQLiteLimits:
    """The limits side of the SQLite store."""

    if TYPE_CHECKING:
        _lock: threading.Lock
        _conn: sqlite3.Connection

        def _transaction(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, action: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def take_permits(self, request: PermitRequest, liveness: Liveness) -> Grant:
        """Take every permit of `request` if all its limits have room, else none."""
        with self._transaction("take a permit in") as conn:
            return take(
                _SQL,
                request,
                liveness,
                time.time(),
                lambda q, p: conn.execute(q, p).fetchall(),
                conn.execute,
            )

    def return_permits(self, permit_id: str) -> None:
        """Return the permits taken under `permit_id`."""
        with self._transaction("return a permit to") as conn:
            conn.execute(_SQL.release, (time.time(), permit_id))

    def limit_waits(self, workflow_id: str) -> list[LimitWait]:
        """The permits the workflow's steps took, in the order they were taken."""
        return waits_of(self._query("read", _SQL.waits, (workflow_id,)))
