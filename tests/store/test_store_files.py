"""Files and schemas autodurable did not write, or that were damaged, are refused unchanged.

A state file cut short or damaged, an SQLite database of another application
(whatever its ``user_version``), a PostgreSQL schema holding another tool's
tables: each is refused at open with a StoreError that names it, says what is
wrong and what to do, and nothing in it is changed (the bytes are compared).
A full disk is named as such, with what to try.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from autodurable._errors import StoreError
from autodurable._store import PENDING, WorkflowRecord, open_store
from autodurable._store._migrations import load_migrations
from autodurable._store._sqlite import SQLiteStore

from ..helpers import sqlite_at_schema

LATEST = len(load_migrations("sqlite"))


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def workflow(workflow_id: str, inputs: str = "{}") -> WorkflowRecord:
    now = time.time()
    return WorkflowRecord(workflow_id, "m:f", PENDING, inputs, None, None, None, now, now)


def state_file(path: Path, workflows: int = 200) -> None:
    """A closed state file of several pages (checkpointed: no -wal file left)."""
    store = SQLiteStore(url(path))
    for number in range(workflows):
        store.create_workflow(workflow(f"w{number}", '{"args": ["' + "x" * 200 + '"]}'))
    store.close()
    assert not Path(f"{path}-wal").exists()


def assert_refused_unchanged(path: Path, pattern: str) -> StoreError:
    before = digest(path)
    with pytest.raises(StoreError, match=pattern) as caught:
        open_store(url(path))
    assert str(path) in str(caught.value)
    assert digest(path) == before
    wal = Path(f"{path}-wal")  # a WAL-mode file's reader may leave an empty log
    assert not wal.exists() or wal.stat().st_size == 0
    return caught.value


# -- truncated and damaged files ------------------------------------------------


def test_a_file_cut_mid_page_is_refused_as_truncated_and_left_unchanged(tmp_path):
    path = tmp_path / "state.db"
    state_file(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])  # the last page cut in the middle
    error = assert_refused_unchanged(path, r"is truncated: its size .* not a whole number")
    assert "Restore the file from a copy" in str(error)
    assert "move it and its -wal and -shm files away" in str(error)


def test_a_file_cut_at_a_page_boundary_is_refused_by_its_header_page_count(tmp_path):
    path = tmp_path / "state.db"
    state_file(path)
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2 * page_size])
    assert_refused_unchanged(path, r"is truncated: its header counts \d+ pages")


def test_a_damaged_page_is_refused_by_the_quick_check(tmp_path):
    path = tmp_path / "state.db"
    state_file(path)
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    data = bytearray(path.read_bytes())
    # Garbage over the cell area of a table page with rows, from the middle of the
    # file on (its header kept whole): an empty page would have nothing to check.
    middle = next(
        number * page_size
        for number in range(pages // 2, pages)
        if data[number * page_size] == 13  # a table leaf
        and int.from_bytes(data[number * page_size + 3 : number * page_size + 5], "big") > 0
    )
    data[middle + 200 : middle + page_size] = b"\xff" * (page_size - 200)
    path.write_bytes(bytes(data))
    error = assert_refused_unchanged(path, r"is damaged")
    assert "Restore the file from a copy" in str(error)


def test_a_new_empty_file_is_a_new_state_database(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    store = open_store(url(path))
    try:
        assert store.create_workflow(workflow("w"))
    finally:
        store.close()


# -- SQLite databases of other applications -----------------------------------


@pytest.mark.parametrize("user_version", [0, 1, 2, 3, LATEST, LATEST + 2, 4242])
def test_a_foreign_sqlite_database_is_refused_before_anything_is_written(tmp_path, user_version):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
        conn.execute(f"PRAGMA user_version = {user_version}")
    error = assert_refused_unchanged(path, "not an autodurable state database")
    assert "customers" in str(error)
    assert "Point database_url at a new file" in str(error)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_foreign_table_named_like_ours_is_recognised_by_its_columns(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        for name in ("executors", "workflows", "steps"):
            conn.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, payload TEXT)")
        conn.execute("PRAGMA user_version = 2")
    assert_refused_unchanged(path, r"not an autodurable.*tables executors, steps, workflows differ")


def test_our_databases_of_every_schema_version_are_still_migrated(tmp_path):
    for version in range(1, LATEST + 1):
        path = tmp_path / f"v{version}.db"
        with sqlite_at_schema(path, version):
            pass
        open_store(url(path)).close()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST


# -- a full disk ----------------------------------------------------------------


def test_a_full_disk_names_the_cause_and_what_to_try(tmp_path):
    path = tmp_path / "state.db"
    store = SQLiteStore(url(path))
    try:
        store.create_workflow(workflow("kept"))
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreError) as caught:
            for number in range(1000):
                store.create_workflow(workflow(f"w{number}", '{"args": ["' + "x" * 3000 + '"]}'))
        message = str(caught.value)
        assert str(path) in message
        assert "database or disk is full" in message
        assert "Free space on that disk" in message
        assert "move the database" in message
        assert store.get_workflow("kept") is not None
    finally:
        store.close()


# -- PostgreSQL schemas of other tools ----------------------------------------


def _tables(conninfo: str, schema: str) -> list[tuple[str, ...]]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,)
        ).fetchall()


def _setup(url_: str, *statements: str) -> tuple[str, str]:
    import psycopg

    from autodurable._store._postgres import parse_postgres_url

    parsed = parse_postgres_url(url_)
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{parsed.schema}"')
        conn.execute(f'SET search_path TO "{parsed.schema}"')
        for statement in statements:
            conn.execute(statement)
    return parsed.conninfo, parsed.schema


def test_a_postgres_schema_with_another_tools_schema_version_is_named_foreign(postgres_url):
    conninfo, schema = _setup(
        postgres_url,
        # A migration tool's own history table, of the same name as ours.
        "CREATE TABLE schema_version (installed_rank INTEGER PRIMARY KEY, version VARCHAR(50), "
        "description TEXT, success BOOLEAN NOT NULL)",
        "INSERT INTO schema_version VALUES (1, '1', 'init', true)",
        "CREATE TABLE users (id INTEGER PRIMARY KEY)",
    )
    before = _tables(conninfo, schema)
    with pytest.raises(StoreError, match=r"not an autodurable schema.*another tool's") as caught:
        open_store(postgres_url)
    assert schema in str(caught.value)
    assert "?schema=NAME" in str(caught.value)
    assert "does not exist" not in str(caught.value)
    assert _tables(conninfo, schema) == before


def test_a_postgres_schema_whose_version_table_is_ours_but_tables_not_is_foreign(postgres_url):
    conninfo, schema = _setup(
        postgres_url,
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        "INSERT INTO schema_version (version) VALUES (1)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY)",
    )
    before = _tables(conninfo, schema)
    with pytest.raises(StoreError, match=r"not an autodurable schema.*lacks the tables") as caught:
        open_store(postgres_url)
    assert "executors, steps, workflows" in str(caught.value)
    assert _tables(conninfo, schema) == before


def test_a_postgres_schema_of_ours_at_every_version_is_still_migrated(postgres_url):
    migrations = load_migrations("postgresql")
    conninfo, schema = _setup(postgres_url)
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(migrations[0][1])
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
    open_store(postgres_url).close()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        (version,) = conn.execute(f'SELECT max(version) FROM "{schema}".schema_version').fetchone()
    assert version == len(migrations)


def test_migrations_read_from_files_and_through_importlib_resources_agree(monkeypatch) -> None:
    # Installed as files, the migrations are read with plain file reads; from a zip
    # file, through importlib.resources. Both find the same numbered scripts.
    from autodurable._store import _migrations

    for dialect in ("sqlite", "postgresql"):
        from_files = sorted(_migrations._files(dialect))
        monkeypatch.setattr(_migrations.os.path, "isdir", lambda path: False)
        through_resources = sorted(
            (name, text) for name, text in _migrations._files(dialect) if name.endswith(".sql")
        )
        monkeypatch.undo()
        assert from_files == through_resources
        assert [name[:4] for name, _ in from_files] == [
            f"{n:04d}" for n in range(1, len(from_files) + 1)
        ]


def test_the_written_out_schema_is_what_the_migrations_create() -> None:
    # Opening a file at the latest version compares its tables with the written-out
    # ones: they must be exactly what running the migrations gives.
    from autodurable._store import _sqlite_schema
    from autodurable._store._sqlite_file import schema_at

    assert LATEST == _sqlite_schema.VERSION, "a migration was added: update _sqlite_schema.py"
    computed = schema_at(LATEST)
    assert computed == _sqlite_schema.TABLES, f"update _sqlite_schema.TABLES to {computed!r}"
