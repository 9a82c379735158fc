"""The PostgreSQL store's step records and finishes: alone, or shared between threads.

Invariants (those of `_postgres` and `_group_commit`):
- A step's write and a finish are each one statement, fenced by ownership,
  when written alone; threads writing at the same moment share a transaction,
  a round trip and a WAL flush, and each gets its own outcome. Their step
  records are one statement too (`insert_steps_batched`: the rows as arrays,
  each joined to its workflow under the fence, the keys written returned).
  Whatever a shared batch does not settle (a later attempt, a row already
  there, the same step twice, not owned, not pending, an error) is written
  again alone, which says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from .._errors import StoreError
from ._group_commit import GroupCommit, Outcome, StepWrite, settle_the_rest
from ._protocol import PENDING, StepRecord, WorkflowRecord
from ._rules import finished_status, not_owned

if TYPE_CHECKING:
    from ._postgres_sql import Statements

T = TypeVar("T")
Cursor = psycopg.Cursor[Any]
# A finish a writer hands in: (workflow id, executor id, status, output, error).
Finish = tuple[str, str, str, str | None, str | None]


class PostgresWrites:
    """Step records and finishes of the PostgreSQL store."""

    if TYPE_CHECKING:
        schema: str
        _sql: Statements
        _steps_written: GroupCommit[StepWrite, str]
        _finishes: GroupCommit[Finish, str]

        def _run(self, action: str, work: Callable[[Cursor], T]) -> T: ...

        def _execute(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> int: ...

        def get_workflow(self, workflow_id: str) -> WorkflowRecord | None: ...

    def record_step(self, workflow_id: str, executor_id: str, step: StepRecord) -> str:
        """Insert or replace one step's outcome: one statement, fenced by ownership.

        A first attempt is a plain insert (an upsert costs the server a second
        index probe and WAL record per step); later attempts replace the row of
        the attempt before. An insert that meets a row after all (a write retried
        after its reply was lost) is redone as the replacement. Returns the
        workflow's status: pending, or cancelled (stop at this boundary; the
        step is recorded all the same). Threads that record steps at the same
        moment share a transaction, a round trip and a WAL flush (`_group_commit`).
        """
        return self._steps_written.write((workflow_id, executor_id, step))

    def record_steps(self, batch: Sequence[StepWrite]) -> list[Outcome[str]]:
        """Several writers' first attempts in one statement (`step_columns`): one round
        trip and one commit; any row it does not settle (a later attempt, a row
        already there, not owned, not pending, an error) is written again alone."""
        places, columns = step_columns(batch)

        def work(cursor: Cursor) -> list[tuple[Any, ...]]:
            return cursor.execute(self._sql.insert_steps_batched, columns).fetchall()

        try:
            keys = self._run("record steps in", work) if places else []
        except StoreError:
            keys = []  # nothing of it is written: each alone, below
        return settle_the_rest(batch, settled(batch, places, keys), self._record_step_alone)

    def _record_step_alone(self, workflow_id: str, executor_id: str, step: StepRecord) -> str:
        """One step's row: the insert, or the upsert, then the fenced transaction when
        it is not the pending workflow's own (its status then says why)."""
        sql = self._sql
        if step.branch:
            values = (*step.outcome(), step.arguments, step.branch, workflow_id, executor_id)
            insert, upsert, upsert_owned = (
                sql.insert_step_in_branch,
                sql.upsert_step_in_branch,
                sql.upsert_owned_step_in_branch,
            )
        else:
            values = (*step.outcome(), step.arguments, workflow_id, executor_id)
            insert, upsert, upsert_owned = sql.insert_step, sql.upsert_step, sql.upsert_owned_step

        def work(cursor: Cursor) -> int:
            if step.attempts <= 1:
                try:
                    return cursor.execute(insert, values).rowcount
                except psycopg.errors.UniqueViolation:
                    pass
            return cursor.execute(upsert, values).rowcount

        if self._run("record a step in", work) == 1:
            return PENDING

        def not_pending(cursor: Cursor) -> Any:
            with cursor.connection.transaction():
                row = cursor.execute(sql.owned_status, (workflow_id, executor_id)).fetchone()
                if row is not None:
                    cursor.execute(upsert_owned, values)
            return row

        row = self._run("record a step in", not_pending)
        if row is None:
            raise not_owned(workflow_id)
        status: str = row[0]
        return status

    def finish_workflow(
        self,
        workflow_id: str,
        executor_id: str,
        status: str,
        output: str | None,
        error: str | None,
    ) -> str:
        """Record a pending workflow's final status (fenced by ownership) and notify waiters.

        Threads that finish workflows at the same moment (a queue worker's, say)
        share a transaction, a round trip and a WAL flush (`_group_commit`).
        """
        return self._finishes.write((workflow_id, executor_id, status, output, error))

    def _finish_alone(
        self, workflow_id: str, executor_id: str, status: str, output: str | None, error: str | None
    ) -> str:
        written = self._execute(
            "finish a workflow in",
            self._sql.finish,
            (status, output, error, time.time(), workflow_id, executor_id, self.schema),
        )
        found = None if written == 1 else self.get_workflow(workflow_id)
        return finished_status(workflow_id, executor_id, status, written, found)

    def _finish_batch(self, batch: Sequence[Finish]) -> list[Outcome[str]]:
        """Several writers' finishes in one transaction (``executemany`` pipelines them);
        a finish it does not settle (not owned, not pending, an error) is done again
        alone, which says why."""
        now = time.time()
        rows = [
            (status, out, err, now, wid, eid, self.schema) for wid, eid, status, out, err in batch
        ]

        def work(cursor: Cursor) -> list[bool]:
            finished = []
            with cursor.connection.transaction():
                cursor.executemany(self._sql.finish, rows, returning=True)
                for place in range(len(rows)):
                    if place:
                        cursor.nextset()
                    finished.append(cursor.fetchone() is not None)
            return finished

        try:
            done = self._run("finish workflows in", work)
        except StoreError:
            done = [False] * len(batch)  # nothing of it is written: each alone, below
        settled = [
            status if finished else None
            for (_, _, status, _, _), finished in zip(batch, done, strict=True)
        ]
        return settle_the_rest(batch, settled, self._finish_alone)


def step_columns(
    batch: Sequence[StepWrite],
) -> tuple[dict[tuple[str, str, int], int], list[list[Any]]]:
    """A batch's first attempts as the batched insert's arrays (one per column), with
    the place in the batch of each row's key (workflow, branch, position). Later
    attempts, and a key a batch holds twice, are left to be written alone."""
    places: dict[tuple[str, str, int], int] = {}
    rows: list[tuple[Any, ...]] = []
    for index, (workflow_id, executor_id, step) in enumerate(batch):
        key = (workflow_id, step.branch, step.position)
        if step.attempts > 1 or key in places:
            continue
        places[key] = index
        rows.append((*step.outcome(), step.arguments, step.branch, workflow_id, executor_id))
    return places, [list(column) for column in zip(*rows, strict=True)]


def settled(
    batch: Sequence[StepWrite],
    places: dict[tuple[str, str, int], int],
    keys: Sequence[Sequence[Any]],
) -> list[str | None]:
    """Each write's outcome from the keys the batched insert wrote: pending for those,
    None (to be written alone) for the others."""
    found: list[str | None] = [None] * len(batch)
    for workflow_id, branch, position in keys:
        found[places[(workflow_id, branch, position)]] = PENDING
    return found
