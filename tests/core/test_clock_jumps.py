"""Durable sleeps and a wall clock that jumps: a sleep ends at its recorded wake-up
time or once as long has passed on the monotonic clock, whichever comes first."""

from __future__ import annotations

import asyncio
import threading
import time as real_time
from typing import Any

import pytest

import autodurable
from autodurable._core import _timebase

from ..helpers import run_workflow


class _ClockSetBack(_timebase.RealClock):
    """The machine's clocks, its wall clock set back `seconds` once the wake-up time was
    taken (the first look at it): the recorded wake-up is then an hour ahead."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.looks = 0

    def time(self) -> float:  # type: ignore[override]
        self.looks += 1
        return real_time.time() - (self.seconds if self.looks > 1 else 0.0)


@autodurable.workflow
def naps() -> str:
    autodurable.sleep(0.3)
    return "awake"


@autodurable.workflow
async def naps_async() -> str:
    await autodurable.sleep_async(0.3)
    return "awake"


def _finishes_within(seconds: float, call: Any) -> Any:
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the sleep did not end: it follows the wall clock only"
    return outcome[0]


@pytest.mark.parametrize("body", ["sync", "async"])
def test_a_wall_clock_set_back_an_hour_does_not_stretch_a_durable_sleep(
    database, monkeypatch, body
):
    monkeypatch.setattr(_timebase, "clock", _ClockSetBack(3600))
    started = real_time.monotonic()
    if body == "sync":
        result = _finishes_within(10, lambda: run_workflow(naps, "nap"))
    else:
        result = _finishes_within(10, lambda: asyncio.run(run_workflow(naps_async, "nap")))
    assert result == "awake"
    assert real_time.monotonic() - started >= 0.25  # it did sleep
