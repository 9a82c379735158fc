"""The PostgreSQL store: URL options, its schema, errors that say what to do, and cost.

What every store promises is tested on both backends in
test_store_conformance.py; this file holds what only PostgreSQL has. The cost
tests count statements on the server with pg_stat_statements: one statement
per step (no BEGIN, COMMIT or ping around it), and the history of a resumed
workflow in one query.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest

import autodurable
from autodurable._errors import ConfigError, StoreError
from autodurable._store import check_url, open_store
from autodurable._store._migrations import load_migrations
from autodurable._store._postgres import parse_postgres_url

from .conftest import child_env


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
        raise Interrupt
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
        with pytest.raises(Interrupt):
            autodurable.options(counting, workflow_id="w-resumed")(10)
        interrupt["after"] = None
        conn.execute("SELECT pg_stat_statements_reset()")
        assert autodurable.options(counting, workflow_id="w-resumed")(10) == sum(range(1, 11))
        seen = statements(conn, schema)
        history = {q: n for q, n in seen.items() if f'FROM "{schema}".steps' in q}
        assert list(history.values()) == [1], seen  # the whole history in one query
        assert not any(q.startswith(f'INSERT INTO "{schema}".steps') for q in seen), seen
