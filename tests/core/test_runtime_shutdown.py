"""Shutting the runtime down while background workflows wait: nothing hangs, nothing is lost.

A shutdown that waits for its workers (the end of each test, the end of the
process) tells waiting workflows to stop and waits for them. A workflow
stopped in `recv` or `sleep` releases itself as it ends, which takes the
runtime's lock: the shutdown must not hold that lock while it waits.
"""

from __future__ import annotations

import threading
import time

import pytest

import autodurable
from autodurable._core._runtime import _reset_overrides_for_tests
from autodurable._store import PENDING, open_store


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
