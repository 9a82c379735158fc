"""Async steps' records, written without holding up the event loop's other work.

An async step records its result by a blocking store write. Alone on its
event loop, writing in place is the cheapest way (no hand-off, no wait for
other steps), and that is what it does. When other async steps or workflows of
the loop are running, or other tasks wait for their turn on it (workflows
gathered together whose steps never wait), one write per step would stall them
all, one write after another. Then the records are written together:

- On PostgreSQL, the step's record goes to the loop's own writer (`_InLoop`), a
  task that writes every record waiting for it in one transaction on the loop's
  async connection (`record_steps_async`, `_store._postgres_async`): the loop
  runs the others while the server answers, and no thread is handed anything.
- Where the store shares commits between threads otherwise (SQLite with
  ``synchronous=full``: a write waits for the disk), the step's record goes to
  the store's writer thread: the loop runs the others meanwhile, and the writer
  writes every record waiting for it in one transaction (`Store.record_steps`).
- Elsewhere (SQLite's default, where a commit is a write to the WAL, cheaper
  than a hand-off between threads), the records of the steps that finish in
  the same turn of the loop are written at the end of that turn, in the loop's
  own thread, in one transaction: the loop is held for one commit instead of
  one per step.

Invariants:
- A step returns only once its record is written (durable before its workflow
  goes on), whichever way it is written; the record is built, and its status
  acted on, by the step's own `StepCall` in the loop's thread.
- A writer (thread or turn) writes only records handed to it, each once, and
  gives each its own outcome (a failing row fails no other, see
  `Store.record_steps`).
- A run ends only once its handed records are written (`settle_async`, awaited
  by the async workflow before its run ends, waits for the loop's writer;
  `settle` waits for the writer thread's, and writes the workflow's records
  waiting for the end of the turn at once), as with writes in place: a step
  whose body finished before its workflow stopped (a sibling's crash, a
  cancellation) keeps its record.
- Global mutable state: counts of the async steps and workflows running on each
  thread's loop and the records waiting for the end of its turn (thread-local:
  one loop per thread), the writes handed to writer threads and not written by
  workflow id, and one writer thread per store while it has work, which ends
  after a second idle; on each thread's loop, one writer task per store while it
  has work, and the records handed to it and not written yet, by workflow id.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._store import Store
from .._store._protocol import Outcome, StepRecord

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future

    from ._steps import StepCall

# On this thread's loop: ``running.steps``, the async steps running (or recording),
# counted in and out by `_steps._run_async_step`; ``running.workflows``, the async
# workflows running (`running_async_workflow`); ``running.turn``, the records waiting
# for the end of the loop's turn (`_at_end_of_turn`).
running = threading.local()
_IDLE_SECONDS = 1.0  # a writer with nothing to write this long ends (another starts if needed)

_Write = tuple[tuple[str, str, StepRecord], "Future[Outcome[str]]"]
_TurnWrite = tuple[Store, tuple[str, str, StepRecord], "asyncio.Future[Outcome[str]]"]


@contextlib.contextmanager
def running_async_workflow() -> Iterator[None]:
    """Count an async workflow as running on this thread's loop while its body runs."""
    running.workflows = getattr(running, "workflows", 0) + 1
    try:
        yield
    finally:
        running.workflows -= 1


async def record_result(call: StepCall, result: Any) -> None:
    """`call.succeeded(result)`: in place when the step runs alone on its loop (no other
    async step or workflow there), else by the store's writer while the loop goes on,
    or with the other records of this turn of the loop (see the module)."""
    import asyncio  # on a loop: imported already (a sync program need not import it)

    run = call.run
    loop = asyncio.get_running_loop()
    alone = running.steps <= 1 and getattr(running, "workflows", 0) <= 1 and not _others_ready(loop)
    if run is None or alone:
        call.succeeded(result)
        return
    store = run.runtime.store
    write = (run.workflow_id, run.executor_id, call.result_row(result))
    if getattr(store, "record_steps_async", None) is not None:
        handed = _InLoop.hand(loop, store, write)
    elif store.shares_commits:
        handed = asyncio.wrap_future(_Writer.hand(store, write))
    else:
        handed = _at_end_of_turn(loop, store, write)
    try:
        outcome = await asyncio.shield(handed)
    except asyncio.CancelledError:
        # Written in place, the record would be written before a cancellation took
        # effect (the loop is held meanwhile): so here too, then it goes on.
        while not handed.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(handed)
        raise
    call.recorded(outcome.get())


