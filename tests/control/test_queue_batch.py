"""`Queue.enqueue_many` and the batch path of `autodurable.map`, on both stores: one
transaction for a batch, handles in order, items started in the order given within
their priority, duplicates as `enqueue` treats them (a rejected one enqueues nothing
of the batch), bad batches refused before anything is written, and a parent that
crashes around its batch of children enqueues and starts none of them twice."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

import autodurable
from autodurable._core._runtime import get_runtime
from autodurable._store import DELAYED, ENQUEUED, PENDING, SUCCEEDED

from ..helpers import Crash, crash_points, maybe_crash

pytestmark = pytest.mark.usefixtures("database")
R = TypeVar("R")

_lock = threading.Lock()
starts: list[tuple[str, float]] = []  # (tag, when its body started)


@pytest.fixture(autouse=True)
def _clear() -> None:
    starts.clear()


@autodurable.step
def note(tag: str) -> str:
    with _lock:
        starts.append((tag, time.time()))
    return tag


@autodurable.workflow
def job(tag: str, suffix: str = "") -> str:
    return note(tag) + suffix


def statuses(ids: list[str]) -> list[str]:
    store = get_runtime().store
    return [store.get_workflow(i).status for i in ids]


def started_tags() -> list[str]:
    with _lock:
        return [tag for tag, _ in sorted(starts, key=lambda s: s[1])]


def wait_for(count: int) -> None:
    deadline = time.time() + 60
    while len(starts) < count and time.time() < deadline:
        time.sleep(0.02)


def transactions_writing(queue: str, action: Callable[[], R]) -> tuple[int, R]:
    """How many transactions `action` committed to write the workflows of `queue` (on
    SQLite the store's COMMITs, traced; on PostgreSQL the distinct ``xmin`` of the
    queue's rows: the transactions that inserted them), and what it returned."""
    conn = getattr(get_runtime().store, "_conn", None)
    if isinstance(conn, sqlite3.Connection):
        commits: list[str] = []
        conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        try:
            result = action()
        finally:
            conn.set_trace_callback(None)
        return len(commits), result
    import psycopg

    from autodurable._store._postgres_url import parse_postgres_url

    result = action()
    url = parse_postgres_url(get_runtime().settings.database_url)
    query = f'SELECT count(DISTINCT xmin::text) FROM "{url.schema}".workflows WHERE queue_name = %s'
    with psycopg.connect(url.conninfo) as pg:
        return int(pg.execute(query, (queue,)).fetchone()[0]), result


def test_enqueue_many_is_durable_in_one_transaction_with_handles_in_order():
    queue = autodurable.Queue("test-batch-one")
    queue.declare()  # its limits are stored first, in a transaction of their own
    count, handles = transactions_writing(
        "test-batch-one", lambda: queue.enqueue_many(job, [(f"t{n}",) for n in range(12)])
    )
    assert count == 1
    # The measure can fail: one enqueue each is one transaction each.
    other = autodurable.Queue("test-batch-loop")
    other.declare()
    count, _ = transactions_writing(
        "test-batch-loop", lambda: [other.enqueue(job, f"l{n}") for n in range(3)]
    )
    assert count == 3
    store = get_runtime().store
    ids = [h.workflow_id for h in handles]
    assert len(set(ids)) == 12 and statuses(ids) == [ENQUEUED] * 12
    inputs = [store.get_workflow(i).inputs for i in ids]
    assert [get_runtime().codec.decode(i)["args"] for i in inputs] == [[f"t{n}"] for n in range(12)]


def test_items_start_in_the_order_given_within_their_priority():
    queue = autodurable.Queue("test-batch-order", concurrency=1)
    low = queue.enqueue_many(job, [(f"low-{n}",) for n in range(4)], priority=5)
    high = queue.enqueue_many(
        job, [("high-0",), (("high-1",), {"suffix": "!"}), (("high-2",), {})], priority=1
    )
    single = queue.enqueue(job, "single", priority=1)  # after the batch of its priority
    autodurable.recover(watch=True)
    assert [h.result(timeout=60) for h in high] == ["high-0", "high-1!", "high-2"]
    assert [h.result(timeout=60) for h in low] == [f"low-{n}" for n in range(4)]
    assert single.result(timeout=60) == "single"
    assert started_tags() == [
        "high-0", "high-1", "high-2", "single", "low-0", "low-1", "low-2", "low-3",
    ]  # fmt: skip


def test_duplicates_in_and_outside_a_batch_are_returned_as_enqueue_returns_them():
    queue = autodurable.Queue("test-batch-dedup")
    holder = queue.enqueue(job, "holder", dedup_id="order-1")
    handles = queue.enqueue_many(
        job,
        [("a",), ("b",), ("c",), ("d",)],
        dedup_ids=["order-1", "order-2", None, "order-2"],
        workflow_ids=[None, "wf-b", "wf-c", None],
    )
    ids = [h.workflow_id for h in handles]
    assert ids[0] == holder.workflow_id  # a waiting workflow holds order-1
    assert ids[1:3] == ["wf-b", "wf-c"]
    assert ids[3] == "wf-b"  # the earlier item of the batch holds order-2
    assert len(autodurable.list_workflows(queue="test-batch-dedup")) == 3
    again = queue.enqueue_many(job, [("e",)], workflow_ids=["wf-c"])  # an existing id
    assert [h.workflow_id for h in again] == ["wf-c"]
    autodurable.recover(watch=True)
    assert [h.result(timeout=60) for h in handles] == ["holder", "b", "c", "b"]


def test_a_rejected_duplicate_enqueues_nothing_of_the_batch():
    queue = autodurable.Queue("test-batch-reject")
    holder = queue.enqueue(job, "holder", dedup_id="order-1")
    before = sorted(w.workflow_id for w in autodurable.list_workflows())
    with pytest.raises(autodurable.DuplicateWorkflow, match=holder.workflow_id) as outside:
        queue.enqueue_many(
            job, [("x",), ("y",), ("z",)], dedup_ids=["new", "order-1", None],
            if_duplicate="reject",
        )  # fmt: skip
    assert outside.value.holder == holder.workflow_id and outside.value.dedup_id == "order-1"
    with pytest.raises(autodurable.DuplicateWorkflow, match="two items of the batch") as inside:
        queue.enqueue_many(
            job, [("p",), ("q",), ("r",)], dedup_ids=["k", None, "k"], if_duplicate="reject"
        )
    assert inside.value.dedup_id == "k"
    assert sorted(w.workflow_id for w in autodurable.list_workflows()) == before
    fine = queue.enqueue_many(job, [("u",), ("v",)], dedup_ids=["u", "v"], if_duplicate="reject")
    assert statuses([h.workflow_id for h in fine]) == [ENQUEUED] * 2


def test_bad_batches_are_refused_before_anything_is_written():
    queue = autodurable.Queue("test-batch-bad")
    with pytest.raises(TypeError, match=r"write \('x',\) for one argument"):
        queue.enqueue_many(job, [("a",), "x"])
    with pytest.raises(TypeError, match=r"decorated with @autodurable\.workflow"):
        queue.enqueue_many(note, [("a",)])
    with pytest.raises(autodurable.AutodurableError, match="one value per item"):
        queue.enqueue_many(job, [("a",), ("b",)], workflow_ids=["only-one"])
    with pytest.raises(autodurable.AutodurableError, match="non-empty string"):
        queue.enqueue_many(job, [("a",)], dedup_ids=[""])
    with pytest.raises(autodurable.AutodurableError, match=r"item 1 of the batch.*plain data"):
        queue.enqueue_many(job, [("a",), (threading.Lock(),)])
    with pytest.raises(autodurable.AutodurableError, match="delay must be seconds"):
        queue.enqueue_many(job, [("a",)], delay=-1)
    partitioned = autodurable.Queue("test-batch-partitioned", partitioned=True)
    with pytest.raises(autodurable.AutodurableError, match="give each enqueue a partition_key"):
        partitioned.enqueue_many(job, [("a",)])
    assert autodurable.list_workflows() == []
    assert queue.enqueue_many(job, []) == []


def test_delay_and_partition_key_apply_to_every_item():
    queue = autodurable.Queue("test-batch-placed", concurrency=1, partitioned=True)
    other = queue.placed(partition_key="globex").enqueue(job, "other")  # another tenant
    enqueued_at = time.time()
    handles = queue.enqueue_many(
        job, [(f"acme-{n}",) for n in range(4)], partition_key="acme", delay=0.5
    )
    assert statuses([h.workflow_id for h in handles]) == [DELAYED] * 4
    autodurable.recover(watch=True)
    assert other.result(timeout=60) == "other"
    assert [h.result(timeout=60) for h in handles] == [f"acme-{n}" for n in range(4)]
    acme = [(tag, at) for tag, at in starts if tag.startswith("acme")]
    assert min(at for _, at in acme) >= enqueued_at + 0.5
    assert started_tags() == ["other", "acme-0", "acme-1", "acme-2", "acme-3"]  # one at a time


def test_enqueue_many_async_does_not_block_the_event_loop():
    queue = autodurable.Queue("test-batch-async")

    async def main() -> list[str]:
        handles = await queue.enqueue_many_async(job, [("a0",), ("a1",)], priority=2)
        assert statuses([h.workflow_id for h in handles]) == [ENQUEUED] * 2
        autodurable.recover(watch=True)
        return [await h.result_async(timeout=60) for h in handles]

    assert asyncio.run(main()) == ["a0", "a1"]


MAPPED = autodurable.Queue("test-batch-map", concurrency=2)


@autodurable.workflow
def mapping_parent(count: int) -> list[str]:
    results = autodurable.map(job, [f"m{n}" for n in range(count)], queue=MAPPED)
    maybe_crash("after map")
    return results


def children() -> list[str]:
    return sorted(w.workflow_id for w in autodurable.list_workflows(queue="test-batch-map"))


def test_map_enqueues_its_children_as_one_recorded_batch_and_a_crash_after_it_starts_none_again():
    autodurable.recover(watch=True)
    parent = autodurable.options(mapping_parent, workflow_id="map-crash")
    crash_points.add("after map")
    with pytest.raises(Crash, match=r"^after map$"):
        parent(5)
    # Left pending by the crash; the watcher serving the children may resume it first
    # (the crashed run's end wakes it), and then it has already finished.
    assert statuses(["map-crash"]) in ([PENDING], [SUCCEEDED])
    steps = autodurable.get_workflow("map-crash").steps()
    assert [s.name for s in steps] == [f"autodurable.enqueue_many:{__name__}:job"]
    first = children()
    assert len(first) == 5 and sorted(steps[0].output) == first
    assert parent(5) == [f"m{n}" for n in range(5)]  # resumed: nothing enqueued again
    assert children() == first and statuses(first) == [SUCCEEDED] * 5
    assert sorted(started_tags()) == [f"m{n}" for n in range(5)]  # each child ran once


def test_a_crash_between_recording_the_ids_and_writing_the_batch_enqueues_it_once(monkeypatch):
    store = get_runtime().store
    write = store.enqueue_workflows
    calls = []

    def crash_once(entries, reject_duplicates=False):
        calls.append([record.workflow_id for record, _ in entries])
        if len(calls) == 1:
            raise Crash("before the batch")
        return write(entries, reject_duplicates)

    monkeypatch.setattr(store, "enqueue_workflows", crash_once)
    autodurable.recover(watch=True)
    parent = autodurable.options(mapping_parent, workflow_id="map-early")
    with pytest.raises(Crash, match="before the batch"):
        parent(3)
    assert children() == []
    assert parent(3) == ["m0", "m1", "m2"]
    assert calls[0] == calls[1] and children() == sorted(calls[0])  # the recorded ids


OLD_STYLE = {"on": True}


@autodurable.workflow
def changing_parent(count: int) -> list[str]:
    tags = [f"o{n}" for n in range(count)]
    if OLD_STYLE["on"]:  # as map did before batches: one enqueue (one recorded id) each
        handles = []
        for n, tag in enumerate(tags):
            handles.append(MAPPED.enqueue(job, tag))
            if n == 1:
                maybe_crash("mid fan-out")
        return [h.result() for h in handles]
    return autodurable.map(job, tags, queue=MAPPED)


def test_a_history_recorded_one_child_at_a_time_is_replayed_by_the_batch_path(monkeypatch):
    monkeypatch.setitem(OLD_STYLE, "on", True)
    parent = autodurable.options(changing_parent, workflow_id="map-upgrade")
    crash_points.add("mid fan-out")
    with pytest.raises(Crash, match="mid fan-out"):
        parent(4)
    before = children()
    assert len(before) == 2
    monkeypatch.setitem(OLD_STYLE, "on", False)  # the new code replays the old history
    autodurable.recover(watch=True)
    assert parent(4) == ["o0", "o1", "o2", "o3"]
    after = children()
    assert len(after) == 4 and set(before) <= set(after)
    names = [s.name for s in autodurable.get_workflow("map-upgrade").steps()]
    assert names == [f"autodurable.start:{__name__}:job"] * 4
    assert sorted(started_tags()) == ["o0", "o1", "o2", "o3"]
