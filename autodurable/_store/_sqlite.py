"""SQLite backend: the embedded default, one file shared by the processes of one machine.

Invariants:
- WAL journal; ``synchronous=NORMAL`` by default (survives process crashes;
  ``?synchronous=full`` in the URL also survives power loss).
- One connection per store, in autocommit mode, guarded by a lock; writes that
  span statements use ``BEGIN IMMEDIATE`` so that claims are atomic across
  processes.
- A database file is never modified before it is known to be whole, ours and
  of a schema this version understands (`_sqlite_file`).
- `sqlite3` exceptions are translated to `StoreError` here and nowhere else.
- No notifications between processes: waiters poll. Changes made by this
  process wake its own waiters at once (`_local`).
- A step write is fenced by ownership and by the workflow being pending, in
  one statement; only when that writes nothing does a read tell a
  cancellation (the step is then written all the same) from a lost workflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .._errors import ConfigError, StoreError
from ._group_commit import GroupCommit, Outcome, StepWrite, settle_the_rest
from ._local import LocalSubscription, hub_for
from ._protocol import (
    CANCELLED,
    EXECUTOR_COLUMNS,
    FAILED,
    FINISHED_STATUSES,
    PENDING,
    STEP_COLUMNS,
    WORKFLOW_COLUMNS,
    Claim,
    ExecutorRecord,
    Liveness,
    StepRecord,
    WorkflowRecord,
)
from ._rules import finished_status, not_owned
from ._sqlite_changes import SQLiteChanges
from ._sqlite_driver import sqlite3
from ._sqlite_file import RESTORE, check_and_migrate
from ._sqlite_limits import SQLiteLimits
from ._sqlite_ops import SQLiteOperations
from ._sqlite_queues import SQLiteQueues

_W = len(WORKFLOW_COLUMNS.split(", "))
# One statement, fenced: the row is written only while the workflow is this
# executor's. Numbered parameters: the workflow (?1) and the executor (?10) are
# bound once for the row and the fence, so the parameters are the row's values.
_RECORD_STEP = (
    "INSERT OR REPLACE INTO steps (workflow_id, position, name, status, output, error, "
    "attempts, started_at, finished_at, executor_id, branch, arguments) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 "
    "WHERE EXISTS (SELECT 1 FROM workflows WHERE workflow_id = ?1 AND executor_id = ?10"
)
_RECORD_PENDING_STEP = _RECORD_STEP + f" AND status = '{PENDING}')"  # the common case
_RECORD_OWNED_STEP = _RECORD_STEP + ")"  # a cancelled workflow's last step


def _row(workflow_id: str, executor_id: str, step: StepRecord) -> tuple[Any, ...]:
    """A step row's values in column order (`StepRecord.outcome` and the rest), read
    straight into the one tuple the statement binds."""
    return (
        workflow_id, step.position, step.name, step.status, step.output, step.error,
        step.attempts, step.started_at, step.finished_at, executor_id, step.branch,
        step.arguments,
    )  # fmt: skip


# A workflow's steps in the order they were called: by the position in the
# workflow's own code where each was called or its branch started, then by branch.
STEPS_IN_ORDER = (
    "ORDER BY CASE WHEN branch = '' THEN position ELSE CAST(branch AS INTEGER) END, "
    "branch, position"
)
_DISK_FULL = (
    "the disk holding it is full (or the file reached SQLite's size limit), so this write "
    "was not recorded. Free space on that disk, or move the database (with its -wal and "
    "-shm files, while no process uses it) to a disk with room, then run again; what was "
    "recorded before is intact."
)
_SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL", "extra": "EXTRA", "off": "OFF"}


def parse_sqlite_url(url: str) -> tuple[str, str]:
    """Return (path, synchronous mode) of a ``sqlite:///path?synchronous=...`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"not an SQLite URL: {url!r}")
    if parts.netloc:
        raise ConfigError(
            f"invalid SQLite URL {url!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (three or four slashes)"
        )
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path:
        raise ConfigError(f"invalid SQLite URL {url!r}: it names no file")
    query = parse_qs(parts.query)
    unknown = set(query) - {"synchronous"}
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} in {url!r}; known: synchronous")
    mode = query.get("synchronous", ["normal"])[-1].lower()
    if mode not in _SYNCHRONOUS:
        raise ConfigError(
            f"synchronous={mode!r} in {url!r} is not one of {sorted(_SYNCHRONOUS)}; "
            "'normal' survives process crashes, 'full' also power loss"
        )
    return path, _SYNCHRONOUS[mode]