def _others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other work waits for its turn on the loop (tasks started together that
    have not run yet: they would wait for a write in place). asyncio's own loops
    keep it in ``_ready``; another loop (uvloop) answers no."""
    return bool(getattr(loop, "_ready", None))


def _at_end_of_turn(
    loop: asyncio.AbstractEventLoop, store: Store, write: tuple[str, str, StepRecord]
) -> asyncio.Future[Outcome[str]]:
    """Queue `write` for the end of the loop's current turn; its outcome, once written.

    The first write of a turn schedules the turn's writing with ``call_soon``: it
    runs after the callbacks already due in this turn, the other steps finishing
    now among them, which add their writes to the same batch.
    """
    future: asyncio.Future[Outcome[str]] = loop.create_future()
    waiting: list[_TurnWrite] | None = getattr(running, "turn", None)
    if not waiting:
        waiting = running.turn = []
        loop.call_soon(_write_turn, waiting)
    waiting.append((store, write, future))
    return future


def _write_turn(waiting: list[_TurnWrite]) -> None:
    """Write a turn's records, each store's in one transaction, and give each its outcome.

    The records are taken out of `waiting`: called early by `settle`, the call the turn
    scheduled then finds nothing left to write.
    """
    if getattr(running, "turn", None) is waiting:
        running.turn = []  # writes from here on wait for the next turn
    taken, waiting[:] = list(waiting), []
    stores: dict[int, list[_TurnWrite]] = {}
    for item in taken:
        stores.setdefault(id(item[0]), []).append(item)
    for items in stores.values():
        store = items[0][0]
        try:
            if len(items) == 1:  # one record: the store's plain write is cheaper
                outcomes = [Outcome(store.record_step(*items[0][1]))]
            else:
                outcomes = store.record_steps([write for _, write, _ in items])
        except BaseException as exc:  # every write of the batch gets it
            outcomes = [Outcome(error=exc) for _ in items]
        for (_, _, future), outcome in zip(items, outcomes, strict=True):
            if not future.done():  # cancelled only when its loop is going away
                future.set_result(outcome)


def settle(workflow_id: str) -> None:
    """Write or wait until the records of `workflow_id` handed to a writer, or waiting
    for the end of this turn of the loop, are written: before its run ends (released,
    failed or finished), as records written in place are. (A step of the workflow that
    finished in this turn before a sibling's failure reached it keeps its record.)"""
    turn: list[_TurnWrite] | None = getattr(running, "turn", None)
    if turn and any(write[0] == workflow_id for _, write, _ in turn):
        _write_turn(turn)
    handed = _pending.get(workflow_id)
    if handed:
        with _Writer._lock:
            waiting = list(handed)
        from concurrent import futures  # loaded: the handed writes are its futures

        futures.wait(waiting)


async def settle_async(workflow_id: str) -> None:
    """Wait until the records of `workflow_id` handed to this loop's writer
    (`_InLoop`) are written: before its run ends, as `settle` does for the others
    (which, in the loop's own thread, could not wait for the loop)."""
    import asyncio

    handed: dict[str, set[asyncio.Future[Outcome[str]]]] = getattr(running, "in_loop_pending", {})
    cancelled: asyncio.CancelledError | None = None
    while handed.get(workflow_id):  # the writer takes each out once written
        waiting = list(handed[workflow_id])
        try:
            await asyncio.shield(asyncio.gather(*waiting, return_exceptions=True))
        except asyncio.CancelledError as exc:  # waited for all the same, then raised
            cancelled = exc
        mine = handed.get(workflow_id, set())
        mine.difference_update(future for future in waiting if future.done())
        if not mine:
            handed.pop(workflow_id, None)
    if cancelled is not None:
        raise cancelled


class _InLoop:
    """One store's records on this thread's event loop, written by the loop itself
    (`Store.record_steps_async`): all those waiting at once together, one batch at
    a time, while the loop runs the rest."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store) -> None:
        self._loop = loop
        self._store = store
        self._waiting: list[tuple[tuple[str, str, StepRecord], asyncio.Future[Outcome[str]]]] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def hand(
        cls, loop: asyncio.AbstractEventLoop, store: Store, write: tuple[str, str, StepRecord]
    ) -> asyncio.Future[Outcome[str]]:
        """Queue `write` for this loop's writer of `store` (started if none runs); its
        outcome, once written. The writer starts at a later turn of the loop: the
        other steps finishing in this one join its first batch."""
        writers: dict[int, _InLoop] = running.__dict__.setdefault("in_loop", {})
        writer = writers.get(id(store))
        if writer is None or writer._store is not store or writer._loop is not loop:
            writer = writers[id(store)] = _InLoop(loop, store)
        future: asyncio.Future[Outcome[str]] = loop.create_future()
        writer._waiting.append((write, future))
        pending: dict[str, set[asyncio.Future[Outcome[str]]]]
        pending = running.__dict__.setdefault("in_loop_pending", {})
        pending.setdefault(write[0], set()).add(future)
        if writer._task is None:
            # In a context of its own: the writer is no workflow code (a task started
            # in the step's context would count as a branch of its workflow).
            writer._task = loop.create_task(writer._write(), context=contextvars.Context())
        return future

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                writes = [write for write, _ in batch]
                try:
                    outcomes = await self._store.record_steps_async(writes)  # type: ignore[attr-defined]
                except BaseException as exc:  # every write of the batch gets it
                    outcomes = [Outcome(error=exc) for _ in batch]
                pending = running.__dict__.get("in_loop_pending", {})
                for (write, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
                    handed = pending.get(write[0])
                    if handed is not None:
                        handed.discard(future)
                        if not handed:
                            del pending[write[0]]
        finally:
            self._task = None


# The writes handed to a writer and not written yet, by workflow id (under `_Writer._lock`).
_pending: dict[str, set[Future[Outcome[str]]]] = {}


class _Writer:
    """The thread writing one store's handed records, all those waiting at once together."""

    _writers: dict[int, _Writer] = {}  # by the store's id, while their thread runs
    _lock = threading.Lock()

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: list[_Write] = []
        self._woken = threading.Condition(_Writer._lock)

    @classmethod
    def hand(cls, store: Store, write: tuple[str, str, StepRecord]) -> Future[Outcome[str]]:
        """Queue `write` for the store's writer (started if none runs); its outcome,
        once written. Under the lock a writer also ends by, so none ends with it queued."""
        # Imported by the first async step's write: a sync program never loads it.
        from concurrent.futures import Future

        future: Future[Outcome[str]] = Future()
        with cls._lock:
            writer = cls._writers.get(id(store))
            if writer is None or writer._store is not store:
                writer = cls._writers[id(store)] = _Writer(store)
                name = "autodurable-writer"
                threading.Thread(target=writer._run, name=name, daemon=True).start()
            writer._waiting.append((write, future))
            writer._woken.notify()
            _pending.setdefault(write[0], set()).add(future)
        return future

    def _run(self) -> None:
        while True:
            with self._woken:
                if not self._waiting:
                    self._woken.wait(_IDLE_SECONDS)
                if not self._waiting:  # idle: this writer ends; the next hand starts another
                    if _Writer._writers.get(id(self._store)) is self:
                        del _Writer._writers[id(self._store)]
                    return
                waiting, self._waiting = self._waiting, []
            # Steps wait for their writes even when cancelled (`record_result`), so a
            # cancelled write is one whose loop is gone: nobody to tell; not written,
            # as after a crash before its record. The others' outcomes are always set.
            batch = [
                (write, future)
                for write, future in waiting
                if future.set_running_or_notify_cancel()
            ]
            if not batch:
                continue
            try:
                if len(batch) == 1:  # one record: the store's plain write is cheaper
                    outcomes = [Outcome(self._store.record_step(*batch[0][0]))]
                else:
                    outcomes = self._store.record_steps([write for write, _ in batch])
            except BaseException as exc:  # every write of the batch gets it
                outcomes = [Outcome(error=exc) for _ in batch]
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                future.set_result(outcome)
            with _Writer._lock:
                for write, future in waiting:
                    handed = _pending.get(write[0])
                    if handed is not None:
                        handed.discard(future)
                        if not handed:
                            del _pending[write[0]]
