"""Workflows the dashboard's tests record: they finish, fail, wait, or wait for a gate."""

from __future__ import annotations

import threading
from typing import Any

import autodurable

gate = threading.Event()  # `gated` waits for it between its steps
started = threading.Event()  # set when `gated` reaches the gate


@autodurable.step
def add(a: int, b: int) -> dict[str, Any]:
    return {"sum": a + b, "password": "hunter2"}


tries: list[int] = []  # attempts of `flaky` (cleared by the tests)


@autodurable.step(retries={"max_attempts": 3, "initial_interval": 0.001})
def flaky() -> int:
    tries.append(1)
    if len(tries) < 2:
        raise ConnectionError("try again")
    return len(tries)


@autodurable.workflow
def greet(x: int, note: str) -> dict[str, Any]:
    add(x, 1)
    add(x, 2)
    autodurable.sleep(0.01)
    return add(x, 3)


@autodurable.workflow
def breaks(x: int) -> None:
    add(x, 1)
    raise ValueError("boom <b>bold</b>")


@autodurable.workflow
def waits(x: int) -> Any:
    add(x, 1)
    add(x, 2)
    return autodurable.recv("go", timeout=60)


@autodurable.step
def wait_for_gate() -> str:
    started.set()
    gate.wait(30)
    return "opened"


@autodurable.workflow
def gated(x: int) -> dict[str, Any]:
    add(x, 1)
    wait_for_gate()
    return add(x, 2)


@autodurable.workflow
def retrying() -> int:
    return flaky()


def run(fn: Any, workflow_id: str, *args: Any) -> Any:
    """Run `fn` as workflow `workflow_id`; its exception is returned, not raised."""
    try:
        return autodurable.options(fn, workflow_id=workflow_id)(*args)
    except (Exception, autodurable.WorkflowCancelled) as exc:
        return exc


def in_thread(fn: Any, workflow_id: str, *args: Any) -> threading.Thread:
    """Start `run(fn, workflow_id, *args)` on a daemon thread."""
    thread = threading.Thread(target=run, args=(fn, workflow_id, *args), daemon=True)
    thread.start()
    return thread
