"""Steps that workflow code runs concurrently: threads, thread pools, asyncio tasks.

Positions are taken where the work is submitted, never in the order it
finishes: every test makes later items finish first. A crash is simulated by a
BaseException (`Crash`), as in tests/core/test_workflows.py; a replay must return the
recorded results without running the step bodies again (effect counters).
tests/core/test_concurrency_crash.py does the same with real SIGKILLs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import sqlite3
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import autodurable
from autodurable._core import _concurrency, _report, _sentinel
from autodurable._core._context import current_step
from autodurable._core._runtime import get_runtime
from autodurable._core._wrappers import inferred_step
from autodurable._store import PENDING, SUCCEEDED, StepRecord, WorkflowRecord, open_store
from autodurable._store._migrations import load_migrations

from ..helpers import (
    Crash,
    crash_points,
    maybe_crash,
    postgres_at_schema,
    run_workflow,
    sqlite_at_schema,
)

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

N = 5  # items per fan-out
calls: Counter[str] = Counter()
finished: list[object] = []  # the order in which step bodies finished
_lock = threading.Lock()


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    finished.clear()
    Reversed.current = Reversed(N)
    yield
    Reversed.current.release()


class Reversed:
    """Makes item i of a fan-out wait until item i+1 has finished: the last finishes first."""

    current: Reversed

    def __init__(self, count: int) -> None:
        self.done = [threading.Event() for _ in range(count + 1)]
        self.done[count].set()

    def wait_turn(self, i: int) -> None:
        assert self.done[i + 1].wait(10), f"item {i + 1} never finished"

    def finish(self, i: int) -> None:
        self.done[i].set()

    def release(self) -> None:
        for event in self.done:
            event.set()


def count(name: str, item: object, in_order: bool = False) -> None:
    with _lock:
        calls[name] += 1
        if in_order:
            finished.append(item)


@autodurable.step
def fetch(i: int) -> int:
    """Item i of a fan-out: finishes after item i+1."""
    Reversed.current.wait_turn(i)
    count("fetch", i, in_order=True)
    Reversed.current.finish(i)
    return i * 10


@autodurable.step
def store_result(i: int) -> int:
    count("store_result", i)
    return i + 1000


@autodurable.step
def tally(values: list[int]) -> int:
    count("tally", len(values))
    return sum(values)


def fetch_and_store(i: int) -> tuple[int, int]:
    """Workflow code run concurrently: a branch with two steps."""
    first = fetch(i)
    return first, store_result(i)


def _plain_download(i: int) -> int:
    Reversed.current.wait_turn(i)
    count("download", i, in_order=True)
    Reversed.current.finish(i)
    return -i


download = inferred_step(_plain_download)  # a step the import hook inferred


def places(workflow_id: str) -> list[tuple[str, int, str, object]]:
    """(branch, position, name, result) of the recorded steps, in the store's order."""
    runtime = get_runtime()
    return [
        (s.branch, s.position, s.name, runtime.codec.decode(s.output or "null"))
        for s in runtime.store.list_steps(workflow_id)
    ]


# -- thread pools ------------------------------------------------------------------------


@autodurable.workflow
def map_steps() -> int:
    with ThreadPoolExecutor(N) as pool:
        values = list(pool.map(fetch, range(N)))
    maybe_crash("after pool")
    return tally(values)


def test_pool_map_of_a_step_takes_positions_in_the_order_of_the_items(database):
    assert run_workflow(map_steps, "map") == sum(i * 10 for i in range(N))
    assert finished == list(reversed(range(N)))  # the last item finished first
    assert places("map") == [
        *(("", i + 1, "fetch", i * 10) for i in range(N)),
        ("", N + 1, "tally", sum(i * 10 for i in range(N))),
    ]


def test_pool_map_is_replayed_after_a_crash_without_running_the_steps(database):
    crash_points.add("after pool")
    with pytest.raises(Crash, match=r"^after pool$"):
        run_workflow(map_steps, "map-crash")
    assert calls == Counter(fetch=N)
    assert get_runtime().store.get_workflow("map-crash").status == PENDING
    assert run_workflow(map_steps, "map-crash") == sum(i * 10 for i in range(N))
    assert calls == Counter(fetch=N, tally=1)  # no fetch ran again


@autodurable.workflow
def map_inferred() -> list[int]:
    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(download, range(N)))
    maybe_crash("after pool")
    return results


