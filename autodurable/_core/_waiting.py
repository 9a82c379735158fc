"""Waiting for a workflow that another executor runs, or for something it records.

Invariants:
- Waiting is woken by the store (NOTIFY on PostgreSQL; on SQLite by this
  process) and otherwise looks again on a backoff: never a tight loop.
- A waiter that may adopt the workflow (`busy`) looks at least every quarter
  lease, and often when the owner is on this host: its death shows in the
  process table at once, and a killed process notifies nobody.
- The first look after subscribing to wake-ups misses nothing.
- With telemetry on, a wait that does not end at its first look is an event
  of the current span (and its end another).
- Workflow code that waits (a parent for its child) stops with `Interrupted`
  once its process is exiting, leaving the workflow pending, as sleeps and
  receives do; a process is never held open by such a wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from .._backoff import Backoff
from .._store import Subscription
from . import _timebase
from ._boundary import interrupted
from ._context import Run, current_run
from ._runtime import Runtime

T = TypeVar("T")
_FIRST_POLL, _LAST_POLL = 0.01, 0.5  # seconds between looks at a workflow run elsewhere
# With notifications a look is only a safety net (for a lost notification, or an
# owner that died without a word): this often, or every quarter lease when the
# owner's death would let us adopt the workflow.
_NOTIFIED_POLL = 5.0
_SLICE = 0.25  # seconds: a waiting workflow notices its process exiting within this


class Owner(Protocol):
    """What a waiter knows of the executor that runs the workflow."""

    owner_here: bool


def _intervals(runtime: Runtime, busy: Owner | None) -> tuple[float, float]:
    """(first, longest) wait between looks at a workflow that another executor runs."""
    if not runtime.store.notifies or (busy is not None and busy.owner_here):
        # No wake-ups to wait for, or an owner on this host whose death the
        # process table shows at once: look often, as the owner is gone in an
        # instant (a notifying store says nothing when its process is killed).
        return _FIRST_POLL, _LAST_POLL
    longest = _NOTIFIED_POLL
    if busy is not None:
        longest = max(_LAST_POLL, min(longest, runtime.settings.lease_seconds / 4))
    return longest, longest


def wait_for(
    runtime: Runtime,
    workflow_id: str,
    look: Callable[[], T | None],
    busy: Owner | None = None,
    timeout: float | None = None,
) -> T | None:
    """Call `look` until it returns something, waiting for the store's wake-ups in between.

    `busy`: the workflow runs on another executor that we may adopt it from
    (`busy.owner_here` says whether on this host, as `look` last saw), so look
    at least every quarter lease, and often for an owner here. Returns None
    when `timeout` passes.
    """
    found = look()
    if found is not None:
        return found
    telemetry = runtime.telemetry
    if telemetry is not None:  # an event of the current span, with the time it took
        about = {"autodurable.wait.kind": "busy" if busy else "workflow",
                 "autodurable.wait.workflow_id": workflow_id}  # fmt: skip
        telemetry.event("autodurable.wait", about)
    clock = _timebase.clock
    deadline = None if timeout is None else clock.monotonic() + timeout
    run = current_run()  # workflow code waiting (a parent for its child): interruptible
    with runtime.store.subscribe(workflow_id) as wakeups:
        backoff = Backoff(*_intervals(runtime, busy))
        while (found := look()) is None:  # the first look after subscribing misses nothing
            delay = backoff.next()
            if deadline is not None:
                left = deadline - clock.monotonic()
                if left <= 0:
                    return None
                delay = clock.slice(left, delay)
            if run is None:
                clock.wait(wakeups, delay)
            else:
                _wait_in_run(run, wakeups, delay)
    if telemetry is not None:
        telemetry.event("autodurable.wait.end", about)
    return found


def _wait_in_run(run: Run, wakeups: Subscription, seconds: float) -> None:
    """Wait up to `seconds` for a wake-up in short slices; raise `Interrupted` (the
    workflow stays pending) once the process is exiting."""
    clock = _timebase.clock
    end = clock.monotonic() + seconds
    while not run.runtime.stopping.is_set():
        left = end - clock.monotonic()
        if left <= 0 or clock.wait(wakeups, clock.slice(left, _SLICE)):
            return
    raise interrupted(run)


async def wait_for_async(
    runtime: Runtime, workflow_id: str, look: Callable[[], T | None], busy: Owner
) -> T:
    """`wait_for` with `busy` for async code: waits on the event loop, holding no thread."""
    with runtime.store.subscribe(workflow_id) as wakeups:
        backoff = Backoff(*_intervals(runtime, busy))
        while (found := look()) is None:
            await _timebase.clock.wait_async(wakeups, backoff.next())
    return found
