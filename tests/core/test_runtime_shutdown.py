"""Shutting the runtime down while background workflows wait: nothing hangs, nothing is lost.

A shutdown that waits for its workers (the end of each test, the end of the
process) tells waiting workflows to stop and waits for them. A workflow
stopped in `recv` or `sleep` releases itself as it ends, which takes the
runtime's lock: the shutdown must not hold that lock while it waits.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import autodurable
from autodurable._core._runtime import _reset_overrides_for_tests
from autodurable._store import PENDING, open_store

from ..helpers import child_env


@autodurable.workflow
def waits_for_a_message() -> object:
    return autodurable.recv("never", timeout=3600)


@autodurable.workflow
def sleeps_long() -> str:
    autodurable.sleep(3600)
    return "woke"


@pytest.mark.parametrize("body", [waits_for_a_message, sleeps_long])
def test_a_waiting_shutdown_stops_waiting_workflows_without_hanging(database, body):
    autodurable.start(autodurable.options(body, workflow_id="waiter"))
    store = open_store(database)
    deadline = time.monotonic() + 10
    while not store.list_steps("waiter") and time.monotonic() < deadline:
        time.sleep(0.02)  # the wait has begun: its first step (the deadline) is recorded
    assert store.list_steps("waiter"), "the workflow never started waiting"
    done = threading.Event()

    def shut_down() -> None:
        _reset_overrides_for_tests()  # shutdown(wait=True), as at the end of a test
        done.set()

    threading.Thread(target=shut_down, daemon=True).start()
    assert done.wait(20), "the shutdown hung while a background workflow was waiting"
    record = store.get_workflow("waiter")
    assert record is not None and record.status == PENDING  # left to resume, not failed
    assert record.executor_id is None  # released by its executor as it stopped
    store.close()


POOL_IMPORTED_LATE = """
import sys
import time

import autodurable
from autodurable._core._runtime import get_runtime

@autodurable.workflow
def first():
    return 1

@autodurable.workflow
def waits():
    return autodurable.recv("never", timeout=3600)

first()  # the runtime is loaded, before any thread pool module
assert "concurrent.futures.thread" not in sys.modules
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor(1)
pool.submit(autodurable.options(waits, workflow_id="pool-waiter"))
deadline = time.monotonic() + 10
while not get_runtime().store.list_steps("pool-waiter"):
    assert time.monotonic() < deadline, "never waited"
    time.sleep(0.02)
print("exiting", flush=True)
"""


def test_a_process_exits_while_a_pool_imported_after_the_runtime_runs_a_waiting_workflow(
    database: str, tmp_path
) -> None:
    # Thread pools join their workers at exit, in a hook registered when their module
    # is imported; the runtime's hook that stops waiting workflows must run first even
    # when that module is imported after the runtime (it is no longer imported by it).
    script = tmp_path / "late_pool.py"
    script.write_text(POOL_IMPORTED_LATE)
    done = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(AUTODURABLE_DATABASE_URL=database),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exiting"
    store = open_store(database)
    record = store.get_workflow("pool-waiter")
    assert record is not None and record.status == PENDING and record.executor_id is None
    store.close()
