"""Async steps' records (`autodurable._core._async_writes`).

On PostgreSQL, async steps running at once on one event loop hand their records
to the loop's own writer, which writes those waiting together in one transaction
on an async connection while the loop runs the others; on SQLite with
``synchronous=full`` they go to the store's writer thread, with the same effect.
A step alone on its loop writes in place, paying no hand-off. On SQLite's
default, where a commit is cheaper than a hand-off, the records of the steps
finishing in one turn of the loop are written together at its end, in the
loop's thread. Either way each step's record is written before the step
returns, and every record is there. The SIGKILL side (records in flight) is in
test_group_commit_crash.py.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import autodurable
from autodurable import WorkflowCancelled
from autodurable._core._runtime import get_runtime

from ..helpers import run_workflow

STEPS = 6


@autodurable.step
async def double(x: int) -> int:
    await asyncio.sleep(0)  # as I/O would: the loop runs the others meanwhile
    return 2 * x


@autodurable.workflow
async def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += await double(i)
    return total


@pytest.fixture
def sharing(database_url: str) -> str:
    """The runtime on each store, SQLite with ``synchronous=full``: commits shared."""
    url = database_url + "?synchronous=full" if database_url.startswith("sqlite") else database_url
    autodurable.configure(database_url=url)
    return url


def _writers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that write the runtime's step records, one per record."""
    store = get_runtime().store
    seen: list[str] = []
    record_step, record_steps = store.record_step, store.record_steps

    def one(workflow_id: str, executor_id: str, step: Any) -> str:
        seen.append(threading.current_thread().name)
        return record_step(workflow_id, executor_id, step)

    def several(writes: Any) -> Any:
        seen.extend([threading.current_thread().name] * len(writes))
        return record_steps(writes)

    monkeypatch.setattr(store, "record_step", one)
    monkeypatch.setattr(store, "record_steps", several)
    record_async = getattr(store, "record_steps_async", None)
    if record_async is not None:

        async def on_the_loop(writes: Any) -> Any:
            seen.extend([f"loop {threading.current_thread().name}"] * len(writes))
            return await record_async(writes)

        monkeypatch.setattr(store, "record_steps_async", on_the_loop)
    return seen


def _batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of records of each batch the runtime's store writes, as it writes it."""
    store = get_runtime().store
    sizes: list[int] = []
    record_steps = store.record_steps

    def several(writes: Any) -> Any:
        sizes.append(len(writes))
        return record_steps(writes)

    monkeypatch.setattr(store, "record_steps", several)
    record_async = getattr(store, "record_steps_async", None)
    if record_async is not None:

        async def on_the_loop(writes: Any) -> Any:
            sizes.append(len(writes))
            return await record_async(writes)

        monkeypatch.setattr(store, "record_steps_async", on_the_loop)
    return sizes


async def _many(count: int) -> list[int]:
    return await asyncio.gather(*(run_workflow(chain, f"chain-{k}", STEPS) for k in range(count)))


def _assert_recorded(count: int) -> None:
    store = get_runtime().store
    for k in range(count):
        steps = store.list_steps(f"chain-{k}")
        assert [s.position for s in steps] == list(range(1, STEPS + 1))
        assert [s.output for s in steps] == [str(2 * i) for i in range(STEPS)]


def test_steps_running_at_once_hand_their_records_to_the_writer(sharing, monkeypatch):
    writers = _writers(monkeypatch)
    batches = _batch_sizes(monkeypatch)
    assert asyncio.run(_many(8)) == [2 * sum(range(STEPS))] * 8
    _assert_recorded(8)
    assert len(writers) == 8 * STEPS
    if sharing.startswith("postgresql"):
        # Written by the loop itself on its own connection, no thread handed anything:
        # the loop went on while the server answered, and records went together.
        assert set(writers) == {f"loop {threading.current_thread().name}"}, writers
        assert max(batches) > 1, batches
    else:
        handed = [name for name in writers if name.startswith("autodurable-writer")]
        assert handed, writers  # the loop went on while they were written
    # Replayed from those records: nothing runs again, nothing is written again.
    assert asyncio.run(_many(8)) == [2 * sum(range(STEPS))] * 8
    assert len(writers) == 8 * STEPS


@autodurable.step
async def at_once(x: int) -> int:
    return x + 1  # no await: a step that never lets the loop run anything else


@autodurable.workflow
async def counted(n: int) -> int:
    total = 0
    for i in range(n):
        total += await at_once(i)
    return total