def test_pool_map_of_an_inferred_step_is_recorded_and_replayed(database):
    crash_points.add("after pool")
    with pytest.raises(Crash, match=r"^after pool$"):
        run_workflow(map_inferred, "inferred")
    assert [(b, p, n) for b, p, n, _ in places("inferred")] == [
        ("", i + 1, "_plain_download") for i in range(N)
    ]
    assert run_workflow(map_inferred, "inferred") == [-i for i in range(N)]
    assert calls == Counter(download=N)


@autodurable.workflow
def submit_steps() -> list[int]:
    with ThreadPoolExecutor(N) as pool:
        futures = [
            pool.submit(functools.partial(fetch, i)) if i % 2 else pool.submit(fetch, i)
            for i in range(N)
        ]
        values = [f.result() for f in concurrent.futures.as_completed(futures)]
    maybe_crash("after pool")
    return sorted(values)


def test_pool_submit_of_a_step_takes_its_position_at_submission(database):
    crash_points.add("after pool")
    with pytest.raises(Crash, match=r"^after pool$"):
        run_workflow(submit_steps, "submit")
    assert places("submit") == [("", i + 1, "fetch", i * 10) for i in range(N)]
    assert run_workflow(submit_steps, "submit") == [i * 10 for i in range(N)]
    assert calls == Counter(fetch=N)


@autodurable.workflow
def map_branches() -> list[tuple[int, int]]:
    before = store_result(-1)
    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(fetch_and_store, range(N)))
    maybe_crash("after pool")
    return [(before, 0), *results]


def test_a_branch_of_several_steps_numbers_them_in_its_own_sequence(database):
    crash_points.add("after pool")
    with pytest.raises(Crash, match=r"^after pool$"):
        run_workflow(map_branches, "branches")
    expected = [("", 1, "store_result", 999)]
    for i in range(N):  # the branch of item i was started at position i + 2
        expected += [
            (str(i + 2), 1, "fetch", i * 10),
            (str(i + 2), 2, "store_result", i + 1000),
        ]
    assert places("branches") == expected
    assert run_workflow(map_branches, "branches") == [
        (999, 0),
        *((i * 10, i + 1000) for i in range(N)),
    ]
    assert calls == Counter(fetch=N, store_result=N + 1)


def crashing_branch(i: int) -> tuple[int, int]:
    first = fetch(i)
    if i == 1:
        maybe_crash("in branch 1")
    return first, store_result(i)


@autodurable.workflow
def branches_with_a_crash() -> list[tuple[int, int]]:
    with ThreadPoolExecutor(N) as pool:
        return list(pool.map(crashing_branch, range(N)))


def test_a_crash_in_one_branch_keeps_what_every_branch_recorded(database):
    crash_points.add("in branch 1")
    with pytest.raises(Crash, match=r"^in branch 1$"):
        run_workflow(branches_with_a_crash, "crash-in-branch")
    assert calls == Counter(fetch=N, store_result=N - 1)
    assert run_workflow(branches_with_a_crash, "crash-in-branch") == [
        (i * 10, i + 1000) for i in range(N)
    ]
    # Only the step the crash kept from running ran now.
    assert calls == Counter(fetch=N, store_result=N)


gate = threading.Event()


def waits_for_the_parent(i: int) -> int:
    assert gate.wait(10)
    return fetch(i) + store_result(i)


@autodurable.workflow
def parent_goes_on() -> tuple[int, int, int]:
    gate.clear()
    with ThreadPoolExecutor(1) as pool:
        branch = pool.submit(waits_for_the_parent, N - 1)
        mine = store_result(7)  # while the branch has not called anything yet
        gate.set()
        theirs = branch.result()
    return mine, theirs, store_result(8)


def test_the_parents_positions_do_not_depend_on_its_running_branches(database):
    assert run_workflow(parent_goes_on, "parent") == (1007, (N - 1) * 10 + N - 1 + 1000, 1008)
    assert places("parent") == [
        ("1", 1, "fetch", (N - 1) * 10),
        ("1", 2, "store_result", N - 1 + 1000),
        ("", 2, "store_result", 1007),
        ("", 3, "store_result", 1008),
    ]


def nested(i: int) -> list[int]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda j: store_result(10 * i + j), range(2)))


