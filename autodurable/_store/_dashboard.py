"""Reads for the dashboard (``autodurable ui``) that the operations API does not offer.

Keyset pages of workflows, counts by status over time, a workflow's steps a page
at a time and aggregated into a timeline, and the workflows forked from one.
Written once for both backends: the SQL differs only in its placeholder, its
table prefix and a few functions, chosen from the store's type.

Invariants:
- Read only: nothing here writes, locks rows or opens a transaction of its own;
  each method is one statement on the store's own connection (its lock on
  SQLite, its pool on PostgreSQL), so driver errors become `StoreError` there.
- Every statement is parameterised; the only text put into SQL is the store's
  validated schema name and constants of this module.
- Every read is bounded (a page, or aggregate rows), and each one is served by
  an index for the sizes the dashboard is built for (100,000 workflows, a
  10,000-step workflow): `plan` shows the database's query plan for each, which
  benchmarks/dashboard.py prints.
- The order of workflows is `find_workflows`'s (newest first, then by id), so a
  keyset page continues exactly where the previous one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._protocol import (
    STEP_COLUMNS,
    WORKFLOW_COLUMNS,
    WORKFLOW_STATUSES,
    StepRecord,
    WorkflowFilter,
    WorkflowRecord,
)

# The order of `list_steps`: by the position in the workflow's own code where the step,
# or its branch, was called; then by branch and position.
_STEP_ROOT = "CASE WHEN branch = '' THEN position ELSE CAST(branch AS INTEGER) END"
# The highest code point: every id with a given prefix sorts below prefix + this.
_LAST = "\U0010ffff"


@dataclass(frozen=True)
class StepBucket:
    """Steps of one status that started within one slice of a workflow's run."""

    bucket: int  # 0 .. buckets - 1, by start time
    status: str
    count: int
    max_attempts: int
    busy: float  # seconds, summed over the steps (an unfinished one counts to `now`)


@dataclass(frozen=True)
class Execution:
    """The steps one executor recorded for a workflow: one of its executions."""

    executor_id: str  # "" for rows recorded before executors were kept
    first: float
    last: float
    steps: int


@dataclass(frozen=True)
class StepSpan:
    """When a workflow's steps ran: first start, last end, how many there are."""

    first: float | None
    last: float | None
    count: int


