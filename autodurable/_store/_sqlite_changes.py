"""Changing stored workflows after a deploy, on SQLite: rewinding and re-versioning.

Invariant: each operation is one ``BEGIN IMMEDIATE`` transaction; a workflow in
any other state than the one the operation expects is left as it is.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ._protocol import FINISHED_STATUSES, PENDING, QUEUED_STATUSES
from ._rules import REWINDS_EVENT, rewinds_after
from ._sqlite_driver import sqlite3
from ._stream_sql import SQLITE_STREAMS

if TYPE_CHECKING:
    from ._local import Hub

_ENDED = tuple(sorted(FINISHED_STATUSES))
_OPEN = (PENDING, *QUEUED_STATUSES)


class SQLiteChanges:
    """Rewind and re-version, for the SQLite store."""

    if TYPE_CHECKING:
        _hub: Hub

        def _transaction(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

    def rewind_workflow(self, workflow_id: str, to_position: int) -> int | None:
        """Make an ended workflow pending and unowned again from its step `to_position`."""
        marks = ", ".join("?" * len(_ENDED))
        with self._transaction("rewind a workflow in") as conn:
            changed = conn.execute(
                "UPDATE workflows SET status = ?, output = NULL, error = NULL, "
                "executor_id = NULL, deadline = NULL, updated_at = ? "
                f"WHERE workflow_id = ? AND status IN ({marks})",
                (PENDING, time.time(), workflow_id, *_ENDED),
            ).rowcount
            if not changed:
                return None
            # A branch's path starts with the position that started it ("3.1" -> 3).
            conn.execute(
                "DELETE FROM steps WHERE workflow_id = ? AND (CASE WHEN branch = '' "
                "THEN position ELSE CAST(branch AS INTEGER) END) >= ?",
                (workflow_id, to_position),
            )
            # The stream values those steps wrote go with them (they are written again).
            conn.execute(SQLITE_STREAMS.rewind, (workflow_id, to_position))
            now = time.time()
            before = conn.execute(
                "SELECT value FROM events WHERE workflow_id = ? AND key = ?",
                (workflow_id, REWINDS_EVENT),
            ).fetchone()
            conn.execute(
                "INSERT INTO events (workflow_id, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (workflow_id, REWINDS_EVENT,
                 rewinds_after(before[0] if before else None, to_position, now), now),
            )  # fmt: skip
            (kept,) = conn.execute(
                "SELECT count(*) FROM steps WHERE workflow_id = ?", (workflow_id,)
            ).fetchone()
        self._hub.wake(workflow_id, released=True)
        return int(kept)

    def set_workflow_version(
        self, workflow_id: str, app_version: str, expected: str | None
    ) -> bool:
        """Record `app_version` on an unfinished workflow still at version `expected`."""
        with self._transaction("change a workflow's version in") as conn:
            changed = conn.execute(
                "UPDATE workflows SET app_version = ?, updated_at = ? WHERE workflow_id = ? "
                f"AND app_version IS ? AND status IN ({', '.join('?' * len(_OPEN))})",
                (app_version, time.time(), workflow_id, expected, *_OPEN),
            ).rowcount
        if changed:
            self._hub.wake(workflow_id, released=True)  # executors of that version may adopt it
        return bool(changed)
