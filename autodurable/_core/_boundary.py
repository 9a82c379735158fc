"""Where a running workflow learns that it must stop: cancellation and deadlines.

Invariants:
- A run learns of a cancellation from the status its step writes return (no
  read of its own), and, while it waits in `recv` or `sleep`, from a look at
  the workflow whenever the store wakes it and at least every second (stores
  that poll) or every few seconds (stores that notify, as a safety net).
- A workflow's deadline is checked with this machine's clock at every step
  boundary and bounds every wait. When it has passed, the workflow is
  cancelled in the store first, so the cancellation is durable and visible,
  and then the run stops.
- Stopping raises `WorkflowCancelled` with the reason recorded in the store.
- A wait also ends when the process exits (`Interrupted`): the workflow is
  released, pending, and its recorded deadline keeps counting.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

from .._backoff import Backoff
from .._errors import Interrupted, OwnershipLost, WorkflowCancelled
from .._store import CANCELLED, PENDING, Subscription
from . import _timebase
from ._context import Run

T = TypeVar("T")
_FIRST_POLL = 0.01  # seconds before the second look, for stores that poll
_LONGEST_POLL = 1.0  # stores that poll: a cancellation is seen within this
_NOTIFIED_POLL = 5.0  # stores that notify: the safety net for a lost notification
_SLICE = 0.25  # a wait notices that the process exits within this


def check_boundary(run: Run, status: str) -> None:
    """After a fenced write: stop when the workflow was cancelled or its deadline passed."""
    if status != PENDING:
        raise recorded_cancellation(run)
    if run.deadline is not None and _timebase.clock.time() >= run.deadline:
        raise expire(run)


def recorded_cancellation(run: Run) -> WorkflowCancelled:
    """The `WorkflowCancelled` recorded for the run's workflow (with its reason)."""
    runtime = run.runtime
    record = runtime.store.get_workflow(run.workflow_id)
    if record is not None and record.status == CANCELLED and record.error:
        try:
            found = runtime.codec.decode_error(record.error)
        except Exception:  # a damaged record still stops the run
            found = None
        if isinstance(found, WorkflowCancelled):
            return found
    return WorkflowCancelled(run.workflow_id)


