"""Virtual time, on both stores: durable sleeps, receive and event timeouts,
retries' backoff, workflow deadlines and schedules measured by a test clock,
skipping ahead or moved by hand; the real clock back afterwards."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest

import autodurable
from autodurable._core import _timebase
from autodurable.testing import virtual_time

from ..helpers import run_workflow, wait_until

pytestmark = pytest.mark.usefixtures("database")

DAY = 86400.0


@autodurable.step
def remind(user: str) -> str:
    return f"reminded {user}"


@autodurable.workflow
def onboarding(user: str) -> tuple[str, object]:
    autodurable.sleep(30 * DAY)
    answer = autodurable.recv("feedback", timeout=DAY)
    return remind(user), answer


def test_a_month_of_sleep_and_a_day_of_waiting_take_no_real_time():
    started = time.monotonic()
    with virtual_time() as clock:
        assert run_workflow(onboarding, "ada", "ada") == ("reminded ada", None)
        assert clock.elapsed >= 31 * DAY
        steps = [s.name for s in autodurable.get_workflow("ada").steps()]
    assert steps == ["autodurable.sleep", "autodurable.recv:feedback", "remind"]
    assert time.monotonic() - started < 30  # 31 virtual days, not real ones
    assert isinstance(_timebase.clock, _timebase.RealClock)  # the real clock is back


def test_a_manual_clock_moves_only_when_the_test_advances_it():
    with virtual_time(auto=False) as clock:
        handle = autodurable.start(autodurable.options(onboarding, workflow_id="bob"), "bob")

        def waiting_in(name: str) -> bool:
            return name in [s.name for s in handle.steps()]

        wait_until(lambda: waiting_in("autodurable.sleep"))
        time.sleep(0.1)
        assert handle.status() == "pending"  # 30 days have not passed
        clock.advance(days=30)
        wait_until(lambda: waiting_in("autodurable.recv:feedback"))
        clock.advance(hours=1)
        autodurable.send("bob", {"stars": 5}, topic="feedback")
        assert handle.result(timeout=30) == ("reminded bob", {"stars": 5})


attempts: list[float] = []


@autodurable.step(
    retries=autodurable.Retry(max_attempts=3, initial_interval=3600.0, max_interval=3600.0)
)
def flaky() -> str:
    attempts.append(_timebase.clock.time())
    if len(attempts) < 3:
        raise ConnectionError("try again")
    return "ok"


@autodurable.workflow
def retrying() -> str:
    return flaky()


def test_retries_wait_their_backoff_in_virtual_time():
    attempts.clear()
    with virtual_time():
        assert run_workflow(retrying, "retry") == "ok"
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(gaps) == 2 and all(gap >= 3600 * 0.5 for gap in gaps)


@autodurable.workflow(workflow_timeout=2 * DAY)
def slow_approval() -> object:
    return autodurable.recv("approval", timeout=10 * DAY)


def test_a_deadline_passes_in_virtual_time():
    with virtual_time() as clock:
        with pytest.raises(autodurable.WorkflowCancelled, match="its deadline passed"):
            run_workflow(slow_approval, "late")
        assert 2 * DAY <= clock.elapsed < 10 * DAY


def test_get_event_timeouts_are_virtual():
    done = threading.Event()
    with virtual_time() as clock:
        assert autodurable.get_event("nobody", "status", timeout=7 * DAY) is None
        done.set()
        assert clock.elapsed >= 7 * DAY
    assert done.is_set()


def test_advance_refuses_to_go_back():
    with virtual_time(auto=False) as clock, pytest.raises(ValueError, match="forward only"):
        clock.advance(-1)


daily_ticks: list[dt.datetime] = []


@autodurable.workflow
def nightly(tick: dt.datetime) -> str:
    daily_ticks.append(tick)
    return tick.isoformat()


def test_schedules_fire_as_a_manual_clock_moves_days_ahead(monkeypatch):
    from autodurable._control import _schedules

    monkeypatch.setattr(_schedules, "_declared", {})  # forgotten after the test
    daily_ticks.clear()
    with virtual_time(auto=False) as clock:
        autodurable.schedule(nightly, cron="0 3 * * *", timezone="UTC")
        autodurable.recover(watch=True)
        for day in range(1, 4):
            clock.advance(days=1)
            wait_until(lambda day=day: len(daily_ticks) >= day, timeout=30)
    assert len(daily_ticks) == 3
    assert all(t.hour == 3 and t.minute == 0 for t in daily_ticks)
    assert [(b - a).days for a, b in itertools.pairwise(daily_ticks)] == [1, 1]
