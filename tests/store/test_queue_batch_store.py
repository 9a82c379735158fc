"""Batch enqueues and batch dequeues in the store, on every backend: one transaction
and one notification for a batch, the outcomes of enqueueing its entries one after
the other, nothing written when a duplicate is rejected; a dequeue takes its batch
with one statement, in priority order, within the limits."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator

import pytest

from autodurable._store import ENQUEUED, PENDING, Placement, QueueSpec, Store

from ..helpers import Backend, executor, workflow


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def entry(workflow_id: str, queue: str = "q", at: float = 0.0, **place):
    return (workflow(workflow_id, None, at=at), Placement(queue, **place))


@contextlib.contextmanager
def statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL statements `store` runs in the block (COMMITs included on SQLite)."""
    seen: list[str] = []
    conn = getattr(store, "_conn", None)
    if isinstance(conn, sqlite3.Connection):
        conn.set_trace_callback(seen.append)
        try:
            yield seen
        finally:
            conn.set_trace_callback(None)
        return
    import psycopg

    execute = psycopg.Cursor.execute

    def traced(self, query, params=None, **kwargs):
        seen.append(str(query))
        return execute(self, query, params, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", traced)
        yield seen


def transactions(store: Store, backend: Backend, queue: str, seen: list[str]) -> int:
    """How many transactions wrote the rows of `queue`: on PostgreSQL the distinct
    ``xmin`` of its rows (the id of the transaction that inserted each), on SQLite the
    COMMITs traced while they were written."""
    if backend.url.startswith("sqlite"):
        return sum(s.strip().upper() == "COMMIT" for s in seen)
    import psycopg

    from autodurable._store._postgres_url import parse_postgres_url

    url = parse_postgres_url(backend.url)
    query = f'SELECT count(DISTINCT xmin::text) FROM "{url.schema}".workflows WHERE queue_name = %s'
    with psycopg.connect(url.conninfo) as conn:
        return int(conn.execute(query, (queue,)).fetchone()[0])


@contextlib.contextmanager
def wakeups(store: Store, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The enqueue wake-ups `store` sends in the block: NOTIFY payloads on PostgreSQL
    (read on a listening connection of our own), calls of the hub on SQLite."""
    got: list[str] = []
    if backend.url.startswith("sqlite"):
        hub = store._hub  # type: ignore[attr-defined]
        wake = hub.wake

        def counted(workflow_id, released=False, enqueued=False):
            if enqueued:
                got.append(workflow_id)
            return wake(workflow_id, released=released, enqueued=enqueued)

        with monkeypatch.context() as patch:
            patch.setattr(hub, "wake", counted)
            yield got
        return
    import psycopg

    from autodurable._store._postgres_url import parse_postgres_url

    url = parse_postgres_url(backend.url)
    with psycopg.connect(url.conninfo, autocommit=True) as conn:
        conn.execute(f'LISTEN "{url.schema}"')
        yield got
        deadline = time.time() + 2.0
        for note in conn.notifies(timeout=0.5):
            if note.payload.startswith("enqueued "):
                got.append(note.payload)
            if time.time() > deadline:
                break


def test_a_batch_is_one_transaction_and_one_wakeup(store, backend, monkeypatch):
    batch = [entry(f"b{n}", queue="batch", priority=n % 3) for n in range(25)]
    with wakeups(store, backend, monkeypatch) as woken, statements(store, monkeypatch) as seen:
        assert store.enqueue_workflows(batch) == [None] * 25
    assert transactions(store, backend, "batch", seen) == 1
    assert len(woken) == 1
    # The measure can fail: the same rows one enqueue at a time are 25 of each.
    with wakeups(store, backend, monkeypatch) as woken, statements(store, monkeypatch) as seen:
        for record, placement in [entry(f"s{n}", queue="single") for n in range(25)]:
            assert store.enqueue_workflow(record, placement) is None
    assert transactions(store, backend, "single", seen) == 25
    assert len(woken) == 25
    with wakeups(store, backend, monkeypatch) as woken:  # an id that exists: no wake-up
        record, placement = entry("s3", queue="single")
        assert store.enqueue_workflow(record, placement) == "s3"
    assert woken == []
    assert [store.get_workflow(f"b{n}").status for n in range(25)] == [ENQUEUED] * 25


def test_outcomes_are_those_of_enqueueing_the_entries_one_after_the_other(store):
    assert store.enqueue_workflows([entry("held", dedup_id="d1"), entry("exists")]) == [None] * 2
    outcomes = store.enqueue_workflows(
        [
            entry("a", dedup_id="d1"),  # held by a waiting workflow: its id
            entry("exists"),  # the id exists: itself, nothing inserted
            entry("b", dedup_id="d2"),  # inserted
            entry("c", dedup_id="d2"),  # held by the entry before: its id
            entry("b"),  # an earlier entry's id: itself
            entry("d", queue="other", dedup_id="d1"),  # another queue: its own
            entry("e", available_at=time.time() + 60),
        ]
    )
    assert outcomes == ["held", "exists", None, "b", "b", None, None]
    assert store.get_workflow("a") is None and store.get_workflow("c") is None
    assert [store.get_workflow(i).status for i in ("b", "d")] == [ENQUEUED] * 2
    assert store.get_workflow("e").status == "delayed"
    assert store.queue_stats("q").enqueued == 3  # held, exists, b


def test_a_rejected_duplicate_writes_nothing_of_the_batch(store, backend, monkeypatch):
    store.register_executor(executor("me"))
    assert store.enqueue_workflows([entry("held", dedup_id="d1")]) == [None]
    assert [r.workflow_id for r in store.dequeue_workflows(QueueSpec("q"), "me", 5).taken] == [
        "held"
    ]  # running: still the holder
    batch = [entry("x"), entry("y", dedup_id="d1"), entry("z")]
    with wakeups(store, backend, monkeypatch) as woken:
        outcomes = store.enqueue_workflows(batch, reject_duplicates=True)
    assert outcomes[1] == "held"
    assert [store.get_workflow(i) for i in ("x", "y", "z")] == [None] * 3
    assert woken == []
    inside = [entry("p", dedup_id="d2"), entry("q"), entry("r", dedup_id="d2")]
    assert store.enqueue_workflows(inside, reject_duplicates=True)[2] == "p"
    assert [store.get_workflow(i) for i in ("p", "q", "r")] == [None] * 3
    stats = store.queue_stats("q")
    assert (stats.enqueued, stats.running) == (0, 1)
    with pytest.raises(ValueError, match="one at a time"):
        store.enqueue_workflows([entry("w", dedup_id="k", debounce=True)])


def test_a_dequeue_takes_its_batch_with_one_statement_in_priority_order(store, monkeypatch):
    now = time.time()
    batch = [
        entry("late-low", at=now - 1, priority=5),
        entry("old-high", at=now - 4, priority=1),
        entry("new-high", at=now - 2, priority=1),
        entry("old-low", at=now - 3, priority=5),
        entry("urgent", at=now - 0.5, priority=0),
        entry("delayed", at=now - 5, available_at=now + 60),
    ]
    store.enqueue_workflows(batch)
    with statements(store, monkeypatch) as seen:
        taken = store.dequeue_workflows(QueueSpec("q"), "me", 4).taken
    assert [r.workflow_id for r in taken] == ["urgent", "old-high", "new-high", "old-low"]
    assert {(r.status, r.executor_id) for r in taken} == {(PENDING, "me")}
    assert sum("SET status = 'pending'" in s for s in seen) == 1  # the take: one statement
    assert [r.workflow_id for r in store.dequeue_workflows(QueueSpec("q"), "me", 9).taken] == [
        "late-low"
    ]


def test_a_batch_dequeue_keeps_every_limit(store):
    now = time.time()
    batch = [
        entry(f"{tenant}-{n}", at=now - 10 + n, priority=-n if tenant == "t2" else 0,
              partition_key=tenant)
        for tenant in ("t1", "t2")
        for n in range(5)
    ]  # fmt: skip
    store.enqueue_workflows(batch)
    per_tenant = QueueSpec("q", concurrency=2, partitioned=True)
    got = sorted(r.workflow_id for r in store.dequeue_workflows(per_tenant, "a", 10).taken)
    assert got == ["t1-0", "t1-1", "t2-3", "t2-4"]  # per tenant: its two first in order
    assert store.dequeue_workflows(per_tenant, "a", 10).taken == []
    mine = QueueSpec("q", worker_concurrency=5, partitioned=True)
    assert len(store.dequeue_workflows(mine, "a", 10).taken) == 1  # a runs 4 already
    rated = QueueSpec("q", rate_limit=3, rate_period=30.0, partitioned=True)
    assert len(store.dequeue_workflows(rated, "b", 10).taken) == 1  # 3 per tenant: 5 started
    held = store.dequeue_workflows(rated, "b", 10)
    assert held.taken == [] and held.retry_at is not None
