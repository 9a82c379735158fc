"""Queues in the store, on every backend: what `QueueStore` promises
(autodurable/_store/_queueing.py) checked against real databases."""

from __future__ import annotations

import threading
import time

import pytest

from autodurable._store import (
    DELAYED,
    ENQUEUED,
    PENDING,
    SUCCEEDED,
    Placement,
    QueueSpec,
    ScheduleRecord,
    Store,
)

from ..helpers import Backend, executor, lease, workflow


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def taken(store: Store, spec: QueueSpec, executor_id: str, capacity: int) -> list[str]:
    """The ids a dequeue took."""
    return [r.workflow_id for r in store.dequeue_workflows(spec, executor_id, capacity).taken]


def enqueue(
    store: Store, workflow_id: str, queue: str = "q", at: float = 0.0, **place
) -> str | None:
    return store.enqueue_workflow(workflow(workflow_id, None, at=at), Placement(queue, **place))


def test_an_enqueued_workflow_waits_unowned_and_recovery_leaves_it_alone(store):
    store.register_executor(executor("me"))
    assert enqueue(store, "a") is None
    record = store.get_workflow("a")
    assert record.status == ENQUEUED and record.executor_id is None
    assert store.adoptable_workflows(lease("me"), 10) == []  # only a dequeue starts it
    assert enqueue(store, "a") == "a"  # the same id: nothing inserted
    assert enqueue(store, "b", available_at=time.time() + 60) is None
    assert store.get_workflow("b").status == DELAYED


def test_dedup_returns_the_waiting_or_running_holder_until_it_ends(store):
    store.register_executor(executor("me"))
    assert enqueue(store, "first", dedup_id="order-7") is None
    assert enqueue(store, "second", dedup_id="order-7") == "first"
    assert enqueue(store, "other-queue", queue="r", dedup_id="order-7") is None
    assert taken(store, QueueSpec("q"), "me", 10) == ["first"]
    assert enqueue(store, "third", dedup_id="order-7") == "first"  # running: still held
    store.finish_workflow("first", "me", SUCCEEDED, "1", None)
    assert enqueue(store, "fourth", dedup_id="order-7") is None  # ended: free again
    assert store.get_workflow("second") is None and store.get_workflow("third") is None


def test_dequeue_takes_by_priority_then_age_and_owns_what_it_takes(store):
    store.register_executor(executor("me"))
    now = time.time()
    enqueue(store, "old-low", at=now - 3, priority=5)
    enqueue(store, "new-high", at=now - 1, priority=1)
    enqueue(store, "old-high", at=now - 2, priority=1)
    enqueue(store, "later", at=now - 4, available_at=now + 60)
    assert taken(store, QueueSpec("q"), "me", 2) == ["old-high", "new-high"]
    first = store.get_workflow("old-high")
    assert first.status == PENDING and first.executor_id == "me"
    assert taken(store, QueueSpec("q"), "me", 10) == ["old-low"]
    assert taken(store, QueueSpec("q"), "me", 10) == []  # "later" is delayed
    stats = store.queue_stats("q")
    assert (stats.enqueued, stats.delayed, stats.running, stats.finished) == (0, 1, 3, 0)


def test_concurrency_worker_concurrency_and_rate_limits(store):
    for n in range(10):
        enqueue(store, f"w{n}", at=time.time() - 10 + n)
    limited = QueueSpec("q", concurrency=3, worker_concurrency=2)
    assert len(taken(store, limited, "a", 10)) == 2  # a's own limit
    assert len(taken(store, limited, "b", 10)) == 1  # the global limit
    assert taken(store, limited, "b", 10) == []
    store.finish_workflow("w0", "a", SUCCEEDED, "1", None)
    assert taken(store, limited, "b", 10) == ["w3"]
    rated = QueueSpec("q", rate_limit=5, rate_period=0.5)  # four started just now
    assert len(taken(store, rated, "c", 10)) == 1
    assert taken(store, rated, "c", 10) == []
    time.sleep(0.6)
    assert len(taken(store, rated, "c", 10)) == 5


def test_partitioned_limits_apply_per_key(store):
    for n in range(4):
        enqueue(store, f"t1-{n}", partition_key="tenant-1")
        enqueue(store, f"t2-{n}", partition_key="tenant-2")
    per_tenant = QueueSpec("q", concurrency=1, partitioned=True)
    got = taken(store, per_tenant, "me", 10)
    assert sorted(t.split("-")[0] for t in got) == ["t1", "t2"]
    assert taken(store, per_tenant, "me", 10) == []