@autodurable.workflow
def nested_branches() -> list[list[int]]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(nested, range(2)))


def test_a_branch_started_by_a_branch_has_a_path_of_positions(database):
    assert run_workflow(nested_branches, "nested") == [[1000, 1001], [1010, 1011]]
    assert places("nested") == [
        ("1.1", 1, "store_result", 1000),
        ("1.2", 1, "store_result", 1001),
        ("2.1", 1, "store_result", 1010),
        ("2.2", 1, "store_result", 1011),
    ]


@autodurable.step
def key_inside() -> str:
    return f"{autodurable.idempotency_key()} {current_step()}"


def keys_in_branch(_: int) -> tuple[str, str]:
    return autodurable.idempotency_key(), key_inside()


@autodurable.workflow
def keys() -> list[object]:
    with ThreadPoolExecutor(2) as pool:
        direct = pool.submit(key_inside).result()
        branch = pool.submit(keys_in_branch, 0).result()
    return [direct, branch, key_inside()]


def test_idempotency_keys_in_concurrent_work_are_unique_and_stable(database):
    first = run_workflow(keys, "keys")
    assert first == ["keys:1 1", ("keys:2.1", "keys:2.1 2.1"), "keys:3 3"]
    calls.clear()
    assert run_workflow(keys, "keys") == first


# -- threads -----------------------------------------------------------------------------


@autodurable.workflow
def threads() -> int:
    results: list[object] = [None] * N
    started = []
    for i in range(N):
        if i % 2:  # a step as the target: its position is taken at start()
            thread = threading.Thread(target=fetch, args=(i,))
        else:

            def branch(i: int = i) -> None:
                results[i] = fetch_and_store(i)

            thread = threading.Thread(target=branch)
        thread.start()
        started.append(thread)
    for thread in started:
        thread.join()
    maybe_crash("after threads")
    return store_result(-1)


def test_threads_started_by_workflow_code_are_recorded_and_replayed(database):
    crash_points.add("after threads")
    with pytest.raises(Crash, match=r"^after threads$"):
        run_workflow(threads, "threads")
    expected = []
    for i in range(N):
        if i % 2:
            expected.append(("", i + 1, "fetch", i * 10))
        else:
            expected += [
                (str(i + 1), 1, "fetch", i * 10),
                (str(i + 1), 2, "store_result", i + 1000),
            ]
    assert places("threads") == expected
    assert run_workflow(threads, "threads") == 999
    assert calls == Counter(fetch=N, store_result=len(range(0, N, 2)) + 1)


class Worker(threading.Thread):
    def __init__(self, i: int) -> None:
        super().__init__()
        self.i = i
        self.result = 0

    def run(self) -> None:
        self.result = store_result(self.i)


