"""The PostgreSQL store's operations: listing, cancel, reopen, fork, delete, messages, events.

A mixin of `PostgresStore` (kept apart so that each module stays one
concern); it runs its statements through the store's retrying `_run`.

Invariants:
- Every statement is parameterised; the schema name in them is a validated
  identifier.
- Changes that span statements run in one transaction on one connection;
  the workflow row is locked ``FOR SHARE`` for as long as a message is being
  consumed or an event set, so a claim by another executor waits for it and
  a writer that lost the workflow writes nothing.
- Every change waiters care about notifies (``pg_notify``) in the same
  transaction, so a notification is sent only when the change is committed:
  ``cancelled``, ``message`` and ``event`` wake the workflow's subscribers,
  ``released`` (a fork nobody owns) also wakes the adopters.
- Retried transactions are idempotent: a message is keyed by its
  idempotency key, a consumption is re-checked inside the transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._large import PostgresLargeValues
from ._listing import Listing
from ._postgres_sql import OperationStatements
from ._protocol import (
    CANCELLED,
    FAILED,
    PENDING,
    QUEUED_STATUSES,
    WORKFLOW_COLUMNS,
    ExecutorRecord,
    MessageRecord,
    Received,
    StepRecord,
    WorkflowFilter,
    WorkflowRecord,
)
from ._rules import not_owned, receive_step, received
from ._stream_sql import PostgresStreams, postgres_streams

if TYPE_CHECKING:
    import psycopg

    Cursor = psycopg.Cursor[Any]

T = TypeVar("T")

# The type of a recorded exception ("module:qualname"), matched whole, dotted, or by its
# qualname; an error that is not a JSON object has none. (Errors are written by the
# codec, always JSON; a row damaged by hand that starts with "{" fails the query.)
_ERROR_TYPE = "CASE WHEN left(error, 1) = '{' THEN error::jsonb ->> 'c' END"
_ERROR_MATCH = (
    f"({_ERROR_TYPE} = %s OR substr({_ERROR_TYPE}, strpos({_ERROR_TYPE}, ':') + 1) = %s "
    f"OR replace({_ERROR_TYPE}, ':', '.') = %s)"
)


class PostgresOperations(Listing, PostgresStreams, PostgresLargeValues):
    """Operations of the PostgreSQL store beyond running workflows (see the `Store` protocol)."""

    if TYPE_CHECKING:
        schema: str
        _ops: OperationStatements
        _sql: Any  # the store's own statements (its `create`)

        def _run(self, action: str, work: Callable[[Cursor], T]) -> T: ...

        def _execute(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> int: ...

        def _fetch(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> list[tuple[Any, ...]]: ...

    # -- operating workflows ----------------------------------------------------------

    def find_workflows(
        self, where: WorkflowFilter, limit: int, offset: int = 0
    ) -> list[WorkflowRecord]:
        """Workflows that match `where`, newest first (then by id)."""
        conditions, params = where.conditions("%s", _ERROR_MATCH)
        clause = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        statement = (
            f"SELECT {WORKFLOW_COLUMNS} FROM {self._sql.schema}.workflows {clause}"
            "ORDER BY created_at DESC, workflow_id LIMIT %s OFFSET %s"
        )
        rows = self._fetch("read", statement, (*params, limit, offset))
        return [WorkflowRecord(*row) for row in rows]

    def reopen_workflow(
        self, workflow_id: str, *, app_version: str | None = None, unpin: bool = False
    ) -> int | None:
        """Make a failed or cancelled workflow pending and unowned again."""
        params = {
            "workflow_id": workflow_id,
            "pending": PENDING,
            "ended": [FAILED, CANCELLED],
            "now": time.time(),
            "version": app_version,
            "keep": not unpin and app_version is None,
            "channel": self.schema,
        }

        def work(cursor: Cursor) -> int | None:
            with cursor.connection.transaction():
                if cursor.execute(self._sql.reopen, params).fetchone() is None:
                    return None
                cursor.execute(self._sql.forget_failed_step, (workflow_id, FAILED, workflow_id))
                row = cursor.execute(self._sql.count_steps, (workflow_id,)).fetchone()
            return int(row[0]) if row else 0

        return self._run("reopen a workflow in", work)

    def cancel_workflow(self, workflow_id: str, error: str) -> str | None:
        """Mark a pending (or queued) workflow cancelled, keeping its owner, and notify; the
        status after."""
        params = (
            CANCELLED,
            error,
            time.time(),
            workflow_id,
            PENDING,
            *QUEUED_STATUSES,
            self.schema,
        )

        def work(cursor: Cursor) -> str | None:
            with cursor.connection.transaction():
                cursor.execute(self._ops.cancel, params)
                row = cursor.execute(self._ops.status, (workflow_id,)).fetchone()
            return row[0] if row else None

        return self._run("cancel a workflow in", work)

    def fork_workflow(
        self, source_id: str, record: WorkflowRecord, from_position: int
    ) -> int | None:
        """Create `record` with copies of `source_id`'s steps before `from_position`."""

        def work(cursor: Cursor) -> int | None:
            with cursor.connection.transaction():
                created = cursor.execute(self._sql.create, record.values()).rowcount
                if created != 1:
                    return None
                copied = cursor.execute(
                    self._ops.copy_steps, (record.workflow_id, source_id, from_position)
                ).rowcount
                # Stream values written by the copied steps come with them.
                cursor.execute(
                    postgres_streams(self.schema).fork,
                    (record.workflow_id, source_id, from_position),
                )
                if record.executor_id is None:
                    cursor.execute(
                        self._ops.notify, (self.schema, f"released {record.workflow_id}")
                    )
            return int(copied)

        return self._run("fork a workflow in", work)

    def delete_workflows(self, workflow_ids: Sequence[str]) -> int:
        """Delete workflows with their steps, messages, events and streams; how many existed."""
        ids = list(workflow_ids)

        def work(cursor: Cursor) -> int:
            with cursor.connection.transaction():
                # The workflow rows first: a step write in flight holds its row FOR
                # SHARE, so this waits for it and the steps deleted next include its
                # step; a write that comes later finds no row and writes nothing.
                # (Steps first would leave behind the step of a write that committed
                # in between.)
                deleted = cursor.execute(self._ops.delete_workflows, (ids,)).rowcount
                for statement in self._ops.delete:
                    cursor.execute(statement, (ids,))
                for workflow_id in ids:
                    cursor.execute(postgres_streams(self.schema).delete, (workflow_id,))
                for workflow_id in ids:
                    cursor.execute(self._ops.notify, (self.schema, f"finished {workflow_id}"))
            return int(deleted)

        return self._run("delete workflows in", work)

    def ended_workflows(self, before: float, statuses: Collection[str], limit: int) -> list[str]:
        """Ids of workflows in `statuses` last updated before `before`, oldest first."""
        rows = self._fetch("read", self._ops.ended, (list(statuses), before, limit))
        return [row[0] for row in rows]

    def delete_orphan_messages(self, before: float) -> int:
        """Delete messages sent before `before` to workflow ids that do not exist."""
        return self._execute("delete messages in", self._ops.orphan_messages, (before,))

    def get_executor(self, executor_id: str) -> ExecutorRecord | None:
        """One executor's row (heartbeat age by the server's clock), or None."""
        rows = self._fetch("read", self._ops.executor, (executor_id,))
        if not rows:
            return None
        row = rows[0]
        return ExecutorRecord.from_row(row, row[6])

    # -- messages ---------------------------------------------------------------------------

    def send_message(
        self,
        workflow_id: str,
        topic: str,
        payload: str,
        idempotency_key: str | None,
        sent_at: float,
    ) -> bool:
        """Store a message (unless one with the same key was stored) and notify the receiver."""
        stored = self._execute(
            "send a message in",
            self._ops.send,
            (workflow_id, topic, payload, idempotency_key, sent_at, self.schema),
        )
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

        at = now

        def work(cursor: Cursor) -> Received:
            now = time.time() if at is None else at
            with cursor.connection.transaction():
                owned = cursor.execute(self._ops.owned_status, (workflow_id, executor_id))
                row = owned.fetchone()
                if row is None:
                    raise not_owned(workflow_id)
                status: str = row[0]
                if status != PENDING:
                    return Received(status)
                found = cursor.execute(self._ops.oldest_message, (workflow_id, topic)).fetchone()
                if found is not None:
                    cursor.execute(self._ops.consume, (now, position, found[0]))
                step = receive_step(
                    workflow_id, executor_id, position, name, branch,
                    found[1] if found is not None else None, now, deadline, first,
                )  # fmt: skip
                if step is not None:
                    cursor.execute(self._ops.upsert_step, step)
            return received(status, step, found)

        return self._run("receive a message in", work)

    def list_messages(self, workflow_id: str) -> list[MessageRecord]:
        """The messages sent to a workflow, in the order they were stored."""
        return [
            MessageRecord(*row) for row in self._fetch("read", self._ops.messages, (workflow_id,))
        ]

    # -- events -------------------------------------------------------------------------------

    def set_event(
        self, workflow_id: str, executor_id: str, key: str, value: str, step: StepRecord
    ) -> str:
        """Set an event and record the step that set it, in one fenced transaction; notify."""

        def work(cursor: Cursor) -> str:
            with cursor.connection.transaction():
                row = cursor.execute(self._ops.owned_status, (workflow_id, executor_id)).fetchone()
                if row is None:
                    raise not_owned(workflow_id)
                cursor.execute(self._ops.set_event, (workflow_id, key, value, time.time()))
                cursor.execute(
                    self._ops.upsert_step, (workflow_id, *step.outcome(), executor_id, step.branch)
                )
                cursor.execute(self._ops.notify, (self.schema, f"event {workflow_id}"))
            status: str = row[0]
            return status

        return self._run("set an event in", work)

    def get_event(self, workflow_id: str, key: str) -> str | None:
        """The value of a workflow's event, or None when it is not set."""
        rows = self._fetch("read", self._ops.get_event, (workflow_id, key))
        return rows[0][0] if rows else None

    def list_events(self, workflow_id: str) -> dict[str, str]:
        """Every event a workflow has set, by key."""
        return {key: value for key, value in self._fetch("read", self._ops.events, (workflow_id,))}
