"""The SQLite store: schema, settings, and bad databases refused without damage.

What every store promises is tested on SQLite and PostgreSQL alike in
test_store_conformance.py; this file holds what only SQLite has.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import autodurable
from autodurable._core._executor import HOSTNAME, process_started
from autodurable._store import PENDING, ExecutorRecord, WorkflowRecord, open_store
from autodurable._store._migrations import load_migrations
from autodurable._store._sqlite import SQLiteStore

from ..helpers import child_env, write_script


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@autodurable.workflow
def tiny():
    return "ok"


def executor(executor_id: str, pid: int | None = None, host: str = HOSTNAME, beat=None):
    pid = pid or os.getpid()
    now = time.time()
    return ExecutorRecord(executor_id, host, pid, process_started(pid), now, beat or now)


def workflow(workflow_id: str, owner: str | None) -> WorkflowRecord:
    now = time.time()
    return WorkflowRecord(workflow_id, "m:f", PENDING, "{}", None, None, owner, now, now)


def test_fresh_database_uses_wal_and_latest_schema(tmp_path):
    store = SQLiteStore(url(tmp_path / "s.db"))
    store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(load_migrations("sqlite"))
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"workflows", "steps", "executors"} <= tables
    SQLiteStore(url(tmp_path / "s.db")).close()  # reopening migrates nothing again


def test_synchronous_full_is_applied(tmp_path):
    store = SQLiteStore(url(tmp_path / "s.db") + "?synchronous=full")
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    store.close()


def test_newer_schema_is_refused_and_file_unchanged(tmp_path):
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE workflows (x)")
        conn.execute("PRAGMA user_version = 999")
    before = digest(path)
    with pytest.raises(autodurable.StoreError, match=r"schema version 999.*Upgrade autodurable"):
        open_store(url(path))
    assert digest(path) == before
    assert not Path(str(path) + "-wal").exists()


def test_foreign_sqlite_database_is_refused_and_unchanged(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    before = digest(path)
    with pytest.raises(autodurable.StoreError, match=r"another application.*customers"):
        open_store(url(path))
    assert digest(path) == before


def test_corrupt_file_is_refused_and_unchanged(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database at all" * 100)
    before = digest(path)
    autodurable.configure(database_url=url(path))
    with pytest.raises(autodurable.StoreError, match="not a valid SQLite database"):
        tiny()
    assert digest(path) == before


READ_ONLY_CHILD = """
import os, sys
import autodurable

ran = []

@autodurable.workflow
def guarded():
    ran.append(1)

assert not os.access(sys.argv[1], os.W_OK), "the folder must not be writable for this test"
autodurable.configure(database_url=f"sqlite:///{sys.argv[1]}/sub/state.db")
try:
    guarded()
except autodurable.StoreError as exc:
    print("StoreError:", exc)
print("ran:", len(ran))
"""


def test_read_only_folder_gives_clear_error_and_runs_nothing(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    script = write_script(tmp_path, "guarded.py", READ_ONLY_CHILD)
    command = [sys.executable, str(script), str(folder)]
    if os.geteuid() == 0:
        # Root writes anywhere; without the DAC override capabilities it cannot.
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
        command += [sys.executable, str(script), str(folder)]
    try:
        done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=60)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert "StoreError: cannot create the folder" in done.stdout
    assert "writable" in done.stdout
    assert "ran: 0" in done.stdout


def test_read_only_database_file_gives_clear_error(tmp_path, monkeypatch):
    """Root can write anywhere, so read-only is simulated by SQLite's own read-only mode."""
    path = tmp_path / "state.db"
    SQLiteStore(url(path)).close()
    store = SQLiteStore(url(path))
    store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(autodurable.StoreError, match="cannot start a workflow in"):
        store.create_workflow(workflow("w", None))
    store.close()


def test_a_schema_1_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    first = load_migrations("sqlite")[0][1]
    with sqlite3.connect(path) as conn:
        conn.executescript(first)
        conn.execute("INSERT INTO steps VALUES ('w', 1, 's', 'succeeded', '1', NULL, 1, 1.0, 2.0)")
        conn.execute("PRAGMA user_version = 1")
    store = SQLiteStore(url(path))
    try:
        (step,) = store.list_steps("w")
        assert (step.position, step.output, step.executor_id) == (1, "1", None)
        latest = len(load_migrations("sqlite"))
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == latest
    finally:
        store.close()
