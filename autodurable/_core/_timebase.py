"""The clock that durable waits are measured by: the real one, or a test's virtual one.

Durable sleeps, receive and event timeouts, retry backoff, workflow deadlines
and schedule ticks read the time and wait through `clock`; the records of
when a step ran use the real clock always.

Invariants:
- By default `clock` is the real clock and costs one attribute lookup more
  than calling `time` directly.
- A virtual clock (`autodurable.testing.virtual_time`) may make waits return
  at once by moving its time forward; every waiting loop asks it how long its
  next wait lasts (`Clock.slice`), so that a 30-day sleep is one wait, not
  millions of polls.
"""

from __future__ import annotations

import time as _time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._store import Subscription


class Clock(Protocol):
    """What the runtime's waits need from a clock."""

    def time(self) -> float:
        """Seconds since the epoch."""

    def monotonic(self) -> float:
        """A clock that never goes back, in seconds."""

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass."""

    async def sleep_async(self, seconds: float) -> None:
        """Let `seconds` pass, on the event loop."""

    def wait(self, wakeups: Subscription, seconds: float) -> bool:
        """Wait up to `seconds` for a wake-up from the store; whether one came."""

    async def wait_async(self, wakeups: Subscription, seconds: float) -> bool:
        """`wait` on the running event loop."""

    def slice(self, left: float, poll: float) -> float:
        """How long the next wait of a loop lasts, with `left` to go and `poll` between
        looks at the store."""


class RealClock:
    """The system's clocks."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)
    sleep = staticmethod(_time.sleep)

    async def sleep_async(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        import asyncio  # see _boundary's note on asyncio

        await asyncio.sleep(seconds)

    def wait(self, wakeups: Subscription, seconds: float) -> bool:
        """The subscription's own wait."""
        return wakeups.wait(seconds)

    async def wait_async(self, wakeups: Subscription, seconds: float) -> bool:
        """The subscription's own async wait."""
        return await wakeups.wait_async(seconds)

    def slice(self, left: float, poll: float) -> float:
        """Look again every `poll` seconds."""
        return min(left, poll)


clock: Clock = RealClock()
