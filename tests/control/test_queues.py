"""Queues in one process, on both stores: enqueue is durable, a worker (any process
that calls ``recover(watch=True)``) runs each workflow once within the queue's
limits, by priority, after its delay, per partition; dedup both ways; bad input."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

import autodurable
from autodurable._control import _recovery
from autodurable._control._operations import cancel
from autodurable._core._runtime import get_runtime
from autodurable._store import DELAYED, ENQUEUED, SUCCEEDED

pytestmark = pytest.mark.usefixtures("database")

_lock = threading.Lock()
spans: list[tuple[str, str, float, float]] = []  # (tag, key, start, end) of each run


@pytest.fixture(autouse=True)
def _clear() -> None:
    spans.clear()


@autodurable.step
def slow(tag: str, key: str, seconds: float) -> str:
    start = time.time()
    time.sleep(seconds)
    with _lock:
        spans.append((tag, key, start, time.time()))
    return f"{tag}:{key}"


@autodurable.workflow
def job(tag: str, key: str = "", seconds: float = 0.05) -> str:
    return slow(tag, key, seconds)


def most_at_once(selected: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in selected] + [(end, -1) for _, end in selected])
    running = peak = 0
    for _, change in edges:  # an end sorts before a start at the same moment
        running += change
        peak = max(peak, running)
    return peak


def statuses(ids: list[str]) -> list[str]:
    store = get_runtime().store
    return [store.get_workflow(i).status for i in ids]


def test_enqueued_workflows_wait_then_run_once_each_within_the_concurrency_limit():
    queue = autodurable.Queue("test-concurrency", concurrency=2)
    handles = [queue.enqueue(job, f"j{n}", seconds=0.1) for n in range(8)]
    ids = [h.workflow_id for h in handles]
    assert statuses(ids) == [ENQUEUED] * 8  # durable, and nobody runs them yet
    autodurable.recover(watch=True)
    assert sorted(h.result(timeout=60) for h in handles) == sorted(f"j{n}:" for n in range(8))
    assert sorted(tag for tag, *_ in spans) == sorted(f"j{n}" for n in range(8))
    assert most_at_once([(s, e) for _, _, s, e in spans]) == 2
    assert statuses(ids) == [SUCCEEDED] * 8


def test_one_at_a_time_runs_by_priority_then_in_order_of_enqueue():
    queue = autodurable.Queue("test-priority", concurrency=1)
    for tag, priority in [("c", 3), ("a1", 1), ("b", 2), ("a2", 1), ("first", 0)]:
        queue.enqueue(job, tag, priority=priority)
    autodurable.recover(watch=True)
    deadline = time.time() + 60
    while len(spans) < 5 and time.time() < deadline:
        time.sleep(0.02)
    assert [tag for tag, *_ in sorted(spans, key=lambda s: s[2])] == ["first", "a1", "a2", "b", "c"]


def test_a_worker_with_every_thread_busy_takes_more_as_soon_as_one_is_free(monkeypatch):
    # A worker whose threads are all busy sleeps until its next look (up to 0.2 s
    # later, its looks backing off); the end of one of its own workflows wakes it at
    # once. (Its short polls for other processes' commits are made long here: they
    # would otherwise hide a missed wake-up on SQLite, 5 ms late each time.)
    monkeypatch.setattr(_recovery, "_CHANGE_POLL", 5.0)
    get_runtime().workers = 1  # one workflow at a time: the pool is full while it runs
    queue = autodurable.Queue("test-handover")
    handles = [queue.enqueue(job, f"h{n}", seconds=0.15) for n in range(6)]
    autodurable.recover(watch=True)
    for handle in handles:
        handle.result(timeout=60)
    ordered = sorted(spans, key=lambda span: span[2])
    gaps = sorted(nxt[2] - prev[3] for prev, nxt in itertools.pairwise(ordered))
    assert gaps[len(gaps) // 2] < 0.04, gaps  # the median: one slow wake-up may happen


def test_a_delayed_workflow_starts_after_its_delay():
    queue = autodurable.Queue("test-delay")
    enqueued_at = time.time()
    handle = queue.enqueue(job, "later", delay=0.8)
    assert statuses([handle.workflow_id]) == [DELAYED]
    autodurable.recover(watch=True)
    assert handle.result(timeout=60) == "later:"
    ((_, _, started, _),) = spans
    assert started >= enqueued_at + 0.8


def test_partitioned_limits_apply_per_key():
    queue = autodurable.Queue("test-partitions", concurrency=1, partitioned=True)
    handles = [
        queue.enqueue(job, f"{tenant}-{n}", tenant, 0.1, partition_key=tenant)
        for n in range(3)
        for tenant in ("acme", "globex")
    ]
    autodurable.recover(watch=True)
    for handle in handles:
        handle.result(timeout=60)
    for tenant in ("acme", "globex"):
        assert most_at_once([(s, e) for _, key, s, e in spans if key == tenant]) == 1
    assert most_at_once([(s, e) for _, _, s, e in spans]) == 2  # the tenants ran side by side


def test_dedup_returns_the_first_or_rejects():
    queue = autodurable.Queue("test-dedup")
    first = queue.enqueue(job, "one", dedup_id="order-7")
    again = queue.enqueue(job, "two", dedup_id="order-7")
    assert again.workflow_id == first.workflow_id
    with pytest.raises(autodurable.DuplicateWorkflow, match=first.workflow_id) as info:
        queue.enqueue(job, "three", dedup_id="order-7", if_duplicate="reject")
    assert "if_duplicate='return'" in str(info.value)
    assert len(autodurable.list_workflows()) == 1
    autodurable.recover(watch=True)
    assert first.result(timeout=60) == "one:"
    assert queue.enqueue(job, "four", dedup_id="order-7").result(timeout=60) == "four:"


@autodurable.workflow
def fan_out(count: int) -> list[str]:
    queue = autodurable.Queue("test-children", concurrency=2)
    handles = [queue.enqueue(job, f"child-{n}") for n in range(count)]
    return [h.result() for h in handles]


def test_a_workflow_enqueues_children_once_and_gathers_their_results():
    autodurable.recover(watch=True)
    parent = autodurable.options(fan_out, workflow_id="parent")
    assert parent(4) == [f"child-{n}:" for n in range(4)]
    assert len(autodurable.list_workflows()) == 5
    assert parent(4) == [f"child-{n}:" for n in range(4)]  # finished: nothing enqueued again
    assert len(autodurable.list_workflows()) == 5 and len(spans) == 4


def test_bad_input_is_one_clear_error_and_records_nothing():
    with pytest.raises(autodurable.AutodurableError, match="write COUNT/PERIOD"):
        autodurable.Queue("bad", rate="fast")
    with pytest.raises(autodurable.AutodurableError, match="concurrency must be a whole number"):
        autodurable.Queue("bad", concurrency=0)
    with pytest.raises(autodurable.AutodurableError, match="queue name"):
        autodurable.Queue("bad name with spaces")
    partitioned = autodurable.Queue("test-bad-partitioned", partitioned=True)
    with pytest.raises(autodurable.AutodurableError, match="give each enqueue a partition_key"):
        partitioned.enqueue(job, "x")
    queue = autodurable.Queue("test-bad")
    with pytest.raises(TypeError, match=r"decorated with @autodurable\.workflow"):
        queue.enqueue(slow, "x", "", 0.0)
    with pytest.raises(autodurable.AutodurableError, match="pass it plain data"):
        queue.enqueue(job, threading.Lock())
    with pytest.raises(autodurable.AutodurableError, match="delay must be seconds"):
        queue.enqueue(job, "x", delay=-1)
    assert autodurable.list_workflows() == []


@autodurable.workflow
def takes_priority(priority: int) -> int:
    return priority


def test_a_workflow_argument_named_like_a_placement_keyword_goes_through_placed():
    queue = autodurable.Queue("test-placed")
    with pytest.raises(TypeError, match=r"queue.placed\(priority=...\)"):
        queue.enqueue(takes_priority, priority=5)
    handle = queue.placed(priority=2).enqueue(takes_priority, priority=5)
    autodurable.recover(watch=True)
    assert handle.result(timeout=60) == 5


def test_queued_workflows_are_listed_by_queue_and_a_cancelled_one_never_starts():
    queue = autodurable.Queue("test-operate", concurrency=1)
    other = autodurable.Queue("test-operate-other")
    first, second = (queue.enqueue(job, tag) for tag in ("first", "second"))
    other.enqueue(job, "elsewhere")
    listed = autodurable.list_workflows(queue="test-operate")
    assert sorted(w.workflow_id for w in listed) == sorted([first.workflow_id, second.workflow_id])
    assert {w.status for w in listed} == {ENQUEUED}
    assert [w.workflow_id for w in autodurable.list_workflows(status="enqueued", limit=10)]
    changed, info = cancel(second.workflow_id)
    assert changed and info.status == "cancelled"
    autodurable.recover(watch=True, queues=["test-operate"])
    assert first.result(timeout=60) == "first:"
    time.sleep(0.3)  # the worker had every chance to start the cancelled one
    assert [tag for tag, *_ in spans] == ["first"]  # and the other queue is not served here
    assert statuses([second.workflow_id]) == ["cancelled"]


def test_debounce_runs_once_with_the_latest_arguments_after_the_quiet_period():
    autodurable.recover(watch=True)
    first_call = time.time()
    handles = []
    for n in range(5):  # a burst: each call within the period of the one before
        last_call = time.time()
        handles.append(autodurable.debounce("search-box", 0.5, job, f"query-{n}"))
        time.sleep(0.1)
    assert {h.workflow_id for h in handles} == {handles[0].workflow_id}
    assert handles[0].result(timeout=60) == "query-4:"
    ((tag, _, started, _),) = spans
    assert tag == "query-4" and started >= last_call + 0.5  # once, after the quiet
    assert started >= first_call + 0.9
    later = autodurable.debounce("search-box", 0.2, job, "next-burst")
    assert later.workflow_id != handles[0].workflow_id  # the first run started: a new one
    assert later.result(timeout=60) == "next-burst:"
    with pytest.raises(autodurable.AutodurableError, match="debounce period must be"):
        autodurable.debounce("k", 0, job, "x")


def test_pyproject_limits_override_the_codes_and_declare_queues_of_their_own(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.autodurable.queues.test-configured]\nconcurrency = 1\nrate = '2/s'\n"
        "[tool.autodurable.queues.only-in-config]\nworker_concurrency = 3\n"
    )
    autodurable.configure(database_url=get_runtime().settings.database_url)  # reads it again
    queue = autodurable.Queue("test-configured", concurrency=10, worker_concurrency=4)
    queue.enqueue(job, "x")
    autodurable.recover(watch=True)  # a worker declares what the configuration names
    specs = {spec.name: spec for spec in get_runtime().store.queue_specs()}
    configured = specs["test-configured"]
    assert (configured.concurrency, configured.worker_concurrency) == (1, 4)
    assert (configured.rate_limit, configured.rate_period) == (2, 1.0)
    assert specs["only-in-config"].worker_concurrency == 3


def test_a_malformed_rate_in_pyproject_names_the_key(tmp_path):
    from autodurable._core._config import load_settings

    (tmp_path / "pyproject.toml").write_text("[tool.autodurable.queues.emails]\nrate = 'fast'\n")
    with pytest.raises(autodurable.ConfigError, match=r"queues\.emails\.rate.*COUNT/PERIOD"):
        load_settings(cwd=tmp_path)


@autodurable.workflow
def summarise_all(documents: list[str]) -> list[str]:
    queue = autodurable.Queue("test-map", concurrency=2)
    return autodurable.map(job, documents, queue=queue)


@autodurable.workflow
def fails_on(tag: str) -> str:
    if tag == "bad":
        raise ValueError("bad document")
    return slow(tag, "", 0.0)


@autodurable.workflow
def map_with_a_failure(tags: list[str]) -> list[str]:
    return autodurable.map(fails_on, tags)  # no queue: started here


def test_map_fans_out_on_a_queue_and_gathers_in_order():
    autodurable.recover(watch=True)
    documents = [f"doc-{n}" for n in range(6)]
    call = autodurable.options(summarise_all, workflow_id="map-parent")
    assert call(documents) == [f"{d}:" for d in documents]
    assert call(documents) == [f"{d}:" for d in documents]  # replayed: nothing runs again
    assert len(spans) == 6 and len(autodurable.list_workflows(queue="test-map", limit=50)) == 6
    assert most_at_once([(s, e) for _, _, s, e in spans]) <= 2
    with pytest.raises(ValueError, match="bad document"):
        map_with_a_failure(["a", "bad", "c"])
    assert sorted(tag for tag, *_ in spans[6:]) == ["a", "c"]  # every child ran to its end


def test_enqueue_async_records_without_blocking_the_event_loop():
    import asyncio

    queue = autodurable.Queue("test-async")

    async def main() -> list[str]:
        handles = await asyncio.gather(
            *(queue.enqueue_async(job, f"a{n}", priority=n) for n in range(3))
        )
        assert statuses([h.workflow_id for h in handles]) == [ENQUEUED] * 3
        autodurable.recover(watch=True)
        return [await h.result_async(timeout=60) for h in handles]

    assert asyncio.run(main()) == ["a0:", "a1:", "a2:"]
