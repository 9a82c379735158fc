"""`configure()` while workflows run in the background: they keep the configuration
they started with and finish; the process still exits promptly."""

from __future__ import annotations

import subprocess
import sys
import time

import autodurable
from autodurable._store import PENDING, SUCCEEDED, open_store

from ..helpers import child_env

ran: list[int] = []


@autodurable.step
def slow(i: int) -> int:
    ran.append(i)
    time.sleep(0.1)
    return i


@autodurable.workflow
def job() -> list[int]:
    return [slow(i) for i in range(6)]


def test_a_running_workflow_finishes_on_its_store_after_configure(database, tmp_path):
    ran.clear()
    handle = autodurable.start(autodurable.options(job, workflow_id="mid"))
    store = open_store(database)
    deadline = time.monotonic() + 10
    while not store.list_steps("mid") and time.monotonic() < deadline:
        time.sleep(0.01)
    autodurable.configure(database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert handle.result(30) == [0, 1, 2, 3, 4, 5]
    record = store.get_workflow("mid")
    assert record is not None and record.status == SUCCEEDED
    assert [s.status for s in store.list_steps("mid")] == [SUCCEEDED] * 6
    assert ran == [0, 1, 2, 3, 4, 5]  # each step once
    store.close()


CHILD = """
import sys, time
import autodurable

@autodurable.workflow
def waits():
    return autodurable.recv("never", timeout=600)

autodurable.configure(database_url=sys.argv[1])
autodurable.start(autodurable.options(waits, workflow_id="waiting"))
time.sleep(0.5)
autodurable.configure(database_url=sys.argv[2])
print("exiting", flush=True)
"""


def test_the_process_still_exits_promptly_with_a_replaced_runtime_waiting(tmp_path, database_url):
    first, second = database_url, f"sqlite:///{tmp_path / 'b.db'}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, first, second],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exiting\n"
    assert time.monotonic() - started < 20  # not the recv's 600 s
    store = open_store(first)
    record = store.get_workflow("waiting")
    assert record is not None and record.status == PENDING  # left to resume
    store.close()
