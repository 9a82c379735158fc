"""Workflows on PostgreSQL: crash and resume, waiting on other processes, adoption.

Real processes share a real server (the session's throwaway one): a killed
process's workflow is resumed by running it again or adopted by a watching
executor, a caller waiting for a workflow that another process runs is woken
by NOTIFY (the polling fallback is switched off to prove it), and an async
caller waiting on a busy workflow takes it over when it is released.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import autodurable
from autodurable._core import _waiting
from autodurable._core._executor import HOSTNAME, process_started
from autodurable._core._runtime import get_runtime
from autodurable._store import PENDING, SUCCEEDED, ExecutorRecord, WorkflowRecord, open_store

from ..helpers import child_env, count_lines, run_python, wait_until, write_script

JOBS = """
import os, signal, sys, time
import autodurable

FOLDER = os.path.dirname(os.path.abspath(__file__))

def effect(line):
    fd = os.open(os.path.join(FOLDER, "effects"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)

@autodurable.step
def work(order, i):
    effect(f"{order}:{i}")
    if os.environ.get("CRASH_AT") == f"{order}:{i}":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(os.environ.get("STEP_SECONDS", "0")))
    return i * 10

@autodurable.workflow
def job(order, n):
    return sum(work(order, i) for i in range(1, n + 1))
"""

RUN = """
import os, sys
import autodurable, pg_jobs

autodurable.configure(database_url=os.environ["URL"], lease_seconds=2)
if os.environ.get("WATCH"):
    autodurable.recover(watch=True)
print(autodurable.options(pg_jobs.job, workflow_id=sys.argv[1])(sys.argv[1], int(sys.argv[2])))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_script(tmp_path, "pg_jobs.py", JOBS)
    write_script(tmp_path, "run.py", RUN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("pg_jobs", None)


def env(url: str, folder: Path, **extra: str) -> dict[str, str]:
    return child_env(
        URL=url, PYTHONPATH=f"{folder}{os.pathsep}{child_env()['PYTHONPATH']}", **extra
    )


def run(folder: Path, url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_python(folder / "run.py", *args, env=env(url, folder, **extra))


def effects(folder: Path) -> Counter[str]:
    return count_lines(folder / "effects")


def test_a_killed_run_resumes_where_it_stopped(project, postgres_url):
    killed = run(project, postgres_url, "order-1", "5", CRASH_AT="order-1:3")
    assert killed.returncode == -signal.SIGKILL
    resumed = run(project, postgres_url, "order-1", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["150"]
    expected = Counter({f"order-1:{i}": 1 for i in range(1, 6)})
    expected["order-1:3"] += 1  # interrupted by the kill before its result was recorded
    assert effects(project) == expected
    store = open_store(postgres_url)
    assert store.get_workflow("order-1").status == SUCCEEDED
    assert [s.attempts for s in store.list_steps("order-1")] == [1] * 5
    store.close()


def test_a_watching_executor_adopts_the_work_of_a_killed_one(project, postgres_url):
    """Same host: the dead process is noticed from the process table, no lease to wait for."""
    autodurable.configure(database_url=postgres_url, lease_seconds=2)
    import pg_jobs

    autodurable.recover(watch=True)
    killed = run(project, postgres_url, "order-2", "4", CRASH_AT="order-2:2")
    assert killed.returncode == -signal.SIGKILL
    assert autodurable.get_workflow("order-2").result(timeout=60) == 100
    assert pg_jobs.job.__name__ == "job"
    expected = Counter({f"order-2:{i}": 1 for i in range(1, 5)})
    expected["order-2:2"] += 1
    assert effects(project) == expected
    store = get_runtime().store
    adopter = get_runtime().executor.id
    assert [s.executor_id for s in store.list_steps("order-2")][1:] == [adopter] * 3


def test_a_caller_waiting_on_another_process_is_woken_by_notify(project, postgres_url, monkeypatch):
    monkeypatch.setattr(_waiting, "_NOTIFIED_POLL", 3600.0)  # no polling to fall back on
    autodurable.configure(database_url=postgres_url, lease_seconds=2)
    child = subprocess.Popen(
        [sys.executable, str(project / "run.py"), "order-3", "3"],
        cwd=project,
        env=env(postgres_url, project, STEP_SECONDS="0.3"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        store = get_runtime().store
        wait_until(lambda: store.get_workflow("order-3") is not None)
        assert autodurable.get_workflow("order-3").result(timeout=120) == 60
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_a_second_caller_waits_for_the_running_process_and_gets_its_result(project, postgres_url):
    autodurable.configure(database_url=postgres_url, lease_seconds=2)
    import pg_jobs

    child = subprocess.Popen(
        [sys.executable, str(project / "run.py"), "order-4", "3"],
        cwd=project,
        env=env(postgres_url, project, STEP_SECONDS="0.3"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        store = get_runtime().store
        wait_until(lambda: store.get_workflow("order-4") is not None)
        assert autodurable.options(pg_jobs.job, workflow_id="order-4")("order-4", 3) == 60
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert effects(project) == Counter({f"order-4:{i}": 1 for i in range(1, 4)})


ran_async: list[str] = []


@autodurable.workflow
async def async_job(name: str) -> str:
    ran_async.append(name)
    await asyncio.sleep(0)
    return name.upper()


def test_an_async_caller_takes_over_a_workflow_when_its_owner_releases_it(postgres_url):
    autodurable.configure(database_url=postgres_url, lease_seconds=2)
    other = open_store(postgres_url)
    now = time.time()
    pid = os.getpid()  # alive: the other executor is "running" in this very process
    other.register_executor(ExecutorRecord("other", HOSTNAME, pid, process_started(pid), now, now))
    inputs = '{"args":["x"],"kwargs":{}}'
    name = f"{__name__}:async_job"
    other.create_workflow(WorkflowRecord("busy", name, PENDING, inputs, None, None, "other",
                                         now, now))  # fmt: skip
    released = threading.Timer(0.5, other.release_workflow, ("busy", "other"))
    released.start()
    try:
        result = asyncio.run(autodurable.options(async_job, workflow_id="busy")("x"))
    finally:
        released.cancel()
        other.close()
    assert result == "X" and ran_async == ["x"]
    assert get_runtime().store.get_workflow("busy").status == SUCCEEDED
