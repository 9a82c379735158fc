"""The PostgreSQL store: URL options, its schema, errors that say what to do, and cost.

What every store promises is tested on both backends in
test_store_conformance.py; this file holds what only PostgreSQL has. The cost
tests count statements on the server with pg_stat_statements: one statement
per step (no BEGIN, COMMIT or ping around it), and the history of a resumed
workflow in one query; and they read the plans of the statements about one
workflow: the primary key finds it, also in a new schema without statistics.
The fence test holds a step write in flight at the server while another
executor claims the workflow, and checks that the write is either in the
claim's history or refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import autodurable
from autodurable._core._executor import HOSTNAME, Lease
from autodurable._errors import ConfigError, OwnershipLost, StoreError
from autodurable._store import (
    CANCELLED,
    PENDING,
    QUEUED_STATUSES,
    SUCCEEDED,
    ExecutorRecord,
    StepRecord,
    WorkflowRecord,
    check_url,
    open_store,
)
from autodurable._store._migrations import load_migrations
from autodurable._store._postgres import parse_postgres_url

from ..helpers import child_env, wait_until


def with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + database + ("?" + query if query else "")


def schema_of(url: str) -> str:
    return parse_postgres_url(url).schema


def admin(server) -> psycopg.Connection:
    return psycopg.connect(server.url(), autocommit=True)


# -- URLs ----------------------------------------------------------------------------------


def test_url_options_are_ours_and_the_rest_goes_to_libpq():
    parsed = parse_postgres_url(
        "postgresql://app:s3cret@db.example:6543/jobs?schema=durable&pool_size=4"
        "&retry_seconds=2.5&sslmode=require"
    )
    assert (parsed.schema, parsed.pool_size, parsed.retry_seconds) == ("durable", 4, 2.5)
    assert parsed.conninfo == "postgresql://app:s3cret@db.example:6543/jobs?sslmode=require"
    assert "s3cret" not in parsed.masked and "app:***@db.example" in parsed.masked
    defaults = parse_postgres_url("postgres://localhost/jobs")
    assert (defaults.schema, defaults.pool_size, defaults.retry_seconds) == ("autodurable", 16, 300)
    check_url("postgres://localhost/jobs")


def test_libpq_gets_options_with_spaces_as_it_reads_them():
    from psycopg.conninfo import conninfo_to_dict

    parsed = parse_postgres_url(
        "postgresql://localhost/jobs?schema=s&options=-c%20statement_timeout%3D5s"
    )
    assert conninfo_to_dict(parsed.conninfo)["options"] == "-c statement_timeout=5s"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://h/db?schema=a-b", "not a plain identifier"),
        ("postgresql://h/db?schema=x;drop", "not a plain identifier"),
        ("postgresql://h/db?pool_size=0", "pool_size='0'.*>= 1"),
        ("postgresql://h/db?retry_seconds=soon", "retry_seconds='soon'"),
        ("mysql://h/db", "supports sqlite.*postgresql://"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url, message):
    with pytest.raises(ConfigError, match=message):
        autodurable.configure(database_url=url)


MISSING_DRIVER = """
import sys
sys.modules["psycopg"] = None  # as if the postgres extra were not installed
import autodurable
from autodurable._errors import StoreError
try:
    autodurable.configure(database_url="postgresql://localhost/jobs")
except autodurable.ConfigError as exc:
    print("configure:", exc)
try:
    import autodurable._store._postgres
except StoreError as exc:
    print("import:", exc)
