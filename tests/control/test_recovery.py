"""`recover()`: resume what dead processes left, report what cannot be resumed."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter

import pytest

import autodurable
from autodurable._core._executor import HOSTNAME, process_started
from autodurable._store import PENDING, SUCCEEDED, ExecutorRecord, WorkflowRecord

from ..helpers import child_env, count_lines, run_python, write_script

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

JOBS = """
import os, signal
import autodurable

EFFECTS = "effects"  # in the working directory: the test's folder, in this process and the child

@autodurable.step
def work(order, i):
    with open(EFFECTS, "a") as fh:
        fh.write(f"{order}:{i}\\n")
    if os.environ.get("CRASH_AT") == f"{order}:{i}":
        os.kill(os.getpid(), signal.SIGKILL)
    return i

@autodurable.workflow
def job(order):
    return [work(order, i) for i in range(1, 4)]

@autodurable.workflow(name="nightly-report")
def report(day):
    return work(day, 1)
"""

START = """
import sys
import autodurable, jobs

for order in sys.argv[1:]:  # one after the other: "a" finishes before "b" starts
    autodurable.options(jobs.job, workflow_id=order)(order)
"""


@pytest.fixture
def jobs_module(tmp_path, monkeypatch):
    write_script(tmp_path, "jobs.py", JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("jobs", None)


def test_recover_resumes_workflows_of_a_killed_process(jobs_module, store, database):
    script = write_script(jobs_module, "start.py", START)
    env = child_env(
        CRASH_AT="b:2",
        PYTHONPATH=f"{jobs_module}{os.pathsep}{child_env()['PYTHONPATH']}",
        AUTODURABLE_DATABASE_URL=database,  # the child writes where this process reads
    )
    done = run_python(script, "a", "b", env=env)
    assert done.returncode == -signal.SIGKILL
    pending = {record.workflow_id for record, _ in store.unfinished_workflows()}
    assert pending == {"b"}
    _orphan(store, "c", "jobs:job", inputs='{"args":["c"],"kwargs":{}}')  # never started
    pending.add("c")

    report = autodurable.recover()
    assert {h.workflow_id for h in report.resumed} == pending
    assert report.unrecoverable == []
    outcomes = report.wait(timeout=30)
    assert all(outcomes[wid] == [1, 2, 3] for wid in pending)
    assert store.get_workflow("b").status == SUCCEEDED
    expected = Counter({f"{order}:{i}": 1 for order in "abc" for i in range(1, 4)})
    expected["b:2"] += 1  # interrupted by the kill before its result was recorded
    assert count_lines(jobs_module / "effects") == expected
    assert autodurable.recover().resumed == []  # nothing left to do


def _orphan(store, workflow_id, name, inputs='{"args":["x"],"kwargs":{}}', owner=None):
    now = time.time()
    store.create_workflow(
        WorkflowRecord(workflow_id, name, PENDING, inputs, None, None, owner, now, now)
    )


def test_unimportable_workflow_is_reported_and_left_pending(jobs_module, store, caplog):
    _orphan(store, "lost", "no_such_module:job")
    _orphan(store, "renamed", "jobs:not_there")
    _orphan(store, "undecorated", "os.path:join")
    _orphan(store, "bad-inputs", "jobs:job", inputs='{"~": "nonsense"}')
    report = autodurable.recover()
    reasons = {u.workflow_id: u.reason for u in report.unrecoverable}
    assert "no_such_module" in reasons["lost"] and "cannot be imported" in reasons["lost"]
    assert "not_there" in reasons["renamed"]
    assert "no longer decorated with @workflow" in reasons["undecorated"]
    assert "unknown tag" in reasons["bad-inputs"]
    assert report.resumed == []
    assert all(store.get_workflow(wid).status == PENDING for wid in reasons)
    assert "cannot resume workflow lost" in caplog.text
    assert "could not be resumed" in str(report) and "lost (no_such_module:job)" in str(report)


def test_workflows_of_live_executors_are_left_alone(jobs_module, store):
    live_pid = os.getppid()
    now = time.time()
    store.register_executor(
        ExecutorRecord("other", HOSTNAME, live_pid, process_started(live_pid), now, now)
    )
    _orphan(store, "busy", "jobs:job", owner="other")
    assert autodurable.recover().resumed == []
    assert store.get_workflow("busy").executor_id == "other"


def test_recover_finds_workflows_by_registered_name(jobs_module, store):
    import jobs  # registers "nightly-report"

    _orphan(store, "daily", "nightly-report", inputs='{"args":["mon"],"kwargs":{}}')
    report = autodurable.recover()
    assert report.wait(timeout=30) == {"daily": 1}
    assert jobs.report.__name__ == "report"