def test_racing_dequeuers_never_exceed_the_global_limit(backend):
    first = backend.open()
    for n in range(40):
        enqueue(first, f"w{n}")
    spec = QueueSpec("q", concurrency=5)
    stores = [backend.open() for _ in range(6)]
    taken_by: list[list[str]] = [[] for _ in stores]
    start = threading.Barrier(len(stores))

    def worker(i: int) -> None:
        start.wait()
        for _ in range(5):
            taken_by[i] += taken(stores[i], spec, f"worker-{i}", 3)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [w for got in taken_by for w in got]
    assert len(everything) == 5 and len(set(everything)) == 5


def test_queue_limits_are_stored_for_every_worker(store):
    spec = QueueSpec("emails", concurrency=4, worker_concurrency=2, rate_limit=60, rate_period=60.0)
    store.define_queue(spec)
    store.define_queue(QueueSpec("tenants", concurrency=1, partitioned=True))
    assert store.queue_specs() == [spec, QueueSpec("tenants", concurrency=1, partitioned=True)]
    store.define_queue(QueueSpec("emails", concurrency=8))
    assert store.queue_specs()[0] == QueueSpec("emails", concurrency=8)


def test_schedules_keep_their_pause_and_last_tick_when_declared_again(store):
    record = ScheduleRecord(
        "nightly", "m:report", "0 3 * * *", "Europe/Paris", "latest", created_at=100.0
    )
    store.define_schedule(record)
    assert store.schedules() == [record]
    store.advance_schedule("nightly", 500.0)
    store.advance_schedule("nightly", 400.0)  # never backwards
    assert store.pause_schedule("nightly", True, now=600.0)
    changed = ScheduleRecord("nightly", "m:report2", "0 4 * * *", "UTC", "all", created_at=900.0)
    store.define_schedule(changed)
    (stored,) = store.schedules()
    assert (stored.workflow_name, stored.cron, stored.timezone, stored.catch_up) == (
        "m:report2", "0 4 * * *", "UTC", "all",
    )  # fmt: skip
    assert (stored.paused, stored.last_tick, stored.created_at) == (True, 500.0, 100.0)
    assert store.pause_schedule("nightly", False, now=700.0)  # resuming skips the pause
    (stored,) = store.schedules()
    assert (stored.paused, stored.last_tick) == (False, 700.0)
    assert not store.pause_schedule("no-such", True, now=1.0)


def test_a_rate_limited_dequeue_says_when_its_window_frees(store):
    for n in range(4):
        enqueue(store, f"w{n}", at=time.time() - 10 + n)
    rated = QueueSpec("q", rate_limit=2, rate_period=30.0)
    first = store.dequeue_workflows(rated, "me", 10)
    assert [r.workflow_id for r in first.taken] == ["w0", "w1"] and first.retry_at is None
    assert {(r.status, r.executor_id) for r in first.taken} == {(PENDING, "me")}
    held = store.dequeue_workflows(rated, "me", 10)
    assert held.taken == []
    dequeued_at = time.time()
    assert held.retry_at is not None and abs(held.retry_at - (dequeued_at + 30.0)) < 5.0


def test_a_sqlite_dequeue_walks_the_queue_in_order_without_sorting_it(tmp_path):
    # The cost of a dequeue must not grow with the queue's depth: SQLite reads the
    # waiting workflows from their index in the order it takes them and stops at
    # the batch's size, and updates the picked rows by id (no walk of every waiting
    # workflow by status). PostgreSQL plans by its statistics, so only SQLite's plan
    # is pinned; the order taken is checked on both stores above.
    from autodurable._store._sqlite_driver import sqlite3
    from autodurable._store._sqlite_queues import _SQL

    store = Backend(f"sqlite:///{tmp_path / 'state.db'}").open()
    for n in range(50):
        enqueue(store, f"w{n}", at=float(n))
    conn = sqlite3.connect(str(tmp_path / "state.db"))
    try:
        plan = " | ".join(
            row[3]
            for row in conn.execute(
                f"EXPLAIN QUERY PLAN {_SQL.take_any}", ("q", time.time(), 5, "me", 0.0, 0.0)
            )
        )
    finally:
        conn.close()
        store.close()
    assert "workflows_ready_in_queue" in plan, plan
    assert "TEMP B-TREE" not in plan and "workflows_by_status" not in plan, plan
    assert "(workflow_id=?)" in plan, plan  # the picked rows, updated by id
