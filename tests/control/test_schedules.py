"""Schedules, on both stores: one run per tick with three executors, the tick passed to
the workflow, catch-up after a stopped period, pause and resume, trigger and backfill
from the shell, bad input."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import zoneinfo
from collections import Counter
from pathlib import Path

import pytest

import autodurable
from autodurable._control import _schedules
from autodurable._control._recovery_report import RecoveryReport
from autodurable._control._schedules import fire_due
from autodurable._core._runtime import get_runtime
from autodurable._store import ScheduleRecord, open_store

from ..cli.test_cli_workflows import cli, cli_json
from ..helpers import child_env, wait_until, write_script

ticks_seen: list[dt.datetime] = []


@autodurable.workflow
def report(tick: dt.datetime) -> str:
    ticks_seen.append(tick)
    return tick.isoformat()


@pytest.fixture(autouse=True)
def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks_seen.clear()
    # Schedules declared here are forgotten afterwards: a later test's watcher would
    # otherwise store them in its own database and fire them there.
    monkeypatch.setattr(_schedules, "_declared", {})


def test_each_tick_runs_once_with_its_time_in_the_schedules_zone(database):
    name = autodurable.schedule(report, cron="* * * * * *", timezone="Europe/Paris")
    assert name == f"{__name__}:report"
    autodurable.recover(watch=True)
    wait_until(lambda: len(ticks_seen) >= 3, timeout=30)
    first = ticks_seen[0]
    assert first.tzinfo == zoneinfo.ZoneInfo("Europe/Paris") and first.microsecond == 0
    seconds = sorted({t.timestamp() for t in ticks_seen})
    assert seconds == [seconds[0] + n for n in range(len(seconds))]  # every tick, no gap
    ids = [w.workflow_id for w in autodurable.list_workflows(name=name, limit=100)]
    assert f"{name}@{first.isoformat()}" in ids and len(ids) == len(set(ids))


JOBS = """
import os, time
import autodurable

@autodurable.workflow
def beat(tick):
    with open(os.environ["EFFECTS"], "a") as fh:
        fh.write(f"{tick.isoformat()} {os.getpid()}\\n")

autodurable.schedule(beat, cron="* * * * * *", name="beat")
"""


def test_three_executors_run_each_tick_exactly_once(tmp_path: Path, database_url: str):
    write_script(tmp_path, "beats.py", JOBS)
    effects = tmp_path / "effects"
    env = child_env(
        AUTODURABLE_DATABASE_URL=database_url,
        EFFECTS=str(effects),
        PYTHONPATH=os.pathsep.join([str(tmp_path), child_env()["PYTHONPATH"]]),
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "autodurable", "worker", "--import", "beats"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(3)
    ]
    try:
        wait_until(lambda: effects.exists() and len(effects.read_text().split("\n")) > 6, 60)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    lines = [line.split() for line in effects.read_text().splitlines()]
    per_tick = Counter(tick for tick, _ in lines)
    assert set(per_tick.values()) == {1}  # each tick once, whichever executor fired it
    seconds = sorted(dt.datetime.fromisoformat(t).timestamp() for t in per_tick)
    assert seconds == [seconds[0] + n for n in range(len(seconds))]
    store = open_store(database_url)
    try:
        ids = [w.workflow_id for w in store.list_workflows(name="beats:beat", limit=1000)]
        assert sorted(ids) == sorted(f"beat@{tick}" for tick in per_tick)
    finally:
        store.close()


NOW = dt.datetime(2026, 12, 6, 12, 30, tzinfo=dt.UTC).timestamp()  # half past: no tick


@pytest.mark.parametrize(("policy", "runs"), [("all", 72), ("latest", 1), ("skip", 0)])
def test_catch_up_after_a_stopped_period(database, policy, runs):
    store = get_runtime().store
    hourly = ScheduleRecord(
        "hourly", f"{__name__}:report", "0 * * * *", "UTC", policy, created_at=NOW - 3 * 86400
    )
    store.define_schedule(hourly)
    fired = RecoveryReport()
    assert fire_due(get_runtime(), fired, now=NOW) == runs
    for handle in fired.resumed:
        handle.result(timeout=60)
    assert len(ticks_seen) == runs
    if policy == "latest":
        assert ticks_seen == [dt.datetime(2026, 12, 6, 12, 0, tzinfo=zoneinfo.ZoneInfo("UTC"))]
    (stored,) = store.schedules()
    assert stored.last_tick == dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC).timestamp()
    assert fire_due(get_runtime(), RecoveryReport(), now=NOW) == 0  # handled: nothing again


def test_pause_resume_trigger_and_backfill_from_the_shell(database, capsys):
    store = get_runtime().store
    store.define_schedule(
        ScheduleRecord("hourly", f"{__name__}:report", "0 * * * *", "UTC", "latest", created_at=NOW)
    )
    status, out, _ = cli(capsys, "schedules", "pause", "hourly")
    assert status == 0 and "paused" in out
    assert fire_due(get_runtime(), RecoveryReport(), now=NOW + 7200) == 0
    listed = cli_json(capsys, "schedules", "list")["schedules"]
    assert listed[0]["paused"] is True and listed[0]["next_tick"] is None
    status, out, _ = cli(capsys, "schedules", "resume", "hourly")
    assert status == 0 and "ticks of the pause are skipped" in out
    since = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC).isoformat()
    until = dt.datetime(2026, 12, 1, 5, 30, tzinfo=dt.UTC).isoformat()
    filled = cli_json(capsys, "schedules", "backfill", "hourly", "--since", since, "--until", until)
    assert len(filled["created"]) == 5 and filled["already_there"] == 0
    again = cli_json(capsys, "schedules", "backfill", "hourly", "--since", since, "--until", until)
    assert again["created"] == [] and again["already_there"] == 5
    triggered = cli_json(capsys, "schedules", "trigger", "hourly")["workflow_id"]
    assert triggered.startswith("hourly@manual-")
    report = autodurable.recover()  # the recorded ticks are adopted and run
    report.wait(timeout=60)
    # recover() runs the ticks side by side: in any order
    assert len(ticks_seen) == 6
    assert sorted(ticks_seen)[0] == dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)
    status, _, err = cli(capsys, "schedules", "pause", "nope")
    assert status == 2 and err.startswith("autodurable: no schedule named 'nope'")


def test_bad_schedules_are_refused_with_the_fix(database, tmp_path):
    with pytest.raises(autodurable.AutodurableError, match="five fields"):
        autodurable.schedule(report, cron="every hour")
    with pytest.raises(autodurable.AutodurableError, match="IANA name"):
        autodurable.schedule(report, cron="0 * * * *", timezone="Mars/Olympus")
    with pytest.raises(autodurable.AutodurableError, match="catch_up must be one of"):
        autodurable.schedule(report, cron="0 * * * *", catch_up="sometimes")
    with pytest.raises(TypeError, match="decorated with @workflow"):
        autodurable.schedule(time.time, cron="0 * * * *")
    from autodurable._core._config import load_settings

    (tmp_path / "pyproject.toml").write_text(
        "[tool.autodurable.schedules.nightly]\nworkflow = 'report'\ncron = '0 3 * * *'\n"
    )
    with pytest.raises(autodurable.ConfigError, match="must be 'module:qualname'"):
        load_settings(cwd=tmp_path)