def deadline_reason(deadline: float) -> str:
    """The reason recorded when a workflow's deadline passes."""
    import datetime as dt

    when = dt.datetime.fromtimestamp(deadline, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"its deadline passed ({when} UTC; workflow_timeout)"


def expire(run: Run) -> WorkflowCancelled:
    """Cancel the run's workflow because its deadline passed; the exception to stop with."""
    assert run.deadline is not None
    runtime = run.runtime
    cancelled = WorkflowCancelled(run.workflow_id, deadline_reason(run.deadline))
    runtime.store.cancel_workflow(run.workflow_id, runtime.codec.encode_error(cancelled))
    return recorded_cancellation(run)  # an operator may have cancelled it first


def _look_at_status(run: Run) -> None:
    record = run.runtime.store.get_workflow(run.workflow_id)
    if record is None or (record.executor_id != run.executor_id and record.status == PENDING):
        raise OwnershipLost(f"workflow {run.workflow_id!r} is no longer owned by this executor")
    if record.status != PENDING:
        raise recorded_cancellation(run)


def interrupted(run: Run) -> Interrupted:
    """The signal that stops a run because its process is exiting."""
    return Interrupted(f"the process is exiting while workflow {run.workflow_id!r} waits")


def pause(run: Run, wakeups: Subscription, seconds: float) -> bool:
    """Wait up to `seconds` for a wake-up (True); raise `Interrupted` if the process exits."""
    stopping, clock = run.runtime.stopping, _timebase.clock
    end = clock.monotonic() + seconds
    while True:
        if stopping.is_set():
            raise interrupted(run)
        left = end - clock.monotonic()
        if left <= 0:
            return False
        if clock.wait(wakeups, clock.slice(left, _SLICE)):
            return True


async def pause_async(run: Run, wakeups: Subscription, seconds: float) -> bool:
    """`pause` on the event loop."""
    stopping, clock = run.runtime.stopping, _timebase.clock
    end = clock.monotonic() + seconds
    while True:
        if stopping.is_set():
            raise interrupted(run)
        left = end - clock.monotonic()
        if left <= 0:
            return False
        if await clock.wait_async(wakeups, clock.slice(left, _SLICE)):
            return True


def _intervals(run: Run) -> tuple[float, float]:
    if run.runtime.store.notifies:
        return _NOTIFIED_POLL, _NOTIFIED_POLL
    return _FIRST_POLL, _LONGEST_POLL


class _WakeUp:
    """When a durable sleep ends: at its recorded wall-clock time, or once that much
    time has passed on the monotonic clock, whichever comes first, so that a wall
    clock set back (or forward) in this process does not stretch the sleep."""

    __slots__ = ("_by_monotonic", "until")

    def __init__(self, until: float, longest: float) -> None:
        self.until = until
        left = max(0.0, min(until - _timebase.clock.time(), longest))
        self._by_monotonic = _timebase.clock.monotonic() + left

    def left(self, now: float) -> float:
        """Seconds still to sleep at wall-clock time `now` (<= 0: wake up)."""
        return min(self.until - now, self._by_monotonic - _timebase.clock.monotonic())


def sleep_until(run: Run, until: float, longest: float) -> None:
    """Sleep until `until` (seconds since the epoch) in workflow code, `longest` seconds
    at most (the sleep's own length: a wall clock set back never stretches it).

    Stops with `WorkflowCancelled` when the workflow is cancelled meanwhile or
    its deadline passes first.
    """
    backoff, clock = Backoff(*_intervals(run)), _timebase.clock
    wake = _WakeUp(until, longest)
    with run.runtime.store.subscribe(run.workflow_id) as wakeups:
        while True:
            now = clock.time()
            if run.deadline is not None and now >= run.deadline:
                raise expire(run)
            left = wake.left(now)
            if left <= 0:
                return
            if run.deadline is not None:
                left = min(left, run.deadline - now)
            pause(run, wakeups, clock.slice(left, backoff.next()))
            if wake.left(clock.time()) > 0:  # woken early, or a periodic look
                _look_at_status(run)


async def sleep_until_async(run: Run, until: float, longest: float) -> None:
    """`sleep_until` for async workflows: sleeps on the event loop in short slices.

    A wake-up from the store is noticed at the end of a slice (a look at a
    local flag, not at the database); the workflow itself is looked at then,
    and every so often as with `sleep_until`, from a worker thread.
    """
    # asyncio is imported by the async paths that need it, not at the top: the
    # commands that read stored workflows import these modules, never asyncio.
    import asyncio

    backoff, clock = Backoff(*_intervals(run)), _timebase.clock
    next_look = clock.monotonic() + backoff.next()
    wake = _WakeUp(until, longest)
    with run.runtime.store.subscribe(run.workflow_id) as wakeups:
        while True:
            now = clock.time()
            if run.deadline is not None and now >= run.deadline:
                raise await asyncio.to_thread(expire, run)
            left = wake.left(now)
            if left <= 0:
                return
            if run.runtime.stopping.is_set():
                raise interrupted(run)
            if run.deadline is not None:
                left = min(left, run.deadline - now)
            await clock.sleep_async(clock.slice(left, _SLICE))
            woken = wakeups.wait(0)
            if (woken or clock.monotonic() >= next_look) and wake.left(clock.time()) > 0:
                await asyncio.to_thread(_look_at_status, run)
                next_look = clock.monotonic() + backoff.next()


def wait_in_run(run: Run, until: float, look: Callable[[bool], T | None]) -> T:
    """Call ``look(first)`` until it returns something, waiting for wake-ups in between.

    `look` checks the workflow itself (raising when it was cancelled) and
    returns something once `until` has passed (a recorded timeout, say); the
    waits between looks end at `until` at the latest. The workflow's deadline
    bounds the wait: when it passes first, the workflow is cancelled and
    `WorkflowCancelled` raised.
    """
    with run.runtime.store.subscribe(run.workflow_id) as wakeups:
        pauses = _looks(run, until, look)
        try:
            while True:
                pause(run, wakeups, next(pauses))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def wait_in_run_async(run: Run, until: float, look: Callable[[bool], T | None]) -> T:
    """`wait_in_run` for async code: its looks run in place (a read, or the write that
    takes what it found), and it waits on the event loop, holding no thread."""
    with run.runtime.store.subscribe(run.workflow_id) as wakeups:
        pauses = _looks(run, until, look)
        try:
            while True:
                await pause_async(run, wakeups, next(pauses))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def _looks(run: Run, until: float, look: Callable[[bool], T | None]) -> Generator[float, None, T]:
    """The looks of `wait_in_run`; yields how long to wait for a wake-up before the next."""
    backoff = Backoff(*_intervals(run))
    first = True
    while True:
        found = look(first)
        first = False
        if found is not None:
            return found
        now = _timebase.clock.time()
        if run.deadline is not None and now >= run.deadline:
            raise expire(run)
        end = until if run.deadline is None else min(until, run.deadline)
        yield max(0.001, _timebase.clock.slice(end - now, backoff.next()))
