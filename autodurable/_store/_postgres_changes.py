"""Changing stored workflows after a deploy, on PostgreSQL: rewinding and re-versioning.

Invariant: each operation is one transaction, and notifies the schema's channel
as a release does, so that waiting executors of every machine look at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._protocol import FINISHED_STATUSES, PENDING, QUEUED_STATUSES
from ._rules import REWINDS_EVENT, rewinds_after
from ._stream_sql import postgres_streams

if TYPE_CHECKING:
    from psycopg import Cursor

T = TypeVar("T")

_ENDED = sorted(FINISHED_STATUSES)
_OPEN = [PENDING, *QUEUED_STATUSES]


class PostgresChanges:
    """Rewind and re-version, for the PostgreSQL store."""

    if TYPE_CHECKING:
        schema: str

        def _run(self, action: str, work: Callable[[Cursor[Any]], T]) -> T: ...

    def rewind_workflow(self, workflow_id: str, to_position: int) -> int | None:
        """Make an ended workflow pending and unowned again from its step `to_position`."""
        s = f'"{self.schema}"'

        def work(cursor: Cursor[Any]) -> int | None:
            with cursor.connection.transaction():
                changed = cursor.execute(
                    f"UPDATE {s}.workflows SET status = %s, output = NULL, error = NULL, "
                    "executor_id = NULL, deadline = NULL, updated_at = %s "
                    "WHERE workflow_id = %s AND status = ANY(%s::text[])",
                    (PENDING, time.time(), workflow_id, _ENDED),
                ).rowcount
                if not changed:
                    return None
                # A branch's path starts with the position that started it ("3.1" -> 3).
                cursor.execute(
                    f"DELETE FROM {s}.steps WHERE workflow_id = %s AND (CASE WHEN branch = '' "
                    "THEN position ELSE split_part(branch, '.', 1)::integer END) >= %s",
                    (workflow_id, to_position),
                )
                # The stream values those steps wrote go with them (they are written again).
                cursor.execute(postgres_streams(self.schema).rewind, (workflow_id, to_position))
                now = time.time()
                before = cursor.execute(
                    f"SELECT value FROM {s}.events WHERE workflow_id = %s AND key = %s",
                    (workflow_id, REWINDS_EVENT),
                ).fetchone()
                cursor.execute(
                    f"INSERT INTO {s}.events (workflow_id, key, value, updated_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (workflow_id, key) DO UPDATE "
                    "SET value = excluded.value, updated_at = excluded.updated_at",
                    (workflow_id, REWINDS_EVENT,
                     rewinds_after(before[0] if before else None, to_position, now), now),
                )  # fmt: skip
                row = cursor.execute(
                    f"SELECT count(*) FROM {s}.steps WHERE workflow_id = %s", (workflow_id,)
                ).fetchone()
                cursor.execute("SELECT pg_notify(%s, %s)", (self.schema, f"released {workflow_id}"))
            return int(row[0]) if row else 0

        return self._run("rewind a workflow in", work)

    def set_workflow_version(
        self, workflow_id: str, app_version: str, expected: str | None
    ) -> bool:
        """Record `app_version` on an unfinished workflow still at version `expected`."""
        s = f'"{self.schema}"'

        def work(cursor: Cursor[Any]) -> bool:
            with cursor.connection.transaction():
                changed = cursor.execute(
                    f"UPDATE {s}.workflows SET app_version = %s, updated_at = %s "
                    "WHERE workflow_id = %s AND app_version IS NOT DISTINCT FROM %s "
                    "AND status = ANY(%s::text[])",
                    (app_version, time.time(), workflow_id, expected, _OPEN),
                ).rowcount
                if changed:
                    cursor.execute(
                        "SELECT pg_notify(%s, %s)", (self.schema, f"released {workflow_id}")
                    )
            return bool(changed)

        return self._run("change a workflow's version in", work)
