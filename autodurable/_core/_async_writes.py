"""Async steps' records, written without holding up the event loop's other steps.

An async step records its result by a blocking store write. Alone on its
event loop, writing in place is the cheapest way (no hand-off between threads),
and that is what it does. When other async steps of the same loop are running,
a write in place would stall them all for its round trip, one write after
another: the step's write goes to a writer thread instead, the loop runs the
others meanwhile, and writes that arrive together share a commit where the store
shares them (`_store._group_commit`, PostgreSQL, or SQLite with
``synchronous=full``). Where it does not, a write in place is cheaper than a
hand-off, so it stays in place.

Invariants:
- A step returns only once its record is written (durable before its workflow
  goes on), whichever thread writes it; the record is written once, by the same
  `StepCall.succeeded` either way (it takes the run from the call, not from
  the context).
- Global mutable state: a count of the async steps running on each thread's
  loop (thread-local: one loop per thread) and one lazily started pool of
  writer threads per process.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._steps import StepCall

# Writers enough for every step of a busy loop to hand its write over at once;
# more wait their turn (their writes would share the next commit anyway).
_WRITERS = 32

# ``running.count``: the async steps running (or recording) on this thread's loop;
# `_steps._run_async_step` counts itself in and out.
running = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


async def record_result(call: StepCall, result: Any) -> None:
    """`call.succeeded(result)`: in place when the step runs alone on its loop or its
    store does not share commits, else in a writer thread while the loop goes on."""
    run = call.run
    if run is None or running.count <= 1 or not run.runtime.store.shares_commits:
        call.succeeded(result)
        return
    # Submitted as it is: the write is autodurable's own, never a branch of the
    # workflow (`_concurrency`), and it needs no context of the step's.
    await asyncio.wrap_future(_writers().submit(call.succeeded, result))


def _writers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_WRITERS, thread_name_prefix="autodurable-writer")
    return _pool
