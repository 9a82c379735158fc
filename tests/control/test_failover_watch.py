"""`recover(watch=True)` and executor heartbeats, on the embedded SQLite store.

The watcher adopts workflows that appear orphaned after it started, backs off
from workflows it cannot resume or that keep stopping on errors of ours, and
stops with its runtime. A heartbeat that cannot be written is logged, and the
log says when the lease has run out.
"""

from __future__ import annotations

import logging
import sys
import time

import pytest

import autodurable
from autodurable._core._executor import Executor
from autodurable._core._runtime import get_runtime
from autodurable._store import PENDING, WorkflowRecord, open_store

from ..helpers import write_script

MODULE = """
import autodurable

runs = []

@autodurable.step
def double(x):
    return 2 * x

@autodurable.workflow
def orphan_job(x):
    runs.append(x)
    return double(x)

@autodurable.workflow
def broken_job(x):
    runs.append(x)
    raise autodurable.ConfigError("a problem of ours, not of the workflow")
"""


@pytest.fixture
def watched(tmp_path, monkeypatch):
    write_script(tmp_path, "watched_jobs.py", MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    autodurable.configure(lease_seconds=0.4)  # the watcher looks every 0.1 s
    import watched_jobs

    yield watched_jobs
    sys.modules.pop("watched_jobs", None)


def orphan(workflow_id: str, name: str, x: int = 21) -> None:
    now = time.time()
    inputs = f'{{"args":[{x}],"kwargs":{{}}}}'
    get_runtime().store.create_workflow(
        WorkflowRecord(workflow_id, name, PENDING, inputs, None, None, None, now, now)
    )


def test_the_watcher_adopts_workflows_orphaned_after_it_started(watched):
    assert autodurable.recover(watch=True).resumed == []
    orphan("later", "watched_jobs:orphan_job")
    assert autodurable.get_workflow("later").result(timeout=30) == 42
    assert watched.runs == [21]


def test_the_watcher_backs_off_from_what_it_cannot_finish(watched, caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    orphan("broken", "watched_jobs:broken_job")
    orphan("lost", "no_such_module:job")
    report = autodurable.recover(watch=True)
    assert [u.workflow_id for u in report.unrecoverable] == ["lost"]
    time.sleep(1.5)  # fifteen looks of the watcher, if it did not back off
    # Backing off doubles the pause each time (0.4 s, 0.8 s ...): at most three tries.
    assert 1 <= len(watched.runs) <= 3, watched.runs
    lost = [r for r in caplog.records if "cannot resume workflow lost" in r.getMessage()]
    assert 1 <= len(lost) <= 3
    assert get_runtime().store.get_workflow("broken").status == PENDING


def test_the_watcher_stops_with_its_runtime(watched):
    autodurable.recover(watch=True)
    watcher = get_runtime().watcher
    assert watcher is not None and watcher._thread.is_alive()
    autodurable.configure(lease_seconds=30)
    assert not watcher._thread.is_alive()
    assert get_runtime().watcher is None


def test_a_failing_heartbeat_is_logged_and_the_lost_lease_announced(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    store = open_store(f"sqlite:///{tmp_path / 'beats.db'}")
    executor = Executor(store, lease_seconds=0.3)
    try:
        store._conn.execute("PRAGMA query_only = ON")  # every write fails from now on
        deadline = time.monotonic() + 30
        while "lease (0.3s) ran out" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
        assert "could not renew the executor lease" in caplog.text
        assert "other executors may adopt its workflows" in caplog.text
    finally:
        executor.stop(retire=False)
        store.close()
    executor._thread.join(timeout=5)
    assert not executor._thread.is_alive()


def test_an_executor_whose_row_was_deleted_registers_again(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    store = open_store(f"sqlite:///{tmp_path / 'beats.db'}")
    executor = Executor(store, lease_seconds=0.3)
    try:
        store._conn.execute("DELETE FROM executors")
        deadline = time.monotonic() + 30
        while not store._conn.execute("SELECT count(*) FROM executors").fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "registering again" in caplog.text
    finally:
        executor.stop(retire=True)
        store.close()
