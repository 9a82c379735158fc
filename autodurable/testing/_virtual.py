"""Virtual time for tests: durable waits that take no real time.

    with virtual_time() as clock:           # time skips: waits end at once
        handle = autodurable.start(onboarding, "ada")   # sleeps 30 days, then waits a day
        assert handle.result(timeout=5) == "reminded"
        assert clock.elapsed >= 31 * 86400

    with virtual_time(auto=False) as clock:  # time moves only when the test says so
        ...
        clock.advance(days=1)

Invariants:
- Under the clock, durable sleeps, `recv` and `get_event` timeouts, retries'
  backoff and workflow deadlines are measured in virtual seconds; step
  records keep real times.
- ``auto=True`` (the default) skips time: a wait that nothing ends sooner
  moves the clock to its end at once (a wake-up from the store still ends it
  first). ``auto=False``: waits end when `advance` moves the clock past their
  end, or when woken.
- The real clock is back when the block ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .._core import _timebase

if TYPE_CHECKING:
    from .._store import Subscription

_REAL_SLICE = 0.005  # how often a manual clock's waiter looks at the time, in real seconds


class VirtualClock:
    """A clock that tests move: its `time` starts at the real time and goes on only as
    waits skip ahead (``auto``) or `advance` says."""

    def __init__(self, start: float | None = None, auto: bool = True) -> None:
        self.auto = auto
        self.started = time.time() if start is None else start
        self._now = self.started
        self._moved = threading.Condition()

    # -- what the runtime asks ----------------------------------------------------------

    def time(self) -> float:
        """Virtual seconds since the epoch."""
        with self._moved:
            return self._now

    def monotonic(self) -> float:
        """The same virtual time (it never goes back)."""
        return self.time()

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass: skipped at once, or until `advance` gets there."""
        self._until(self.time() + max(0.0, seconds), None)

    async def sleep_async(self, seconds: float) -> None:
        """`sleep` for the event loop (a manual clock is polled between real slices)."""
        end = self.time() + max(0.0, seconds)
        while not self._reached(end):
            await asyncio.sleep(_REAL_SLICE)

    def wait(self, wakeups: Subscription, seconds: float) -> bool:
        """Wait up to `seconds` of virtual time for a wake-up from the store."""
        return self._until(self.time() + max(0.0, seconds), wakeups)

    async def wait_async(self, wakeups: Subscription, seconds: float) -> bool:
        """`wait`, in a worker thread: virtual time is moved by the test's thread."""
        import asyncio

        return await asyncio.to_thread(self.wait, wakeups, seconds)

    def slice(self, left: float, poll: float) -> float:
        """Skipping time, the whole wait at once; else look again every `poll`."""
        return left if self.auto else min(left, poll)

    # -- what the test does ---------------------------------------------------------------

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0,
                days: float = 0.0) -> float:  # fmt: skip
        """Move the clock forward; the new virtual time. Waits that end by then end."""
        step = seconds + 60 * minutes + 3600 * hours + 86400 * days
        if step < 0:
            raise ValueError("a clock moves forward only: advance by 0 or more")
        with self._moved:
            self._now += step
            self._moved.notify_all()
            return self._now

    def now(self) -> dt.datetime:
        """The virtual time as an aware datetime (UTC)."""
        return dt.datetime.fromtimestamp(self.time(), dt.UTC)

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock started."""
        return self.time() - self.started

    # -- inside ------------------------------------------------------------------------------

    def _reached(self, end: float) -> bool:
        with self._moved:
            if self._now >= end:
                return True
            if self.auto:
                self._now = end
                self._moved.notify_all()
                return True
            return False

    def _until(self, end: float, wakeups: Subscription | None) -> bool:
        """Wait until virtual `end` or a wake-up (True)."""
        if wakeups is not None and wakeups.wait(0):
            return True
        while True:
            if self._reached(end):
                return bool(wakeups is not None and wakeups.wait(0))
            if wakeups is not None:
                if wakeups.wait(_REAL_SLICE):
                    return True
            else:
                with self._moved:
                    self._moved.wait(_REAL_SLICE)


@contextmanager
def virtual_time(start: float | None = None, *, auto: bool = True) -> Iterator[VirtualClock]:
    """Durable waits measured by a virtual clock for the block (see `VirtualClock`)."""
    clock = VirtualClock(start, auto)
    previous, _timebase.clock = _timebase.clock, clock
    try:
        yield clock
    finally:
        _timebase.clock = previous