@autodurable.workflow
def thread_subclass() -> list[int]:
    workers = [Worker(i) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [worker.result for worker in workers]


def test_a_thread_subclass_runs_its_run_method_as_a_branch(database):
    assert run_workflow(thread_subclass, "subclass") == [1000, 1001, 1002]
    assert places("subclass") == [(str(i + 1), 1, "store_result", 1000 + i) for i in range(3)]


class Client:
    @autodurable.step
    def get(self, i: int) -> int:
        Reversed.current.wait_turn(i)
        count("get", i, in_order=True)
        Reversed.current.finish(i)
        return i + 1


@autodurable.workflow
def methods_and_timers() -> list[int]:
    client = Client()
    with ThreadPoolExecutor(N) as pool:
        values = list(pool.map(client.get, range(N)))
    timers = [threading.Timer(0.01 * (3 - i), store_result, args=(i,)) for i in range(3)]
    for timer in timers:
        timer.start()
    for timer in timers:
        timer.join()
    maybe_crash("after threads")
    return values


def test_a_step_method_and_a_timer_function_take_their_positions_when_started(database):
    crash_points.add("after threads")
    with pytest.raises(Crash, match=r"^after threads$"):
        run_workflow(methods_and_timers, "methods")
    assert finished == list(reversed(range(N)))
    assert places("methods") == [
        *(("", i + 1, "Client.get", i + 1) for i in range(N)),
        *(("", N + 1 + i, "store_result", 1000 + i) for i in range(3)),
    ]
    assert run_workflow(methods_and_timers, "methods") == [i + 1 for i in range(N)]
    assert calls == Counter(get=N, store_result=3)


# -- asyncio --------------------------------------------------------------------------------


class AsyncReversed:
    """`Reversed` for tasks of one event loop."""

    def __init__(self, count: int) -> None:
        self.done = [asyncio.Event() for _ in range(count + 1)]
        self.done[count].set()

    async def wait_turn(self, i: int) -> None:
        await asyncio.wait_for(self.done[i + 1].wait(), 10)

    def finish(self, i: int) -> None:
        self.done[i].set()


turns: list[AsyncReversed] = []


@autodurable.step
async def afetch(i: int) -> int:
    await turns[-1].wait_turn(i)
    count("afetch", i, in_order=True)
    turns[-1].finish(i)
    return i * 10


async def abranch(i: int) -> tuple[int, int]:
    """Workflow code of a task: two steps."""
    return await afetch(i), store_result(i)


def async_workflow(body):
    """A workflow running `body()` (a coroutine function) in an event loop of its own."""

    @autodurable.workflow
    def workflow() -> object:
        async def main() -> object:
            turns.append(AsyncReversed(N))
            result = await body()
            maybe_crash("after tasks")
            return result

        return asyncio.run(main())

    return workflow


def branch_places(step: str = "afetch") -> list[tuple[str, int, str, object]]:
    expected = []
    for i in range(N):  # the task of item i was created at position i + 1
        expected += [(str(i + 1), 1, step, i * 10), (str(i + 1), 2, "store_result", i + 1000)]
    return expected


async def gather_body() -> object:
    return await asyncio.gather(*(abranch(i) for i in range(N)))


async def create_task_body() -> object:
    tasks = [asyncio.create_task(abranch(i)) for i in range(N)]
    return [await task for task in tasks]


async def task_group_body() -> object:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(abranch(i)) for i in range(N)]
    return [task.result() for task in tasks]


async def as_completed_body() -> object:
    return sorted([await done for done in asyncio.as_completed([abranch(i) for i in range(N)])])


async def wait_body() -> object:
    tasks = [asyncio.ensure_future(abranch(i)) for i in range(N)]
    await asyncio.wait(tasks)
    return [task.result() for task in tasks]


@pytest.mark.parametrize(
    "body", [gather_body, create_task_body, task_group_body, as_completed_body, wait_body]
)
def test_tasks_are_branches_numbered_where_they_are_created(database, body):
    workflow = async_workflow(body)
    expected = [(i * 10, i + 1000) for i in range(N)]
    crash_points.add("after tasks")
    with pytest.raises(Crash, match=r"^after tasks$"):
        run_workflow(workflow, body.__name__)
    assert finished == list(reversed(range(N)))  # the last item finished first
    assert places(body.__name__) == branch_places()
    assert run_workflow(workflow, body.__name__) == expected
    assert calls == Counter(afetch=N, store_result=N)  # nothing ran again


async def direct_async_steps_body() -> object:
    return await asyncio.gather(*(afetch(i) for i in range(N)))


def test_gather_of_async_step_calls_keeps_the_workflows_own_positions(database):
    workflow = async_workflow(direct_async_steps_body)
    assert run_workflow(workflow, "direct") == [i * 10 for i in range(N)]
    assert places("direct") == [("", i + 1, "afetch", i * 10) for i in range(N)]


async def to_thread_body() -> object:
    loop = asyncio.get_running_loop()
    direct = await asyncio.to_thread(fetch, N - 1)  # awaited here: a step of its own
    executor = await loop.run_in_executor(None, fetch, N - 2)
    with ThreadPoolExecutor(N) as pool:
        mine = await loop.run_in_executor(pool, fetch_and_store, N - 3)
    gathered = await asyncio.gather(*(asyncio.to_thread(fetch, i) for i in reversed(range(N - 3))))
    return [direct, executor, mine, gathered]