"""


def test_a_missing_driver_names_the_extra_to_install():
    done = subprocess.run(
        [sys.executable, "-c", MISSING_DRIVER],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        assert "pip install 'autodurable[postgres]'" in line


# -- schema ----------------------------------------------------------------------------------


def test_the_schema_is_created_migrated_and_readable_with_plain_sql(postgres_server, postgres_url):
    store = open_store(postgres_url)
    store.close()
    open_store(postgres_url).close()  # a second open migrates nothing
    schema = schema_of(postgres_url)
    with admin(postgres_server) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        }
        versions = conn.execute(f"SELECT version FROM {schema}.schema_version").fetchall()
    assert {"workflows", "steps", "executors", "schema_version"} <= tables
    assert [v for (v,) in versions] == list(range(1, len(load_migrations("postgresql")) + 1))


def test_a_newer_schema_is_refused_and_left_unchanged(postgres_server, postgres_url):
    open_store(postgres_url).close()
    schema = schema_of(postgres_url)
    with admin(postgres_server) as conn:
        conn.execute(f"INSERT INTO {schema}.schema_version (version) VALUES (999)")
        conn.execute(f"ALTER TABLE {schema}.workflows ADD COLUMN from_the_future TEXT")
    with pytest.raises(StoreError, match=r"schema version 999.*Upgrade autodurable"):
        open_store(postgres_url)
    with admin(postgres_server) as conn:
        count = conn.execute(f"SELECT count(*) FROM {schema}.schema_version").fetchone()[0]
    assert count == len(load_migrations("postgresql")) + 1


def test_a_schema_of_another_application_is_refused_and_unchanged(postgres_server):
    schema = f"app_{uuid.uuid4().hex[:8]}"
    with admin(postgres_server) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.customers (id INTEGER)")
    with pytest.raises(StoreError, match=r"another application \(customers\).*\?schema="):
        open_store(postgres_server.url(schema=schema))
    with admin(postgres_server) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    assert tables == [("customers",)]


def test_processes_opening_a_fresh_schema_together_migrate_it_once(postgres_url):
    script = (
        "import sys; from autodurable._store import open_store; open_store(sys.argv[1]).close()"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", script, postgres_url], env=child_env())
        for _ in range(4)
    ]
    assert [child.wait(timeout=60) for child in children] == [0, 0, 0, 0]
    store = open_store(postgres_url)
    assert store.list_workflows() == []
    store.close()


# -- errors ------------------------------------------------------------------------------------


def test_connection_problems_say_what_to_check(postgres_server):
    nothing_listens = f"postgresql://postgres@127.0.0.1:{postgres_server.port + 1}/postgres"
    cases = [
        (nothing_listens, r"Connection refused.*is it running.*host and port"),
        (with_database(postgres_server.url(), "no_such_db"), r"does not exist: create it"),
        (postgres_server.url().replace("postgres@", "nobody@", 1), r"fix the user name"),
    ]
    for url, message in cases:
        with pytest.raises(StoreError, match=message):
            open_store(url)


def test_missing_privileges_are_explained(postgres_server):
    role = f"weak_{uuid.uuid4().hex[:8]}"
    with admin(postgres_server) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    url = postgres_server.url(schema=f"s_{role}").replace("postgres@", f"{role}@", 1)
    with pytest.raises(StoreError, match=r"permission denied.*needs CREATE on the database"):
        open_store(url)


def test_an_outage_longer_than_retry_seconds_becomes_a_store_error(postgres_server):
    role = f"flaky_{uuid.uuid4().hex[:8]}"
    with admin(postgres_server) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT CREATE ON DATABASE postgres TO {role}")
    url = postgres_server.url(schema=role, retry_seconds="0.5").replace("postgres@", f"{role}@", 1)
    store = open_store(url)
    try:
        assert store.list_workflows() == []
        with admin(postgres_server) as conn:  # the server turns this client away from now on
            conn.execute(f"ALTER ROLE {role} NOLOGIN")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        with pytest.raises(StoreError, match=r"still failing after 0.5s.*retry_seconds"):
            store.get_workflow("x")
    finally:
        store.close()


# -- cost: statements per step --------------------------------------------------------------


@autodurable.step
def add_one(i: int) -> int:
    return i + 1


class Interrupt(BaseException):
    """Leaves the workflow pending, as a crash would."""


interrupt = {"after": None}


@autodurable.workflow
def counting(n: int) -> int:
    total = 0
    for i in range(n):
        total += add_one(i)
    if interrupt["after"]:
        raise Interrupt("after the steps")
    return total


def statements(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    """Calls per statement since the last reset: ours (naming the schema), BEGIN, COMMIT."""
    rows = conn.execute(
        "SELECT query, calls FROM pg_stat_statements WHERE query LIKE %s "
        "OR query ILIKE 'begin%%' OR query ILIKE 'commit%%' OR query ILIKE 'select 1%%'",
        (f'%"{schema}"%',),
    ).fetchall()
    return {query: calls for query, calls in rows}


def test_a_step_is_one_statement_and_a_resume_reads_history_once(postgres_server, postgres_url):
    schema = schema_of(postgres_url)
    with admin(postgres_server) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        autodurable.configure(database_url=postgres_url, lease_seconds=600)
        counting(3)  # warm up: the executor registers, the pool opens
        conn.execute("SELECT pg_stat_statements_reset()")
        assert autodurable.options(counting, workflow_id="w-20")(20) == sum(range(1, 21))
        seen = statements(conn, schema)
        steps = {q: n for q, n in seen.items() if q.startswith(f'INSERT INTO "{schema}".steps')}
        assert list(steps.values()) == [20], seen
        assert sum(seen.values()) == 20 + 2, seen  # + start and finish; no BEGIN/COMMIT/ping

        interrupt["after"] = True
        with pytest.raises(Interrupt, match=r"^after the steps$"):
            autodurable.options(counting, workflow_id="w-resumed")(10)
        interrupt["after"] = None
        conn.execute("SELECT pg_stat_statements_reset()")
        assert autodurable.options(counting, workflow_id="w-resumed")(10) == sum(range(1, 11))
        seen = statements(conn, schema)
        history = {q: n for q, n in seen.items() if f'FROM "{schema}".steps' in q}
        assert list(history.values()) == [1], seen  # the whole history in one query
        assert not any(q.startswith(f'INSERT INTO "{schema}".steps') for q in seen), seen


def test_statements_about_one_workflow_find_it_by_the_primary_key(postgres_server, postgres_url):
    """In a new schema the planner has no statistics: with `status = ...` it would read
    an index on status (every pending workflow's entry) on every step."""
    store = open_store(postgres_url)
    now = time.time()
    try:
        store.register_executor(ExecutorRecord("me", HOSTNAME, os.getpid(), None, now, now))
        for i in range(20):
            record = WorkflowRecord(f"w{i}", "m:f", PENDING, "{}", None, None, "me", now, now)
            store.create_workflow(record)
        sql, ops, schema = store._sql, store._ops, store.schema
        step = (1, "s1", SUCCEEDED, "1", None, 1, now, now, "0a1b2c3d", "w3", "me")
        claim = {"workflow_id": "w3", "me": "me", "version": None, "dead": [], "host": "h",
                 "lease": 30.0, "now": now, "pending": PENDING}  # fmt: skip
        statements = [
            (sql.insert_step, step),
            (sql.upsert_step, step),
            (sql.upsert_owned_step, step),
            (sql.owned_status, ("w3", "me")),
            (sql.finish, (SUCCEEDED, "1", None, now, "w3", "me", schema)),
            (sql.claim, claim),
            (ops.cancel, (CANCELLED, "{}", now, "w3", PENDING, *QUEUED_STATUSES, schema)),
        ]
        with admin(postgres_server) as conn:
            literal = psycopg.ClientCursor(conn)
            for statement, params in statements:
                plan = "\n".join(
                    row[0] for row in conn.execute("EXPLAIN " + literal.mogrify(statement, params))
                )
                indexes = set(re.findall(r"Index (?:Only )?Scan using (\w*workflows\w*)", plan))
                assert indexes == {"workflows_pkey"}, (statement, plan)
    finally:
        store.close()


# -- the fence: a step write in flight while another executor claims ------------------------

DEAD_PID = 2**22 + 12345  # above the default pid_max: no such process


def waiting_for_a_lock(conn: psycopg.Connection, query_like: str) -> bool:
    """Whether a statement whose text is LIKE `query_like` waits for a lock at the server."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
        (query_like,),
    ).fetchone()
    return bool(row and row[0])


@contextlib.contextmanager
def step_write_held(
    server, url: str, store, workflow_id: str, executor_id: str
) -> Iterator[tuple[psycopg.Connection, dict[str, object]]]:
    """`store` writes step 2 of `workflow_id` (step 1 is written first) in a thread, and
    the write is held at the server, the workflow row already locked by its fence: a
    transaction of the test inserted the same step first. Yields a connection to watch
    the server with and the outcome (``"write"``: the status returned, or the
    OwnershipLost raised); on leaving, the test's transaction rolls back and the
    writer is joined."""
    schema = schema_of(url)
    now = time.time()
    first = StepRecord(1, "s1", SUCCEEDED, "1", None, 1, now, now)
    store.record_step(workflow_id, executor_id, first)
    blocker, watcher = admin(server), admin(server)
    outcome: dict[str, object] = {}

    def write() -> None:
        step = StepRecord(2, "s2", SUCCEEDED, "2", None, 1, now, now)
        try:
            outcome["write"] = store.record_step(workflow_id, executor_id, step)
        except OwnershipLost as exc:
            outcome["write"] = exc

    writer = threading.Thread(target=write)
    try:
        blocker.execute("BEGIN")
        blocker.execute(
            f'INSERT INTO "{schema}".steps (workflow_id, position, name, status, attempts, '
            "started_at) VALUES (%s, 2, 's2', 'succeeded', 1, 0)",
            (workflow_id,),
        )
        writer.start()
        wait_until(lambda: waiting_for_a_lock(watcher, f'INSERT INTO "{schema}".steps%'))
        yield watcher, outcome
    finally:
        blocker.execute("ROLLBACK")
        if writer.ident is not None:  # started
            writer.join(timeout=30)
        blocker.close()
        watcher.close()


def test_a_step_write_in_flight_during_a_claim_is_in_its_history_or_refused(
    postgres_server, postgres_url
):
    """The old owner's write of step 2 has read the workflow row and waits at the server
    when another executor claims the workflow; then the hold is released. The write
    either lands and is in the history the claim returned, or is refused."""
    schema = schema_of(postgres_url)
    old, new = open_store(postgres_url), open_store(postgres_url)
    try:
        now = time.time()
        old.register_executor(ExecutorRecord("old", HOSTNAME, DEAD_PID, None, now, now))
        new.register_executor(ExecutorRecord("new", HOSTNAME, os.getpid(), None, now, now))
        old.create_workflow(WorkflowRecord("w", "m:f", PENDING, "{}", None, None, "old", now, now))
        with step_write_held(postgres_server, postgres_url, old, "w", "old") as (watcher, outcome):
            claimer = threading.Thread(
                target=lambda: outcome.update(
                    claim=new.claim_workflow("w", Lease("new", 30.0, HOSTNAME))
                )
            )
            claimer.start()
            claiming = f'WITH seen AS%"{schema}".workflows%'  # it waits for the fenced write
            wait_until(lambda: not claimer.is_alive() or waiting_for_a_lock(watcher, claiming))
        claimer.join(timeout=30)
        history = [s.position for s in new.list_steps("w")]
    finally:
        old.close()
        new.close()
    claimed = outcome["claim"]
    assert claimed.claimed and claimed.workflow.executor_id == "new"
    if outcome["write"] == PENDING:
        assert [s.position for s in claimed.steps] == [1, 2]
    else:
        assert isinstance(outcome["write"], OwnershipLost)
        assert [s.position for s in claimed.steps] == [1]
    assert history == [s.position for s in claimed.steps]


def test_deleting_a_workflow_during_a_step_write_leaves_no_step_behind(
    postgres_server, postgres_url
):
    """A step write holds the workflow row and waits at the server while the workflow is
    deleted; once the write goes on, neither the workflow nor any of its steps is left."""
    schema = schema_of(postgres_url)
    store, deleter = open_store(postgres_url), open_store(postgres_url)
    try:
        now = time.time()
        store.register_executor(ExecutorRecord("me", HOSTNAME, os.getpid(), None, now, now))
        store.create_workflow(WorkflowRecord("d", "m:f", PENDING, "{}", None, None, "me", now, now))
        with step_write_held(postgres_server, postgres_url, store, "d", "me") as (watcher, outcome):
            remover = threading.Thread(
                target=lambda: outcome.update(deleted=deleter.delete_workflows(["d"]))
            )
            remover.start()
            deleting = f'DELETE FROM "{schema}".workflows%'
            wait_until(lambda: not remover.is_alive() or waiting_for_a_lock(watcher, deleting))
        remover.join(timeout=30)
        with admin(postgres_server) as conn:
            left = conn.execute(
                f"SELECT count(*) FROM \"{schema}\".steps WHERE workflow_id = 'd'"
            ).fetchone()[0]
        found = store.get_workflow("d")
    finally:
        store.close()
        deleter.close()
    assert outcome["deleted"] == 1 and found is None
    assert left == 0  # not even the step whose write was in flight
