"""Async steps' records, written without holding up the event loop's other steps.

An async step records its result by a blocking store write. Alone on its
event loop, writing in place is the cheapest way (no hand-off between threads),
and that is what it does. When other async steps of the same loop are running,
a write in place would stall them all for its round trip, one write after
another. The step's record then goes to the store's writer thread instead: the
loop runs the others meanwhile, and the writer writes every record waiting for
it in one transaction (`Store.record_steps`), where the store shares commits
(PostgreSQL, SQLite with ``synchronous=full``). Where it does not, a write in
place is cheaper than a hand-off, so it stays in place.

Invariants:
- A step returns only once its record is written (durable before its workflow
  goes on), whichever thread writes it; the record is built, and its status
  acted on, by the step's own `StepCall` in the loop's thread.
- A writer writes only records handed to it, each once, and gives each its own
  outcome (a failing row fails no other, see `Store.record_steps`).
- Global mutable state: a count of the async steps running on each thread's
  loop (thread-local: one loop per thread), and one writer thread per store
  while it has work, which ends after a second idle.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .._store import Store
from .._store._protocol import Outcome, StepRecord

if TYPE_CHECKING:
    from ._steps import StepCall

# ``running.count``: the async steps running (or recording) on this thread's loop;
# `_steps._run_async_step` counts itself in and out.
running = threading.local()
_IDLE_SECONDS = 1.0  # a writer with nothing to write this long ends (another starts if needed)

_Write = tuple[tuple[str, str, StepRecord], "Future[Outcome[str]]"]


async def record_result(call: StepCall, result: Any) -> None:
    """`call.succeeded(result)`: in place when the step runs alone on its loop or its
    store does not share commits, else by the store's writer while the loop goes on."""
    run = call.run
    if run is None or running.count <= 1 or not run.runtime.store.shares_commits:
        call.succeeded(result)
        return
    row = call.result_row(result)
    handed = _Writer.hand(run.runtime.store, (run.workflow_id, run.executor_id, row))
    outcome = await asyncio.wrap_future(handed)
    call.recorded(outcome.get())


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
        future: Future[Outcome[str]] = Future()
        with cls._lock:
            writer = cls._writers.get(id(store))
            if writer is None or writer._store is not store:
                writer = cls._writers[id(store)] = _Writer(store)
                name = "autodurable-writer"
                threading.Thread(target=writer._run, name=name, daemon=True).start()
            writer._waiting.append((write, future))
            writer._woken.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._woken:
                if not self._waiting:
                    self._woken.wait(_IDLE_SECONDS)
                if not self._waiting:  # idle: this writer ends; the next hand starts another
                    del _Writer._writers[id(self._store)]
                    return
                batch, self._waiting = self._waiting, []
            try:
                if len(batch) == 1:  # one record: the store's plain write is cheaper
                    outcomes = [Outcome(self._store.record_step(*batch[0][0]))]
                else:
                    outcomes = self._store.record_steps([write for write, _ in batch])
            except BaseException as exc:  # every write of the batch gets it
                outcomes = [Outcome(error=exc) for _ in batch]
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                future.set_result(outcome)
