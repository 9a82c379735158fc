"""Limits on APIs on PostgreSQL (see `LimitStore`): any number of machines.

Invariant: a take holds the transaction-level advisory locks of its limits'
keys, taken in one sorted order (so two takers never deadlock), so the permits
counted in it are all there are; executors' ages are measured by the
database's clock, never by two machines' clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._limit_sql import LimitSQL, take, waits_of
from ._limiting import Grant, LimitWait, PermitRequest

if TYPE_CHECKING:
    from psycopg import Cursor

    from ._protocol import Liveness

T = TypeVar("T")

_AGE = "extract(epoch FROM statement_timestamp())::double precision"


class PostgresLimits:
    """The limits side of the PostgreSQL store."""

    if TYPE_CHECKING:
        schema: str

        def _run(self, action: str, work: Callable[[Cursor[Any]], T]) -> T: ...

        def _fetch(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> list[tuple[Any, ...]]: ...

    _limit_sql: LimitSQL | None = None

    @property
    def _l(self) -> LimitSQL:
        if self._limit_sql is None:
            self._limit_sql = LimitSQL("%s", f'"{self.schema}".', _AGE)
        return self._limit_sql

    def take_permits(self, request: PermitRequest, liveness: Liveness) -> Grant:
        """Take every permit of `request` if all its limits have room, else none."""
        sql = self._l
        keys = sorted(f"autodurable.limit:{self.schema}:{spec.key}" for spec in request.limits)

        def work(cursor: Cursor[Any]) -> Grant:
            with cursor.connection.transaction():
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(k, 0) AS h "
                    "FROM unnest(%s::text[]) AS k ORDER BY h) AS locks",
                    (keys,),
                )
                return take(
                    sql,
                    request,
                    liveness,
                    time.time(),
                    lambda q, p: cursor.execute(q, p).fetchall(),
                    cursor.execute,
                )

        return self._run("take a permit in", work)

    def return_permits(self, permit_id: str) -> None:
        """Return the permits taken under `permit_id`."""
        self._run(
            "return a permit to",
            lambda cursor: cursor.execute(self._l.release, (time.time(), permit_id)),
        )

    def limit_waits(self, workflow_id: str) -> list[LimitWait]:
        """The permits the workflow's steps took, in the order they were taken."""
        return waits_of(self._fetch("read", self._l.waits, (workflow_id,)))
