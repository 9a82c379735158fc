"""The SQLite store: schema, ownership, and bad databases refused without damage."""

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
from autodurable._executor import HOSTNAME, is_alive, process_started
from autodurable._store import PENDING, ExecutorRecord, StepRecord, WorkflowRecord, open_store
from autodurable._store._migrations import load_migrations
from autodurable._store._sqlite import SQLiteStore

from .conftest import child_env, write_script


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


def test_claim_is_exclusive_between_live_executors(tmp_path):
    a = SQLiteStore(url(tmp_path / "s.db"))
    b = SQLiteStore(url(tmp_path / "s.db"))
    a.register_executor(executor("exec-a"))
    b.register_executor(executor("exec-b"))
    assert a.create_workflow(workflow("w", "exec-a"))
    assert not b.create_workflow(workflow("w", "exec-b"))
    claim = b.claim_workflow("w", "exec-b", lambda e: is_alive(e, 30))
    assert not claim.claimed and claim.owner.executor_id == "exec-a"
    assert b.get_workflow("w").executor_id == "exec-a"


def test_dead_executor_workflows_are_adopted_with_history(tmp_path):
    store = SQLiteStore(url(tmp_path / "s.db"))
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    store.register_executor(executor("dead", pid=dead_pid))
    store.create_workflow(workflow("w", "dead"))
    step = StepRecord(1, "s", "succeeded", "1", None, 1, 1.0, 2.0)
    store.record_step("w", "dead", step)
    store.register_executor(executor("me"))
    claim = store.claim_workflow("w", "me", lambda e: is_alive(e, 30))
    assert claim.claimed and claim.steps == [step]
    with pytest.raises(autodurable._errors.OwnershipLost):
        store.record_step("w", "dead", step)  # the old owner is fenced out


def test_liveness_across_hosts_is_a_lease():
    fresh = executor("x", host="other-host")
    stale = executor("y", host="other-host", beat=time.time() - 60)
    assert is_alive(fresh, 30) and not is_alive(stale, 30)
    assert is_alive(executor("self"), 30)


def test_retire_releases_unfinished_workflows(tmp_path):
    store = SQLiteStore(url(tmp_path / "s.db"))
    store.register_executor(executor("gone"))
    store.create_workflow(workflow("w", "gone"))
    store.retire_executor("gone")
    assert store.get_workflow("w").executor_id is None
    assert store.unfinished_workflows()[0][1] is None
