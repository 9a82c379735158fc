"""PostgreSQL backend: one database shared by many processes on many machines.

Selected by ``postgresql://user:password@host:port/dbname`` (or ``postgres://``).
Options of ours in the query string, removed before the rest goes to libpq:
``schema`` (default ``autodurable``), ``pool_size`` (connections per process,
default 16) and ``retry_seconds`` (how long an operation keeps retrying while
the server is unreachable, default 300).

Invariants:
- Everything lives in one dedicated schema, created and migrated from the
  numbered files in ``migrations/postgresql`` under an advisory lock; a schema
  written by a newer autodurable, or holding another application's tables, is
  refused before anything in it is changed.
- Connections come from a psycopg_pool pool in autocommit mode with no check
  on checkout: a step is one statement and one round trip, with no BEGIN,
  COMMIT or ping around it.
- Ownership is decided inside single statements. A claim is a compare-and-set
  on the owner it saw (so of two claimers one wins, even when both saw the same
  dead owner). A step write reads the workflow row ``FOR SHARE``, so it either
  commits before a claim of the workflow (and the claim's history has it) or
  waits for the claim and then finds it is no longer the owner (and writes
  nothing). Leases are measured with the server's clock.
- A claim and the history it loads travel in one pipeline (one round trip)
  and run as one implicit transaction; the history is read after the claim's
  update, with a snapshot of its own, so it holds every step whose writer had
  the row locked before the claim (the claim waited for it to commit).
- A statement about one workflow finds its row by the primary key whatever
  the table's statistics: its status is compared with IS NOT DISTINCT FROM,
  which no index serves (see `_Statements`).
- Finishing, releasing, cancelling or reopening a workflow, sending it a
  message and setting one of its events notify (``pg_notify``) in the same
  statement or transaction, on a channel named like the schema; see
  `_postgres_listen`.
- A step write is fenced by ownership and by the workflow being pending, in
  its one statement; only when that writes nothing does a second round trip
  tell a cancellation (the step is then written all the same) from a lost
  workflow. Running a workflow costs nothing more for being cancellable.
- Operations that fail because the server is unreachable (restart, network)
  are retried with backoff for ``retry_seconds``; every write is idempotent
  (keyed upserts, fenced updates), so a retried write is never recorded twice.
- psycopg exceptions are translated to `StoreError` here and nowhere else.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .._backoff import Backoff
from .._errors import StoreError
from ._group_commit import GroupCommit, StepWrite
from ._migrations import load_migrations
from ._protocol import (
    CANCELLED,
    PENDING,
    POSTGRES_EXTRA,
    Claim,
    ExecutorRecord,
    Liveness,
    StepRecord,
    WorkflowRecord,
)

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as _missing:  # pragma: no cover - tested in a subprocess without the driver
    raise StoreError(f"{POSTGRES_EXTRA} ({_missing})") from None

if tuple(int(part) for part in re.findall(r"\d+", psycopg.__version__)[:2]) < (3, 2):
    # Connection.notifies(timeout=...), which the wake-ups use, is new in 3.2.
    raise StoreError(  # pragma: no cover - the test environment has a current psycopg
        f"PostgreSQL support needs psycopg 3.2 or newer (found {psycopg.__version__}): "
        "pip install -U 'autodurable[postgres]'"
    )

from ._postgres_async import PostgresAsyncWrites
from ._postgres_changes import PostgresChanges
from ._postgres_limits import PostgresLimits
from ._postgres_listen import Listener
from ._postgres_ops import PostgresOperations
from ._postgres_queues import PostgresQueues
from ._postgres_sql import NW as _NW
from ._postgres_sql import OperationStatements, Statements
from ._postgres_url import parse_postgres_url
from ._postgres_writes import Finish, PostgresWrites

log = logging.getLogger("autodurable")
T = TypeVar("T")
Cursor = psycopg.Cursor[Any]

# Server-side time in seconds since the epoch: the clock leases are measured with.
# SQLSTATE classes worth waiting for: connection exception, transaction
# rollback (deadlock, serialization), insufficient resources, operator
# intervention (shutdown, restart in progress).
_TRANSIENT_CLASSES = ("08", "40", "53", "57P")
_IDLE = psycopg.pq.TransactionStatus.IDLE


@functools.cache
def _tables_at(version: int) -> frozenset[str]:
    """The tables that PostgreSQL migrations 1..`version` create (none is dropped)."""
    created = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I | re.M)
    return frozenset(
        name.lower()
        for _, script in load_migrations("postgresql")[:version]
        for name in created.findall(script)
    )


def _executor(row: Sequence[Any]) -> ExecutorRecord | None:
    """An executor row (6 columns and its heartbeat age), or None for a missing owner."""
    return None if row[0] is None else ExecutorRecord.from_row(row, row[6])


class PostgresStore(
    PostgresWrites,
    PostgresAsyncWrites,
    PostgresOperations,
    PostgresQueues,
    PostgresLimits,
    PostgresChanges,
):
    """A `Store` on a PostgreSQL database (one schema of it)."""

    notifies = True
    shares_commits = True

    def __init__(self, url: str) -> None:
        self.options = parse_postgres_url(url)
        self.url = self.options.masked
        self.schema = self.options.schema
        self._sql = Statements(f'"{self.schema}"')
        self._ops = OperationStatements(f'"{self.schema}"')
        self._closed = False
        self._by_loop: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._idle: list[Cursor] = []  # cursors of idle connections
        self._idle_lock = threading.Lock()
        self._waiting = 0  # threads waiting in the pool for a connection
        self._outage_lock = threading.Lock()
        self._outage_since: float | None = None
        kwargs = self._connection_kwargs()
        try:
            with psycopg.connect(self.options.conninfo, **kwargs) as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise self._error("open", exc) from exc
        self._pool: ConnectionPool = ConnectionPool(
            self.options.conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=self.options.pool_size,
            # Waiting longer than this for a connection counts as an outage (retried).
            timeout=min(5.0, max(1.0, self.options.retry_seconds)),
            reconnect_timeout=max(self.options.retry_seconds, 5.0),
            name=f"autodurable-{self.schema}",
            open=True,
        )
        self._listener = Listener(
            self.options.conninfo, kwargs, channel=self.schema, describe=self.url
        )
        self._steps_written: GroupCommit[StepWrite, str] = GroupCommit(
            lambda write: self._record_step_alone(*write), self.record_steps
        )
        self._finishes: GroupCommit[Finish, str] = GroupCommit(
            lambda finish: self._finish_alone(*finish), self._finish_batch
        )

    def _connection_kwargs(self) -> dict[str, Any]:
        """What every connection of the store is opened with, besides the URL's own."""
        kwargs: dict[str, Any] = {"autocommit": True}
        for key, value in (("application_name", "autodurable"), ("connect_timeout", 10)):
            if f"{key}=" not in self.options.conninfo:  # the URL's own value wins
                kwargs[key] = value
        return kwargs

    # -- schema -----------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        migrations = load_migrations("postgresql")
        version = self._schema_version(conn, len(migrations))
        if version == len(migrations):
            return
        schema = self._sql.schema
        with conn.transaction():
            # Processes starting together: one migrates, the others wait and re-check.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"autodurable:{schema}",))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            version = self._schema_version(conn, len(migrations))
            conn.execute(f"SET LOCAL search_path TO {schema}")
            for number, script in migrations[version:]:
                conn.execute(script)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))

    def _schema_version(self, conn: psycopg.Connection[Any], latest: int) -> int:
        """The applied schema version (0 for none); refuses newer or foreign schemas."""
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                (self.schema,),
            )
        ]
        if "schema_version" not in tables:
            if tables:
                self._refuse_foreign(tables, "it has no autodurable schema_version table")
            return 0
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'schema_version'",
                (self.schema,),
            ).fetchall()
        )
        if set(columns) != {"version", "applied_at"} or columns["version"] != "integer":
            self._refuse_foreign(
                tables,
                "its schema_version table is another tool's (columns "
                f"{', '.join(sorted(columns))}; autodurable's are applied_at, version)",
            )
        row = conn.execute(f"SELECT max(version) FROM {self._sql.schema}.schema_version").fetchone()
        version = int(row[0] or 0) if row else 0
        expected = _tables_at(min(version, latest)) if version else {"workflows"}
        missing = sorted(expected - set(tables))
        if missing:
            self._refuse_foreign(
                tables,
                f"its schema_version says {version} but it lacks the tables {', '.join(missing)} "
                f"of autodurable schema {version}",
            )
        if version > latest:
            raise StoreError(
                f"the schema {self.schema!r} of {self.url} has schema version {version}, written "
                f"by a newer autodurable; this version knows schemas up to {latest}. Upgrade "
                "autodurable (nothing was changed in the database)."
            )
        return version

    def _refuse_foreign(self, tables: list[str], wrong: str) -> None:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"the schema {self.schema!r} of {self.url} is not an autodurable schema: it holds "
            f"tables of another application ({shown}); {wrong}. autodurable will not write "
            "into it. Choose another schema with ?schema=NAME (nothing was changed)."
        )

    # -- running statements -------------------------------------------------------

    def _run(self, action: str, work: Callable[[Cursor], T]) -> T:
        """Run `work` on a pooled connection's cursor; wait out outages up to retry_seconds."""
        backoff, deadline = Backoff(0.05, 2.0), None
        while True:
            try:
                cursor = self._checkout()
                try:
                    result = work(cursor)
                finally:
                    self._checkin(cursor)
            except psycopg.Error as exc:
                if self._closed or not _transient(exc):
                    raise self._error(action, exc) from exc
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.options.retry_seconds
                    self._outage_started(exc)
                if now >= deadline:
                    raise self._error(
                        action, exc, f" (still failing after {self.options.retry_seconds:g}s)"
                    ) from exc
                time.sleep(min(backoff.next(), max(0.0, deadline - now)))
                continue
            if deadline is not None:
                self._outage_ended()
            return result

    def _checkout(self) -> Cursor:
        # Idle connections wait in a list of ours, each with a cursor that is used
        # again: psycopg_pool's checkout and return, and a new cursor per
        # statement, would cost a step about 25 µs, a fifth of a round trip. The
        # pool still opens, bounds (pool_size) and replaces connections, and it
        # hands them to threads that wait: while one does, returned connections go
        # to the pool.
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
            self._waiting += 1
        try:
            return self._pool.getconn().cursor()
        finally:
            with self._idle_lock:
                self._waiting -= 1

    def _checkin(self, cursor: Cursor) -> None:
        conn = cursor.connection
        if conn.pgconn.transaction_status == _IDLE and not self._closed:
            with self._idle_lock:
                if not self._waiting:
                    self._idle.append(cursor)
                    return
        # Someone waits in the pool, or the connection is broken or in a
        # transaction: the pool hands it over, closes it or resets it.
        self._pool.putconn(conn)

    def _return_idle(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for cursor in idle:
            self._pool.putconn(cursor.connection)

    def _outage_started(self, exc: psycopg.Error) -> None:
        with self._outage_lock:
            first = self._outage_since is None
            if first:
                self._outage_since = time.monotonic()
        if not first:
            return
        log.warning(
            "autodurable: the PostgreSQL state database %s is unreachable (%s); retrying "
            "for up to %gs",
            self.url,
            _first_line(exc),
            self.options.retry_seconds,
        )
        try:  # drop every pooled connection the outage broke, not one per attempt
            self._return_idle()
            self._pool.check()
        except Exception:  # the pool reconnects in the background anyway
            log.debug("autodurable: pool check failed", exc_info=True)

    def _outage_ended(self) -> None:
        with self._outage_lock:
            since, self._outage_since = self._outage_since, None
        if since is not None:
            log.warning(
                "autodurable: the PostgreSQL state database %s is reachable again after %.1fs",
                self.url,
                time.monotonic() - since,
            )

    def _execute(self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]) -> int:
        """One statement; the number of rows it affected (or returned)."""
        return self._run(action, lambda cursor: cursor.execute(statement, params).rowcount)

    def _fetch(
        self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return self._run(action, lambda cursor: cursor.execute(statement, params).fetchall())

    def _error(self, action: str, exc: psycopg.Error, note: str = "") -> StoreError:
        message = _first_line(exc)
        text = str(exc)
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate == "3D000" or ("database" in text and "does not exist" in text):
            hint = (
                "the database does not exist: create it (createdb NAME, or CREATE DATABASE) "
                "or fix the database name in the URL"
            )
        elif "role" in text and "does not exist" in text:
            hint = "the user does not exist on the server: fix the user name in the URL"
        elif sqlstate in ("28000", "28P01") or "authentication failed" in text:
            hint = "check the user and password in the URL (or PGPASSWORD / ~/.pgpass)"
        elif "pg_hba.conf" in text:
            hint = "the server refuses this client: allow it in pg_hba.conf"
        elif sqlstate == "42501":
            hint = (
                f"the user lacks a privilege: it needs CREATE on the database to create the "
                f"schema {self.schema!r}, or the schema created by an administrator with the "
                "user as owner (or point ?schema= at a schema the user owns)"
            )
        elif sqlstate == "53300" or "too many" in text:
            hint = "the server has no free connection: lower ?pool_size= or raise max_connections"
        elif isinstance(exc, PoolTimeout) or _transient(exc):
            hint = (
                "the server is not reachable: is it running, and are the host and port in the "
                "URL right? Raise ?retry_seconds= to wait longer through outages"
            )
        else:
            hint = "see the PostgreSQL message above"
        return StoreError(
            f"cannot {action} the PostgreSQL state database {self.url}: {message}{note}; {hint}"
        )

    # -- executors --------------------------------------------------------------------

    def register_executor(self, executor: ExecutorRecord) -> None:
        """Insert (or refresh) the row of a live executor; its heartbeat is now (server clock)."""
        self._execute(
            "register an executor in",
            self._sql.register,
            (
                executor.executor_id,
                executor.hostname,
                executor.pid,
                executor.process_started,
                executor.started_at,
            ),
        )

    def heartbeat(self, executor_id: str) -> bool:
        """Renew an executor's lease with the server's clock; False if its row is gone."""
        return self._execute("renew a lease in", self._sql.heartbeat, (executor_id,)) == 1

    def retire_executor(self, executor_id: str) -> None:
        """Release the executor's unfinished workflows (notifying) and delete its row."""
        self._execute(
            "retire an executor in",
            self._sql.retire,
            (time.time(), executor_id, PENDING, executor_id, self.schema),
        )

    # -- workflows ---------------------------------------------------------------------

    def create_workflow(self, record: WorkflowRecord) -> bool:
        """Insert a new workflow; False if the id exists already."""
        values = record.values()
        if record.executor_id is None:  # nobody runs it: tell the executors that adopt
            statement, params = self._sql.create_unowned, (*values, self.schema)
        else:
            statement, params = self._sql.create, values
        return self._execute("start a workflow in", statement, params) == 1

    def claim_workflow(
        self, workflow_id: str, executor: Liveness, app_version: str | None = None
    ) -> Claim | None:
        """Take ownership of a pending workflow unless a live executor holds it."""
        claim = self._claim(workflow_id, executor, [], app_version)
        owner = claim.owner if claim is not None else None
        if (
            claim is not None
            and not claim.claimed
            and claim.workflow.status == PENDING
            and owner is not None
            and owner.hostname == executor.hostname
            and not executor.alive(owner)
        ):
            # The lease says alive, but on this host the process table says dead.
            claim = self._claim(workflow_id, executor, [owner.executor_id], app_version)
        return claim

    def _claim(
        self, workflow_id: str, executor: Liveness, dead: list[str], app_version: str | None
    ) -> Claim | None:
        me = executor.executor_id
        params = {
            "workflow_id": workflow_id,
            "me": me,
            "version": app_version,
            "dead": dead,
            "host": executor.hostname,
            "lease": executor.lease_seconds,
            "now": time.time(),
            "pending": PENDING,
        }

        def work(cursor: Cursor) -> tuple[Any, bool, list[Any]]:
            conn = cursor.connection
            with conn.pipeline():
                seen = conn.execute(self._sql.read_with_owner, (workflow_id,))
                claimed = conn.execute(self._sql.claim, params)
                history = conn.execute(self._sql.history_if_mine, params)
            return seen.fetchone(), claimed.rowcount == 1, history.fetchall()

        row, claimed, steps = self._run("claim a workflow in", work)
        if row is None:
            return None
        workflow = WorkflowRecord(*row[:_NW])
        owner = _executor(row[_NW:])
        if claimed:
            workflow.executor_id = me
            if workflow.app_version is None:
                workflow.app_version = app_version
        else:
            steps = []  # not ours (or it finished between the reads): no history
        return Claim(workflow, claimed, [StepRecord(*step) for step in steps], owner)

    def adoptable_workflows(
        self, executor: Liveness, limit: int
    ) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows `executor` may adopt, oldest first: unowned, or whose owner is dead."""
        neighbours = self._fetch(
            "read", self._sql.neighbours, (executor.hostname, executor.executor_id)
        )
        dead = [
            row[0] for row in neighbours if not executor.alive(ExecutorRecord.from_row(row, row[6]))
        ]
        rows = self._fetch(
            "read",
            self._sql.adoptable,
            {
                "me": executor.executor_id,
                "dead": dead,
                "host": executor.hostname,
                "lease": executor.lease_seconds,
                "pending": PENDING,
                "limit": limit,
            },
        )
        return [(WorkflowRecord(*row[:_NW]), _executor(row[_NW:])) for row in rows]

    def release_workflow(self, workflow_id: str, executor_id: str) -> None:
        """Give up ownership of a pending or cancelled workflow, and tell the adopters."""
        self._execute(
            "release a workflow in",
            self._sql.release,
            (time.time(), workflow_id, executor_id, [PENDING, CANCELLED], self.schema),
        )

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow's row, or None."""
        rows = self._fetch("read", self._sql.get, (workflow_id,))
        return WorkflowRecord(*rows[0]) if rows else None

    def set_trace_context(self, workflow_id: str, executor_id: str, trace_context: str) -> None:
        """Replace the trace context of a workflow `executor_id` owns."""
        self._execute(
            "record a trace context in",
            f'UPDATE "{self.schema}".workflows SET trace_context = %s '
            "WHERE workflow_id = %s AND executor_id = %s",
            (trace_context, workflow_id, executor_id),
        )

    def list_steps(self, workflow_id: str) -> list[StepRecord]:
        """A workflow's steps in order."""
        return [StepRecord(*row) for row in self._fetch("read", self._sql.history, (workflow_id,))]

    def unfinished_workflows(self) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows with their owner's row (None if unowned or gone)."""
        rows = self._fetch("read", self._sql.unfinished, (PENDING,))
        return [(WorkflowRecord(*row[:_NW]), _executor(row[_NW:])) for row in rows]

    def subscribe(self, workflow_id: str | None = None) -> Any:
        """Wake-ups through LISTEN/NOTIFY when the workflow finishes or is released."""
        return self._listener.subscribe(workflow_id)

    def close(self) -> None:
        """Stop listening and close the pool's connections."""
        self._closed = True
        self._listener.close()
        self.close_async_connections()
        self._return_idle()
        self._pool.close(timeout=5.0)


def _transient(exc: psycopg.Error) -> bool:
    """Whether waiting may help: the server is unreachable, restarting or overloaded."""
    if isinstance(exc, PoolTimeout):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is None:  # no answer from the server: the connection failed
        return isinstance(exc, psycopg.OperationalError)
    return bool(sqlstate.startswith(_TRANSIENT_CLASSES))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