def _executor(row: tuple[Any, ...] | list[Any], now: float) -> ExecutorRecord:
    return ExecutorRecord.from_row(row, now - row[5])


class SQLiteStore(SQLiteOperations, SQLiteQueues, SQLiteLimits, SQLiteChanges):
    """A `Store` on one SQLite file."""

    notifies = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.path, self.synchronous = parse_sqlite_url(url)
        self._lock = threading.Lock()
        self._conn = self._open()
        # Shared commits pay where a commit waits for the disk (synchronous=full or
        # extra: an fsync each). With the default, a commit is a write to the WAL,
        # cheaper than handing records between threads: each writer commits its own.
        self._steps_written: GroupCommit[StepWrite, str] | None = (
            GroupCommit(lambda write: self._record_step_alone(*write), self.record_steps)
            if self.synchronous in ("FULL", "EXTRA")
            else None
        )
        self.shares_commits = self._steps_written is not None
        where = self.path if self.path == ":memory:" else str(Path(self.path).resolve())
        self._hub = hub_for(where)

    # -- opening --------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        where = self.path
        if where != ":memory:":
            folder = Path(where).resolve().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder {folder} for the state database: {exc.strerror}. "
                    "Make it writable, or point AUTODURABLE_DATABASE_URL (or "
                    "autodurable.configure(database_url=...)) at a writable place."
                ) from exc
        try:
            conn = sqlite3.connect(
                where, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise self._error("open", exc) from exc
        try:
            check_and_migrate(conn, where, self.synchronous)
        except sqlite3.Error as exc:
            conn.close()
            raise self._error("open", exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _error(self, action: str, exc: sqlite3.Error) -> StoreError:
        message = str(exc)
        if "malformed" in message:
            hint = f"the file is damaged. {RESTORE} Nothing was changed."
        elif "not a database" in message:
            hint = (
                "the file is not a valid SQLite database (corrupt, or another kind of "
                "file). Nothing was changed; move it aside or point database_url elsewhere."
            )
        elif "disk is full" in message or getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
            hint = _DISK_FULL
        elif "unable to open" in message or "readonly" in message or "read-only" in message:
            hint = (
                "the file or its folder is not writable. Make it writable, or point "
                "AUTODURABLE_DATABASE_URL at a writable place."
            )
        elif "locked" in message or "busy" in message:
            hint = "another process held the database lock for too long; try again."
        else:
            hint = "see the SQLite message above."
        return StoreError(f"cannot {action} the state database {self.path}: {message}; {hint}")

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._transaction_held(action) as conn:
            yield conn

    @contextmanager
    def _transaction_held(self, action: str) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction; the caller holds the lock."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(action, exc) from exc

    def _query(self, action: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc

    def _write(self, action: str, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc

    # -- executors ------------------------------------------------------------

    def register_executor(self, executor: ExecutorRecord) -> None:
        """Insert (or refresh) the row of a live executor."""
        self._write(
            "register an executor in",
            f"INSERT OR REPLACE INTO executors ({EXECUTOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                executor.executor_id,
                executor.hostname,
                executor.pid,
                executor.process_started,
                executor.started_at,
                time.time(),
            ),
        )

    def heartbeat(self, executor_id: str) -> bool:
        """Renew an executor's lease; False if its row is gone."""
        return (
            self._write(
                "renew a lease in",
                "UPDATE executors SET heartbeat_at = ? WHERE executor_id = ?",
                (time.time(), executor_id),
            )
            == 1
        )

    def retire_executor(self, executor_id: str) -> None:
        """Release the executor's unfinished workflows and delete its row."""
        with self._transaction("retire an executor in") as conn:
            released = [
                row[0]
                for row in conn.execute(
                    "SELECT workflow_id FROM workflows WHERE executor_id = ? AND status = ?",
                    (executor_id, PENDING),
                )
            ]
            conn.execute(
                "UPDATE workflows SET executor_id = NULL, updated_at = ? "
                "WHERE executor_id = ? AND status = ?",
                (time.time(), executor_id, PENDING),
            )
            conn.execute("DELETE FROM executors WHERE executor_id = ?", (executor_id,))
        for workflow_id in released:
            self._hub.wake(workflow_id, released=True)

    # -- workflows ------------------------------------------------------------

    def create_workflow(self, record: WorkflowRecord) -> bool:
        """Insert a new workflow; False if the id exists already."""
        return (
            self._write(
                "start a workflow in",
                f"INSERT INTO workflows ({WORKFLOW_COLUMNS}) "
                f"VALUES ({', '.join('?' * _W)}) ON CONFLICT (workflow_id) DO NOTHING",
                record.values(),
            )
            == 1
        )

    def claim_workflow(
        self, workflow_id: str, executor: Liveness, app_version: str | None = None
    ) -> Claim | None:
        """Take ownership of a pending workflow unless a live executor holds it."""
        executor_id = executor.executor_id
        with self._transaction("claim a workflow in") as conn:
            row = conn.execute(
                f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workflow_id = ?", (workflow_id,)
            ).fetchone()
            if row is None:
                return None
            workflow = WorkflowRecord(*row)
            owner = None
            if workflow.executor_id is not None:
                found = conn.execute(
                    f"SELECT {EXECUTOR_COLUMNS} FROM executors WHERE executor_id = ?",
                    (workflow.executor_id,),
                ).fetchone()
                owner = _executor(found, time.time()) if found else None
            finished = workflow.status in FINISHED_STATUSES
            claimable = not finished and (
                workflow.executor_id in (None, executor_id)
                or owner is None
                or not executor.alive(owner)
            )
            if claimable:
                workflow.executor_id = executor_id
                workflow.updated_at = time.time()
                if workflow.app_version is None:
                    workflow.app_version = app_version
                conn.execute(
                    "UPDATE workflows SET executor_id = ?, updated_at = ?, app_version = ? "
                    "WHERE workflow_id = ?",
                    (executor_id, workflow.updated_at, workflow.app_version, workflow_id),
                )
            # Only a claim that will run it needs the history: a finished workflow's
            # caller reads its output, however many steps it recorded.
            steps = self._steps(conn, workflow_id) if claimable else []
            return Claim(workflow, claimable, steps, owner)

    # The cursor of step writes, made by the first: a Cursor object less per step.
    _step_cursor: sqlite3.Cursor | None = None

    def record_step(self, workflow_id: str, executor_id: str, step: StepRecord) -> str:
        """Insert or replace one step's outcome: one statement, fenced by ownership.

        Returns the workflow's status: pending, or cancelled (stop at this
        boundary; the step is recorded all the same). With ``synchronous=full``,
        threads that record steps at the same moment share a commit (`_group_commit`).
        """
        if self._steps_written is None:
            return self._record_step_alone(workflow_id, executor_id, step)
        return self._steps_written.write((workflow_id, executor_id, step))

    def record_steps(self, batch: Sequence[StepWrite]) -> list[Outcome[str]]:
        """Several writers' step rows in one transaction; a row the common statement
        does not settle (not owned, not pending, an error) is written again alone."""
        settled: list[str | None] = [None] * len(batch)
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for index, request in enumerate(batch):
                        try:
                            if conn.execute(_RECORD_PENDING_STEP, _row(*request)).rowcount == 1:
                                settled[index] = PENDING
                        except sqlite3.Error:
                            # This row alone, below: it gets its own error. Some errors
                            # (a full disk) end the transaction: then the rest too.
                            if not conn.in_transaction:
                                raise
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                settled = [None] * len(batch)  # nothing of the batch is written
        return settle_the_rest(batch, settled, self._record_step_alone)

    def _record_step_alone(self, workflow_id: str, executor_id: str, step: StepRecord) -> str:
        """One step row: one statement, or the fenced transaction when it is not the
        pending workflow's own (its status then says why)."""
        params = _row(workflow_id, executor_id, step)
        with self._lock:
            try:
                cursor = self._step_cursor
                if cursor is None:
                    cursor = self._step_cursor = self._conn.cursor()
                if cursor.execute(_RECORD_PENDING_STEP, params).rowcount == 1:
                    return PENDING
                with self._transaction_held("record a step in") as conn:
                    row = conn.execute(
                        "SELECT status FROM workflows WHERE workflow_id = ? AND executor_id = ?",
                        (workflow_id, executor_id),
                    ).fetchone()
                    if row is not None:
                        conn.execute(_RECORD_OWNED_STEP, params)
            except sqlite3.Error as exc:
                raise self._error("record a step in", exc) from exc
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
        """Record a pending workflow's final status (fenced by ownership); the status after."""
        written = self._write(
            "finish a workflow in",
            "UPDATE workflows SET status = ?, output = ?, error = ?, updated_at = ? "
            "WHERE workflow_id = ? AND executor_id = ? AND status = ?",
            (status, output, error, time.time(), workflow_id, executor_id, PENDING),
        )
        found = None if written == 1 else self.get_workflow(workflow_id)
        status = finished_status(workflow_id, executor_id, status, written, found)
        self._hub.wake(workflow_id)
        return status

    def release_workflow(self, workflow_id: str, executor_id: str) -> None:
        """Give up ownership of a pending or cancelled workflow."""
        released = self._write(
            "release a workflow in",
            "UPDATE workflows SET executor_id = NULL, updated_at = ? "
            "WHERE workflow_id = ? AND executor_id = ? AND status IN (?, ?)",
            (time.time(), workflow_id, executor_id, PENDING, CANCELLED),
        )
        if released:
            self._hub.wake(workflow_id, released=True)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow's row, or None."""
        rows = self._query(
            "read",
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workflow_id = ?",
            (workflow_id,),
        )
        return WorkflowRecord(*rows[0]) if rows else None

    def set_trace_context(self, workflow_id: str, executor_id: str, trace_context: str) -> None:
        """Replace the trace context of a workflow `executor_id` owns."""
        self._write(
            "record a trace context in",
            "UPDATE workflows SET trace_context = ? WHERE workflow_id = ? AND executor_id = ?",
            (trace_context, workflow_id, executor_id),
        )

    def reopen_workflow(
        self, workflow_id: str, *, app_version: str | None = None, unpin: bool = False
    ) -> int | None:
        """Make a failed or cancelled workflow pending and unowned again."""
        version = "app_version"
        params: tuple[Any, ...] = ()
        if unpin:
            version = "NULL"
        elif app_version is not None:
            version, params = "?", (app_version,)
        with self._transaction("reopen a workflow in") as conn:
            reopened = conn.execute(
                "UPDATE workflows SET status = ?, output = NULL, error = NULL, executor_id = NULL, "
                f"deadline = NULL, app_version = {version}, updated_at = ? "
                "WHERE workflow_id = ? AND status IN (?, ?)",
                (PENDING, *params, time.time(), workflow_id, FAILED, CANCELLED),
            ).rowcount
            if not reopened:
                return None
            conn.execute(
                "DELETE FROM steps WHERE workflow_id = ? AND branch = '' AND status = ? "
                "AND position = (SELECT MAX(position) FROM steps "
                "WHERE workflow_id = ? AND branch = '')",
                (workflow_id, FAILED, workflow_id),
            )
            (kept,) = conn.execute(
                "SELECT COUNT(*) FROM steps WHERE workflow_id = ?", (workflow_id,)
            ).fetchone()
        self._hub.wake(workflow_id, released=True)
        return int(kept)

    def list_steps(self, workflow_id: str) -> list[StepRecord]:
        """A workflow's steps in order."""
        with self._lock:
            try:
                return self._steps(self._conn, workflow_id)
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc

    def unfinished_workflows(self) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows with their owner's row (None if unowned or gone)."""
        now = time.time()
        rows = self._query(
            "read",
            f"SELECT {', '.join('w.' + c for c in WORKFLOW_COLUMNS.split(', '))}, "
            f"{', '.join('e.' + c for c in EXECUTOR_COLUMNS.split(', '))} "
            "FROM workflows w LEFT JOIN executors e ON e.executor_id = w.executor_id "
            "WHERE w.status = ? ORDER BY w.created_at",
            (PENDING,),
        )
        out = []
        for row in rows:
            owner = _executor(row[_W:], now) if row[_W] is not None else None
            out.append((WorkflowRecord(*row[:_W]), owner))
        return out

    def adoptable_workflows(
        self, executor: Liveness, limit: int
    ) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows `executor` may adopt, oldest first: unowned, or whose owner is dead."""
        found = []
        for record, owner in self.unfinished_workflows():
            if record.executor_id == executor.executor_id:
                continue
            if record.executor_id is None or owner is None or not executor.alive(owner):
                found.append((record, owner))
                if len(found) >= limit:
                    break
        return found

    def subscribe(self, workflow_id: str | None = None) -> LocalSubscription:
        """Wake-ups from this process only: SQLite cannot notify other processes."""
        return self._hub.subscribe(workflow_id)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @staticmethod
    def _steps(conn: sqlite3.Connection, workflow_id: str) -> list[StepRecord]:
        rows = conn.execute(
            f"SELECT {STEP_COLUMNS} FROM steps WHERE workflow_id = ? {STEPS_IN_ORDER}",
            (workflow_id,),
        ).fetchall()
        return [StepRecord(*row) for row in rows]
