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

from collections.abc import Callable, Generator
from typing import Protocol, TypeVar

from .._backoff import Backoff
from . import _timebase
from ._boundary import pause, pause_async
from ._context import current_run
from ._runtime import Runtime

T = TypeVar("T")
_FIRST_POLL, _LAST_POLL = 0.01, 0.5  # seconds between looks at a workflow run elsewhere
# With notifications a look is only a safety net (for a lost notification, or an
# owner that died without a word): this often, or every quarter lease when the
# owner's death would let us adopt the workflow.
_NOTIFIED_POLL = 5.0


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
    when `timeout` passes. In workflow code (a parent waiting for its child) the
    wait stops with `Interrupted` once the process is exiting.
    """
    found = look()
    if found is not None:
        return found
    about = _wait_begins(runtime, workflow_id, busy)
    run = current_run()
    with runtime.store.subscribe(workflow_id) as wakeups:
        delays = _delays(runtime, look, busy, timeout)
        try:
            while True:
                delay = next(delays)
                if run is None:
                    _timebase.clock.wait(wakeups, delay)
                else:
                    pause(run, wakeups, delay)
        except StopIteration as done:
            found = done.value
    return _wait_ends(runtime, about, found)


async def wait_for_async(
    runtime: Runtime,
    workflow_id: str,
    look: Callable[[], T | None],
    busy: Owner | None = None,
    timeout: float | None = None,
) -> T | None:
    """`wait_for` for async code: its looks run in place, and it waits on the event
    loop, holding no thread."""
    found = look()
    if found is not None:
        return found
    about = _wait_begins(runtime, workflow_id, busy)
    run = current_run()
    with runtime.store.subscribe(workflow_id) as wakeups:
        delays = _delays(runtime, look, busy, timeout)
        try:
            while True:
                delay = next(delays)
                if run is None:
                    await _timebase.clock.wait_async(wakeups, delay)
                else:
                    await pause_async(run, wakeups, delay)
        except StopIteration as done:
            found = done.value
    return _wait_ends(runtime, about, found)


def _delays(
    runtime: Runtime, look: Callable[[], T | None], busy: Owner | None, timeout: float | None
) -> Generator[float, None, T | None]:
    """The looks of `wait_for` after subscribing (the first misses nothing); yields how
    long to wait for a wake-up before the next; returns what was found, or None at
    the timeout."""
    clock = _timebase.clock
    deadline = None if timeout is None else clock.monotonic() + timeout
    backoff = Backoff(*_intervals(runtime, busy))
    while (found := look()) is None:
        delay = backoff.next()
        if deadline is not None:
            left = deadline - clock.monotonic()
            if left <= 0:
                return None
            delay = clock.slice(left, delay)
        yield delay
    return found


def _wait_begins(runtime: Runtime, workflow_id: str, busy: Owner | None) -> dict[str, str] | None:
    """With telemetry on, the wait is an event of the current span: what it is about."""
    telemetry = runtime.telemetry
    if telemetry is None:
        return None
    about = {"autodurable.wait.kind": "busy" if busy else "workflow",
             "autodurable.wait.workflow_id": workflow_id}  # fmt: skip
    telemetry.event("autodurable.wait", about)
    return about


def _wait_ends(runtime: Runtime, about: dict[str, str] | None, found: T | None) -> T | None:
    if found is not None and about is not None and runtime.telemetry is not None:
        runtime.telemetry.event("autodurable.wait.end", about)
    return found
