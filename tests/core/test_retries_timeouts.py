"""Retries, timeouts and per-call options in one process (crashes: tests/core/test_crash.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pytest

import autodurable
from autodurable._store import FAILED, SUCCEEDED

from ..helpers import run_workflow

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

FAST = autodurable.Retry(max_attempts=4, initial_interval=0.001, backoff=1.0, jitter=0)
attempts: Counter[str] = Counter()
keys: list[str] = []


@pytest.fixture(autouse=True)
def _reset():
    attempts.clear()
    keys.clear()


@autodurable.step(retries=FAST)
def flaky(failures, error=ConnectionError):
    attempts["flaky"] += 1
    keys.append(autodurable.idempotency_key())
    if attempts["flaky"] <= failures:
        raise error(f"attempt {attempts['flaky']}")
    return attempts["flaky"]


@autodurable.workflow
def call_flaky(failures, error=ConnectionError):
    return flaky(failures, error)


def test_retries_until_success_with_stable_key(store):
    assert run_workflow(call_flaky, "r", 2) == 3
    (step,) = store.list_steps("r")
    assert (step.status, step.attempts) == (SUCCEEDED, 3)
    assert keys == ["r:1", "r:1", "r:1"]


def test_gives_up_after_max_attempts_and_records_last_error(store):
    with pytest.raises(ConnectionError, match="attempt 4"):
        run_workflow(call_flaky, "x", 10)
    (step,) = store.list_steps("x")
    assert (step.status, step.attempts) == (FAILED, 4)
    assert attempts["flaky"] == 4


def test_non_retryable_type_fails_at_once():
    policy = FAST.replace(non_retryable=(PermissionError,))
    with pytest.raises(PermissionError, match=r"^attempt 1$"):
        autodurable.options(call_flaky, workflow_id="n", retries=policy)(5, PermissionError)
    assert attempts["flaky"] == 1


def test_retry_predicate_decides():
    policy = FAST.replace(retry_if=lambda exc: "attempt 1" in str(exc))
    with pytest.raises(ConnectionError, match="attempt 2"):
        autodurable.options(call_flaky, workflow_id="p", retries=policy)(5)
    assert attempts["flaky"] == 2


def test_per_call_options_override_decorator_options():
    with pytest.raises(ConnectionError, match=r"^attempt 1$"):
        autodurable.options(call_flaky, workflow_id="o", retries=0)(5)
    assert attempts["flaky"] == 1
    attempts.clear()
    with autodurable.options(retries=autodurable.Retry(max_attempts=6, initial_interval=0)):
        assert run_workflow(call_flaky, "o2", 5) == 6


def test_wrapper_form_on_a_step_inside_a_workflow(store):
    @autodurable.workflow
    def caller():
        return autodurable.options(flaky, retries=0, name="charge")(0)

    assert autodurable.options(caller, workflow_id="w")() == 1
    assert [s.name for s in store.list_steps("w")] == ["charge"]


def test_backoff_waits_between_attempts():
    policy = autodurable.Retry(max_attempts=3, initial_interval=0.05, backoff=2, jitter=0)
    started = time.monotonic()
    assert autodurable.options(call_flaky, workflow_id="b", retries=policy)(2) == 3
    assert time.monotonic() - started >= 0.05 + 0.1


def test_steps_outside_workflows_retry_but_record_nothing(store):
    with pytest.raises(autodurable.AutodurableError, match=r"idempotency_key\(\) is defined only"):
        flaky(1)  # idempotency_key() has no workflow here
    assert store.list_workflows() == []


release = threading.Event()
events: list[str] = []


@autodurable.step(timeout=0.1, retries=autodurable.Retry(max_attempts=2, initial_interval=0))
def hangs_first_time():
    attempts["hang"] += 1
    attempt = attempts["hang"]
    keys.append(autodurable.idempotency_key())
    events.append(f"start {attempt}")
    if attempt == 1:
        time.sleep(0.5)  # abandoned after the timeout; it still ends, later
        events.append("end 1")
        return "late"
    return "second attempt"


@autodurable.workflow
def call_hangs():
    return hangs_first_time()


def test_sync_timeout_abandons_attempt_and_retries_with_same_key(store):
    events.clear()
    assert run_workflow(call_hangs, "t") == "second attempt"
    (step,) = store.list_steps("t")
    assert (step.status, step.attempts) == (SUCCEEDED, 2)
    assert keys == ["t:1", "t:1"]
    # The retry waited for the abandoned attempt: the two never ran at once.
    assert events == ["start 1", "end 1", "start 2"]


def test_overlap_lets_the_retry_start_while_the_abandoned_attempt_runs(store):
    events.clear()
    with autodurable.options(overlap=True):
        assert run_workflow(call_hangs, "t-overlap") == "second attempt"
    assert events == ["start 1", "start 2"]  # the first is still sleeping
    deadline = time.monotonic() + 5
    while "end 1" not in events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events == ["start 1", "start 2", "end 1"]  # and its result is not recorded
    (step,) = store.list_steps("t-overlap")
    assert (step.status, step.attempts) == (SUCCEEDED, 2)


@autodurable.step(timeout=0.1)
def always_hangs():
    release.wait(10)


@autodurable.workflow
def call_always_hangs():
    always_hangs()


def test_sync_timeout_without_retries_fails_with_step_timeout(store):
    release.clear()
    try:
        with pytest.raises(autodurable.StepTimeoutError, match=r"timeout of 0\.1s"):
            run_workflow(call_always_hangs, "t2")
    finally:
        release.set()
    assert store.get_workflow("t2").status == FAILED


cancelled = []


@autodurable.step(timeout=0.05)
async def slow_async():
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise


@autodurable.workflow
async def call_slow_async():
    try:
        await slow_async()
    except autodurable.StepTimeoutError as exc:
        return str(exc)


def test_async_timeout_cancels_the_step():
    cancelled.clear()
    message = asyncio.run(autodurable.options(call_slow_async, workflow_id="a")())
    assert "slow_async" in message
    assert cancelled == [True]


def test_defaults_from_configure_apply_to_steps():
    autodurable.configure(steps={"retries": {"max_attempts": 3, "initial_interval": 0}})

    @autodurable.step
    def plain_flaky():
        attempts["plain"] += 1
        raise ConnectionError(f"plain attempt {attempts['plain']}")

    @autodurable.workflow
    def wf():
        plain_flaky()

    with pytest.raises(ConnectionError, match=r"^plain attempt 3$"):  # the last attempt's
        wf()
    assert attempts["plain"] == 3