def test_to_thread_and_run_in_executor_are_recorded_and_replayed(database):
    workflow = async_workflow(to_thread_body)
    crash_points.add("after tasks")
    with pytest.raises(Crash, match=r"^after tasks$"):
        run_workflow(workflow, "to_thread")
    assert places("to_thread") == [
        ("", 1, "fetch", (N - 1) * 10),
        ("", 2, "fetch", (N - 2) * 10),
        ("3", 1, "fetch", (N - 3) * 10),
        ("3", 2, "store_result", N - 3 + 1000),
        # gather made a task of each to_thread() coroutine: branches 4, 5 ...
        *((str(4 + k), 1, "fetch", i * 10) for k, i in enumerate(reversed(range(N - 3)))),
    ]
    expected = [(N - 1) * 10, (N - 2) * 10, ((N - 3) * 10, N - 3 + 1000)]
    expected.append([i * 10 for i in reversed(range(N - 3))])
    assert run_workflow(workflow, "to_thread") == expected
    assert calls == Counter(fetch=N, store_result=1)


# -- what is not recorded, and what stays as it was ------------------------------------------


@autodurable.workflow
def process_pool() -> list[int]:
    with ProcessPoolExecutor(1) as pool:
        first = pool.submit(abs, -3).result()
        return [first, *pool.map(abs, [-1, -2])]