def test_workflows_started_together_share_commits_even_when_their_steps_never_wait(
    sharing, monkeypatch
):
    # The others wait for their turn on the loop: a write in place would run the
    # workflows one after another, each commit alone.
    store = get_runtime().store
    batches = _batch_sizes(monkeypatch)

    async def together() -> list[int]:
        return await asyncio.gather(*(run_workflow(counted, f"c-{k}", 20) for k in range(8)))

    assert asyncio.run(together()) == [sum(range(1, 21))] * 8
    assert batches and max(batches) > 1, batches
    for k in range(8):
        assert [s.position for s in store.list_steps(f"c-{k}")] == list(range(1, 21))


def test_a_step_alone_on_its_loop_writes_in_place(sharing, monkeypatch):
    writers = _writers(monkeypatch)
    assert asyncio.run(run_workflow(chain, "chain-0", STEPS)) == 2 * sum(range(STEPS))
    _assert_recorded(1)
    assert writers == [threading.current_thread().name] * STEPS


def test_sqlite_with_the_default_synchronous_mode_writes_each_turns_records_together(
    tmp_path, monkeypatch
):
    autodurable.configure(database_url=f"sqlite:///{tmp_path / 'state.db'}")
    store = get_runtime().store
    assert not store.shares_commits
    writers = _writers(monkeypatch)
    batches = _batch_sizes(monkeypatch)
    assert asyncio.run(_many(8)) == [2 * sum(range(STEPS))] * 8
    _assert_recorded(8)
    assert set(writers) == {threading.current_thread().name}  # the loop's own thread
    assert len(writers) == 8 * STEPS
    # Fewer transactions than records: the turns' records went together.
    assert batches and max(batches) > 1 and sum(batches) > 8 * STEPS // 2, batches


@autodurable.step
async def stopping_one(k: int, i: int) -> int:
    await asyncio.sleep(0)
    if k == 3 and i == 2:  # an operator cancels workflow 3 while its step runs
        get_runtime().store.cancel_workflow("stop-3", '{"e": "cancelled"}')
    return i


@autodurable.workflow
async def stoppable(k: int) -> int:
    total = 0
    for i in range(STEPS):
        total += await stopping_one(k, i)
    return total


def test_a_row_the_batch_cannot_settle_stops_only_its_own_workflow(database_url):
    # Default settings on each store: SQLite writes the turn's records together in the
    # loop's thread, PostgreSQL by the loop's own writer on its async connection. Workflow 3 is
    # cancelled during its third step: that step's row, written with its neighbours',
    # is recorded and says so; workflow 3 stops there, the others finish.
    autodurable.configure(database_url=database_url)

    async def together() -> list[Any]:
        calls = (run_workflow(stoppable, f"stop-{k}", k) for k in range(8))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(together())
    assert isinstance(results[3], WorkflowCancelled), results
    assert [r for k, r in enumerate(results) if k != 3] == [sum(range(STEPS))] * 7
    store = get_runtime().store
    assert [s.position for s in store.list_steps("stop-3")] == [1, 2, 3]
    for k in (0, 1, 2, 4, 5, 6, 7):
        assert [s.position for s in store.list_steps(f"stop-{k}")] == list(range(1, STEPS + 1))


dropped: list[Any] = []
later: list[Any] = []


@autodurable.step
async def cutting(k: int, i: int) -> int:
    await asyncio.sleep(0)
    if k == 0 and i == 2:  # the server drops the loop's own connection mid-run
        store = get_runtime().store
        [conn] = store._by_loop.values()
        dropped.append(conn)
        pid = conn.info.backend_pid
        with store._pool.connection() as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    if k == 0 and i == 4:  # two records later: written on another connection
        later.extend(get_runtime().store._by_loop.values())
    return i


@autodurable.workflow
async def cut(k: int) -> int:
    total = 0
    for i in range(STEPS):
        total += await cutting(k, i)
    return total


def test_postgresql_a_lost_connection_of_the_loop_loses_no_record(postgres_url, monkeypatch):
    # The batch in flight on the dropped connection is written again alone (through
    # the pool), the next batch opens a new connection: every step recorded once.
    autodurable.configure(database_url=postgres_url)
    store = get_runtime().store
    writers = _writers(monkeypatch)

    async def together() -> list[int]:
        return await asyncio.gather(*(run_workflow(cut, f"cut-{k}", k) for k in range(8)))

    assert asyncio.run(together()) == [sum(range(STEPS))] * 8
    for k in range(8):
        assert [s.position for s in store.list_steps(f"cut-{k}")] == list(range(1, STEPS + 1))
    assert not [name for name in writers if name.startswith("autodurable-writer")], writers
    # The dropped connection was let go, and another one opened for what came after;
    # closing the store closes the loops' connections.
    assert dropped and later and later[0] is not dropped[0], (dropped, later)
    store.close_async_connections()
    assert later[0].closed