class DashboardReads:
    """The dashboard's reads on one open store (SQLite or PostgreSQL)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dialect = "postgresql" if hasattr(store, "_fetch") else "sqlite"
        if self.dialect == "postgresql":
            from ._postgres_ops import _ERROR_MATCH as pg_error_match

            self._mark, self._prefix, self._error = "%s", f"{store._sql.schema}.", pg_error_match
        else:
            from ._sqlite_ops import _ERROR_MATCH as sqlite_error_match

            self._mark, self._prefix, self._error = "?", "", sqlite_error_match

    # -- running ----------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        """`text` with ``?`` as placeholder, in this dialect's placeholder."""
        return text.replace("?", self._mark)

    def _rows(self, text: str, params: Sequence[Any]) -> list[Any]:
        sql = self._sql(text)
        if self.dialect == "postgresql":
            return list(self.store._fetch("read", sql, tuple(params)))
        return list(self.store._query("read", sql, tuple(params)))

    def plan(self, text: str, params: Sequence[Any]) -> list[str]:
        """The database's query plan for one of this module's statements (for benchmarks)."""
        prefix = "EXPLAIN " if self.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
        rows = self._rows(prefix + text, params)
        return [str(row[-1]) if self.dialect == "sqlite" else str(row[0]) for row in rows]

    # -- workflows --------------------------------------------------------------------

    def _where(self, where: WorkflowFilter, id_prefix: str | None) -> tuple[list[str], list[Any]]:
        conditions, params = where.conditions("?", self._error.replace("%s", "?"))
        if id_prefix:
            # A range on the primary key (served by its index), then the exact test.
            conditions.append("workflow_id >= ? AND workflow_id < ?")
            conditions.append("substr(workflow_id, 1, ?) = ?")
            params += [id_prefix, id_prefix + _LAST, len(id_prefix), id_prefix]
        return conditions, params

    def workflows_statement(
        self,
        where: WorkflowFilter,
        limit: int,
        after: tuple[float, str] | None = None,
        id_prefix: str | None = None,
        before: tuple[float, str] | None = None,
    ) -> tuple[str, list[Any]]:
        """The SQL (with ``?`` placeholders) and parameters of `workflows_page`."""
        conditions, params = self._where(where, id_prefix)
        order = "created_at DESC, workflow_id"
        if after is not None:
            created, workflow_id = after
            # The bare bound lets the index on created_at start at the cursor.
            conditions.append("created_at <= ?")
            conditions.append("(created_at < ? OR (created_at = ? AND workflow_id > ?))")
            params += [created, created, created, workflow_id]
        elif before is not None:  # the page before, read backwards from its end
            created, workflow_id = before
            conditions.append("created_at >= ?")
            conditions.append("(created_at > ? OR (created_at = ? AND workflow_id < ?))")
            params += [created, created, created, workflow_id]
            order = "created_at, workflow_id DESC"
        clause = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        text = (
            f"SELECT {WORKFLOW_COLUMNS} FROM {self._prefix}workflows {clause}"
            f"ORDER BY {order} LIMIT ?"
        )
        return text, [*params, limit]

    def workflows_page(
        self,
        where: WorkflowFilter,
        limit: int,
        after: tuple[float, str] | None = None,
        id_prefix: str | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[WorkflowRecord]:
        """Up to `limit` workflows matching `where` (and whose id starts with `id_prefix`),
        newest first, after the workflow `after` = (created_at, workflow_id) in that
        order, or (with `before`) the `limit` just before the workflow `before`.

        A keyset page: as fast on page 5,000 as on page 1.
        """
        text, params = self.workflows_statement(where, limit, after, id_prefix, before)
        records = [WorkflowRecord(*row) for row in self._rows(text, params)]
        return records[::-1] if before is not None and after is None else records

    def created_range(self) -> tuple[float, float] | None:
        """When the oldest and the newest workflows were created (None: there is none)."""
        rows = self._rows(
            f"SELECT MIN(created_at), MAX(created_at) FROM {self._prefix}workflows", ()
        )
        if not rows or rows[0][0] is None:
            return None
        return float(rows[0][0]), float(rows[0][1])

    def one_step(self, workflow_id: str, branch: str, position: int) -> StepRecord | None:
        """One step of `workflow_id`, by its branch and position."""
        rows = self._rows(
            f"SELECT {STEP_COLUMNS} FROM {self._prefix}steps "
            "WHERE workflow_id = ? AND branch = ? AND position = ?",
            (workflow_id, branch, position),
        )
        return StepRecord(*rows[0]) if rows else None

    def status_counts(self) -> dict[str, int]:
        """How many workflows the store holds in each status."""
        rows = self._rows(
            f"SELECT status, COUNT(*) FROM {self._prefix}workflows GROUP BY status", ()
        )
        return {str(status): int(count) for status, count in rows}

    def counts_statement(
        self, where: WorkflowFilter, start: float, width: float, buckets: int
    ) -> tuple[str, list[Any]]:
        """The SQL and parameters of `counts_over_time`."""
        # Every status, when none is chosen: the index on (status, created_at) then
        # covers the query, which reads no row of the table.
        statuses = where.statuses if where.statuses is not None else WORKFLOW_STATUSES
        bounded = WorkflowFilter(
            tuple(statuses),
            where.name,
            where.name_like,
            max(start, where.created_after or start),
            min(start + width * buckets, where.created_before or float("inf")),
            where.app_version,
            where.error_type,
            where.queue_name,
        )
        conditions, params = self._where(bounded, None)
        bucket = (
            "CAST(floor((created_at - ?) / ?) AS INTEGER)"
            if self.dialect == "postgresql"
            else "CAST((created_at - ?) / ? AS INTEGER)"
        )
        text = (
            f"SELECT {bucket} AS b, status, COUNT(*) FROM {self._prefix}workflows "
            f"WHERE {' AND '.join(conditions)} GROUP BY b, status"
        )
        return text, [start, width, *params]

    def counts_over_time(
        self, where: WorkflowFilter, start: float, width: float, buckets: int
    ) -> list[tuple[int, str, int]]:
        """(bucket, status, count) of the workflows matching `where` started in each of
        `buckets` slices of `width` seconds from `start`; empty slices are left out."""
        text, params = self.counts_statement(where, start, width, buckets)
        return [
            (int(b), str(status), int(n))
            for b, status, n in self._rows(text, params)
            if 0 <= int(b) < buckets
        ]

    def forks_of(self, workflow_id: str, limit: int = 50) -> list[tuple[str, int | None, str]]:
        """(id, step it was forked at, status) of the workflows forked from `workflow_id`."""
        rows = self._rows(
            "SELECT workflow_id, forked_at_step, status FROM "
            f"{self._prefix}workflows WHERE forked_from = ? "
            "ORDER BY created_at, workflow_id LIMIT ?",
            (workflow_id, limit),
        )
        return [(str(a), None if b is None else int(b), str(c)) for a, b, c in rows]

    def parent_statements(self) -> tuple[str, str]:
        """The two lookups of `parent_of` (``?`` placeholders): by a start step, then by a
        batch; each reads a partial index (schema 13 on SQLite, 12 on PostgreSQL)."""
        like = "%%" if self.dialect == "postgresql" else "%"  # psycopg's escape of "%"
        contains = "strpos(output, ?) > 0" if self.dialect == "postgresql" else "instr(output, ?)"
        steps = f"{self._prefix}steps"
        return (
            f"SELECT workflow_id FROM {steps} "
            f"WHERE name LIKE 'autodurable.start:{like}' AND output = ? LIMIT 1",
            f"SELECT workflow_id FROM {steps} "
            f"WHERE name LIKE 'autodurable.enqueue_many:{like}' AND {contains} LIMIT 1",
        )

    def parent_of(self, workflow_id: str) -> str | None:
        """The workflow whose code started `workflow_id` (its id recorded by a start step
        or a batch of them), or None."""
        wanted = json.dumps(workflow_id)
        for statement in self.parent_statements():
            found = self._rows(statement, (wanted,))
            if found:
                return str(found[0][0])
        return None

    # -- steps ------------------------------------------------------------------------

    def step_span(self, workflow_id: str) -> StepSpan:
        """When `workflow_id`'s steps ran, and how many there are (one aggregate row)."""
        rows = self._rows(
            "SELECT MIN(started_at), MAX(COALESCE(finished_at, started_at)), COUNT(*) "
            f"FROM {self._prefix}steps WHERE workflow_id = ?",
            (workflow_id,),
        )
        first, last, count = rows[0] if rows else (None, None, 0)
        return StepSpan(first, last, int(count or 0))

    def executions(self, workflow_id: str) -> list[Execution]:
        """The executors that recorded `workflow_id`'s steps, in the order they first did:
        each one an execution (a first run, then each resume after a crash or a restart)."""
        rows = self._rows(
            "SELECT executor_id, MIN(started_at), MAX(COALESCE(finished_at, started_at)), "
            f"COUNT(*) FROM {self._prefix}steps WHERE workflow_id = ? "
            "GROUP BY executor_id ORDER BY MIN(started_at)",
            (workflow_id,),
        )
        return [Execution(str(r[0] or ""), float(r[1]), float(r[2]), int(r[3])) for r in rows]

    def steps_statement(self, workflow_id: str, limit: int, offset: int) -> tuple[str, list[Any]]:
        """The SQL and parameters of `steps_page`."""
        text = (
            f"SELECT {STEP_COLUMNS} FROM {self._prefix}steps WHERE workflow_id = ? "
            f"ORDER BY {_STEP_ROOT}, branch, position LIMIT ? OFFSET ?"
        )
        return text, [workflow_id, limit, offset]

    def steps_page(self, workflow_id: str, limit: int, offset: int = 0) -> list[StepRecord]:
        """`limit` of `workflow_id`'s steps in `list_steps`'s order, `offset` skipped."""
        text, params = self.steps_statement(workflow_id, limit, offset)
        return [StepRecord(*row) for row in self._rows(text, params)]

    def steps_named(self, workflow_id: str, prefix: str, limit: int) -> list[StepRecord]:
        """Up to `limit` steps of `workflow_id` whose name starts with `prefix`."""
        rows = self._rows(
            f"SELECT {STEP_COLUMNS} FROM {self._prefix}steps WHERE workflow_id = ? "
            "AND substr(name, 1, ?) = ? ORDER BY started_at LIMIT ?",
            (workflow_id, len(prefix), prefix, limit),
        )
        return [StepRecord(*row) for row in rows]

    def step_buckets(
        self, workflow_id: str, start: float, width: float, now: float
    ) -> list[StepBucket]:
        """`workflow_id`'s steps grouped by status into slices of `width` seconds from
        `start` by their start time: the timeline of a workflow of any length."""
        bucket = (
            "CAST(floor((started_at - ?) / ?) AS INTEGER)"
            if self.dialect == "postgresql"
            else "CAST((started_at - ?) / ? AS INTEGER)"
        )
        rows = self._rows(
            f"SELECT {bucket} AS b, status, COUNT(*), MAX(attempts), "
            "SUM(COALESCE(finished_at, ?) - started_at) "
            f"FROM {self._prefix}steps WHERE workflow_id = ? "
            "GROUP BY b, status ORDER BY b",
            (start, width, now, workflow_id),
        )
        return [
            StepBucket(int(b), str(s), int(n), int(a or 1), float(busy or 0.0))
            for b, s, n, a, busy in rows
        ]