def test_a_process_pool_in_workflow_code_is_reported_once(database, caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    _report.forget()
    assert run_workflow(process_pool, "processes") == [3, 1, 2]
    warned = [r.getMessage() for r in caplog.records if "process pool" in r.getMessage()]
    assert warned == [_concurrency.PROCESS_POOL_WARNING]
    assert places("processes") == []  # nothing recorded: it runs again on resume


@autodurable.workflow
def starts_a_child() -> str:
    handle = autodurable.start(map_steps)
    handle.result()
    return handle.workflow_id


def test_a_workflow_started_by_workflow_code_is_still_a_workflow_of_its_own(database):
    child = run_workflow(starts_a_child, "starter")
    assert get_runtime().store.get_workflow(child).status == SUCCEEDED
    assert [name for _, _, name, _ in places(child)] == ["fetch"] * N + ["tally"]


def frames() -> int:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def frame_depths() -> list[int]:
    """What a function sees of its callers, run by each patched primitive from plain code."""
    seen: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        seen.append(pool.submit(frames).result())
    thread = threading.Thread(target=lambda: seen.append(frames()))
    thread.start()
    thread.join()

    async def main() -> None:
        async def in_task() -> None:
            seen.append(frames())

        await asyncio.create_task(in_task())
        seen.append(await asyncio.to_thread(frames))
        seen.append(await asyncio.get_running_loop().run_in_executor(None, frames))
        for done in asyncio.as_completed([in_task()]):
            await done

    asyncio.run(main())
    return seen


def test_outside_workflows_the_primitives_are_the_originals(database):
    _concurrency.uninstall()
    original = {
        "submit": vars(ThreadPoolExecutor)["submit"],
        "start": vars(threading.Thread)["start"],
        "create_task": vars(asyncio.base_events.BaseEventLoop)["create_task"],
        "as_completed": asyncio.as_completed,
    }
    try:
        plain = frame_depths()
        run_workflow(map_steps, "installs")  # the first workflow installs the patches
        assert _concurrency.installed
        assert vars(ThreadPoolExecutor)["submit"] is not original["submit"]
        assert frame_depths() == plain  # no frame of ours, nothing else changed
        # Looked up outside workflow code, each is the original function.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit.__func__ is original["submit"]
        assert ThreadPoolExecutor.submit is original["submit"]
        assert threading.Thread().start.__func__ is original["start"]
        loop = asyncio.new_event_loop()
        try:
            assert loop.create_task.__func__ is original["create_task"]
        finally:
            loop.close()
        assert asyncio.as_completed.__wrapped__ is original["as_completed"]
    finally:
        _concurrency.uninstall()
    assert vars(ThreadPoolExecutor)["submit"] is original["submit"]
    assert vars(threading.Thread)["start"] is original["start"]
    assert asyncio.as_completed is original["as_completed"]


@autodurable.workflow
def depth_in_workflow() -> list[int]:
    with ThreadPoolExecutor(1) as pool:
        return [pool.submit(frames).result()]


def test_work_started_by_workflow_code_sees_the_same_frames(database):
    with ThreadPoolExecutor(1) as pool:
        plain = pool.submit(frames).result()
    assert run_workflow(depth_in_workflow, "depth") == [plain]


def reads_a_file(path: str) -> str:
    with open(path) as fh:  # I/O outside any step, in a thread of workflow code
        return fh.read()


@autodurable.workflow
def io_in_a_thread(path: str) -> str:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(reads_a_file, path).result()


def test_the_sentinel_sees_io_in_threads_that_workflow_code_started(database, tmp_path, caplog):
    path = tmp_path / "data.txt"
    path.write_text("x")
    caplog.set_level(logging.WARNING, logger="autodurable")
    _sentinel.install("warn")
    try:
        assert run_workflow(io_in_a_thread, "sentinel", str(path)) == "x"
    finally:
        _sentinel.uninstall()
    reports = [r.getMessage() for r in caplog.records if "outside any step" in r.getMessage()]
    assert len(reports) == 1 and "reads_a_file" in reports[0], reports


# -- the store: branches in the schema -------------------------------------------------------


def test_steps_of_branches_are_stored_and_forked_by_where_they_started(database):
    store = get_runtime().store
    now = time.time()
    record = WorkflowRecord("src", "m:f", PENDING, "{}", None, None, "me", now, now)
    assert store.create_workflow(record)
    rows = [
        StepRecord(1, "a", SUCCEEDED, "1", None, 1, now, now),
        StepRecord(1, "b", SUCCEEDED, "2", None, 1, now, now, branch="2"),
        StepRecord(2, "c", SUCCEEDED, "3", None, 1, now, now, branch="2"),
        StepRecord(1, "d", SUCCEEDED, "4", None, 1, now, now, branch="2.3"),
        StepRecord(3, "e", SUCCEEDED, "5", None, 1, now, now),
        StepRecord(1, "f", SUCCEEDED, "6", None, 1, now, now, branch="4"),
    ]
    for row in reversed(rows):
        assert store.record_step("src", "me", row) == PENDING
    assert [(s.branch, s.position, s.name) for s in store.list_steps("src")] == [
        (r.branch, r.position, r.name) for r in rows
    ]
    fork = WorkflowRecord("copy", "m:f", PENDING, "{}", None, None, None, now, now)
    assert store.fork_workflow("src", fork, 3) == 4  # a, and branch 2 with its branch
    assert [(s.branch, s.position) for s in store.list_steps("copy")] == [
        ("", 1),
        ("2", 1),
        ("2", 2),
        ("2.3", 1),
    ]


def test_an_sqlite_database_of_schema_3_is_migrated_with_its_steps(tmp_path):
    path = tmp_path / "old.db"
    with sqlite_at_schema(path, 3) as conn:
        conn.execute(
            "INSERT INTO workflows (workflow_id, name, status, inputs, executor_id, "
            "created_at, updated_at) VALUES ('old', 'm:f', 'pending', '{}', 'me', 1, 2)"
        )
        conn.execute(
            "INSERT INTO steps VALUES ('old', 1, 'a', 'succeeded', '7', NULL, 1, 1, 2, 'me')"
        )
    migrated = open_store(f"sqlite:///{path}")
    try:
        assert [(s.branch, s.position, s.output) for s in migrated.list_steps("old")] == [
            ("", 1, "7")
        ]
        branch = StepRecord(1, "b", SUCCEEDED, "8", None, 1, 3, 4, branch="2")
        assert migrated.record_step("old", "me", branch) == PENDING
        assert [(s.branch, s.position) for s in migrated.list_steps("old")] == [
            ("", 1),
            ("2", 1),
        ]
    finally:
        migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(load_migrations("sqlite"))


def test_a_postgresql_schema_of_version_2_is_migrated_with_its_steps(postgres_url):
    with postgres_at_schema(postgres_url, 2) as conn:
        conn.execute(
            "INSERT INTO workflows (workflow_id, name, status, inputs, executor_id, "
            "created_at, updated_at) VALUES ('old', 'm:f', 'pending', '{}', 'me', 1, 2)"
        )
        conn.execute(
            "INSERT INTO steps VALUES ('old', 1, 'a', 'succeeded', '7', NULL, 1, 1, 2, 'me')"
        )
    migrated = open_store(postgres_url)
    try:
        assert [(s.branch, s.position, s.output) for s in migrated.list_steps("old")] == [
            ("", 1, "7")
        ]
        branch = StepRecord(1, "b", SUCCEEDED, "8", None, 1, 3, 4, branch="2")
        assert migrated.record_step("old", "me", branch) == PENDING
        assert [(s.branch, s.position) for s in migrated.list_steps("old")] == [
            ("", 1),
            ("2", 1),
        ]
    finally:
        migrated.close()
