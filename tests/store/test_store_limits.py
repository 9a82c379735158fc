"""Limits on APIs in the store, on every backend: what `LimitStore` promises
(autodurable/_store/_limiting.py) checked against real databases."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from autodurable._store import LimitSpec, PermitRequest, Store

from ..helpers import Backend, executor, lease, workflow


@pytest.fixture
def store(backend: Backend) -> Store:
    opened = backend.open()
    opened.register_executor(executor("me"))
    return opened


def request(
    permit: str, *limits: LimitSpec, owner: str = "me", workflow_id: str = "w", step: str = "1"
) -> PermitRequest:
    return PermitRequest(permit, owner, workflow_id, step, "ask", limits, waited=0.25)


def test_concurrency_counts_held_permits_until_they_are_returned(store):
    two = LimitSpec("openai.*", concurrency=2)
    assert store.take_permits(request("a", two), lease("me")).granted
    assert store.take_permits(request("b", two), lease("me")).granted
    refused = store.take_permits(request("c", two), lease("me"))
    assert not refused.granted and refused.retry_at is None  # it waits for a return
    store.return_permits("a")
    assert store.take_permits(request("c", two), lease("me")).granted
    assert not store.take_permits(request("d", two), lease("me")).granted
    # Other keys are other limits.
    assert store.take_permits(
        request("e", LimitSpec("stripe.*", concurrency=1)), lease("me")
    ).granted


def test_a_rate_counts_units_in_its_sliding_window_and_says_when_it_frees(store):
    rate = LimitSpec("openai.*", rate_count=3, rate_period=60.0)
    before = time.time()
    for permit in "abc":
        assert store.take_permits(request(permit, rate), lease("me")).granted
        store.return_permits(permit)  # returned or not, a taken permit counts in its window
    refused = store.take_permits(request("d", rate), lease("me"))
    assert not refused.granted
    assert refused.retry_at is not None and before + 60 <= refused.retry_at <= time.time() + 60
    # Units: a window of 10 tokens takes 4 + 4 and refuses 4 more.
    tokens = [LimitSpec("tokens", rate_count=10, rate_period=60.0, units=4.0)]
    assert store.take_permits(request("t1", *tokens), lease("me")).granted
    assert store.take_permits(request("t2", *tokens), lease("me")).granted
    assert not store.take_permits(request("t3", *tokens), lease("me")).granted
    # What alone exceeds the window passes when the window is empty, and only then.
    huge = LimitSpec("big", rate_count=10, rate_period=60.0, units=50.0)
    assert store.take_permits(request("h1", huge), lease("me")).granted
    assert not store.take_permits(request("h2", huge), lease("me")).granted


def test_a_window_frees_as_its_oldest_permit_leaves(store):
    rate = LimitSpec("fast", rate_count=2, rate_period=0.3)
    assert store.take_permits(request("a", rate), lease("me")).granted
    assert store.take_permits(request("b", rate), lease("me")).granted
    refused = store.take_permits(request("c", rate), lease("me"))
    assert not refused.granted and refused.retry_at is not None
    time.sleep(max(0.0, refused.retry_at - time.time()) + 0.01)
    assert store.take_permits(request("c", rate), lease("me")).granted


def test_all_or_nothing_a_full_limit_takes_no_permit_of_the_others(store):
    one = LimitSpec("stripe.*", concurrency=1)
    assert store.take_permits(request("a", one), lease("me")).granted
    both = (LimitSpec("openai.*", concurrency=1), one)
    assert not store.take_permits(request("b", *both), lease("me")).granted
    # openai.* was not taken by the refused request: its one permit is free.
    assert store.take_permits(
        request("c", LimitSpec("openai.*", concurrency=1)), lease("me")
    ).granted


def test_a_dead_executors_permits_stop_counting_but_stay_in_the_rate_window(store):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.register_executor(executor("dead", pid=gone.pid))
    limit = LimitSpec("openai.*", concurrency=1, rate_count=2, rate_period=60.0)
    assert store.take_permits(request("x", limit, owner="dead"), lease("dead")).granted
    # Seen from a live executor of the same host, the dead one's permit is free ...
    assert store.take_permits(request("y", limit), lease("me")).granted
    store.return_permits("y")
    # ... and the two calls it let through still fill the rate window.
    assert not store.take_permits(request("z", limit), lease("me")).granted
    # A permit whose executor row is gone (a clean exit retires it) is free too.
    store.register_executor(executor("retired"))
    two = LimitSpec("other", concurrency=1)
    assert store.take_permits(request("r", two, owner="retired"), lease("retired")).granted
    store.retire_executor("retired")
    assert store.take_permits(request("s", two), lease("me")).granted


def test_waits_are_kept_with_their_workflow_and_deleted_with_it(store):
    store.create_workflow(workflow("w", "me"))
    limits = (LimitSpec("openai.*", concurrency=5), LimitSpec("*", rate_count=9, rate_period=1.0))
    assert store.take_permits(request("a", *limits, step="3.1"), lease("me")).granted
    waits = store.limit_waits("w")
    assert sorted((w.key, w.step, w.step_name, w.waited) for w in waits) == [
        ("*", "3.1", "ask", 0.25),
        ("openai.*", "3.1", "ask", 0.25),
    ]
    assert store.delete_workflows(["w"]) == 1
    assert store.limit_waits("w") == []


def test_concurrent_takers_never_exceed_the_limit(store, backend):
    limit = LimitSpec("shared", concurrency=3)
    stores = [backend.open() for _ in range(6)]
    holding, peak, lock = [0], [0], threading.Lock()

    def taker(index: int, mine: Store) -> None:
        for n in range(15):
            permit = f"{index}-{n}"
            while not mine.take_permits(request(permit, limit), lease("me")).granted:
                time.sleep(0.002)
            with lock:
                holding[0] += 1
                peak[0] = max(peak[0], holding[0])
            time.sleep(0.003)
            with lock:
                holding[0] -= 1
            mine.return_permits(permit)

    threads = [threading.Thread(target=taker, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3  # reached, never exceeded
