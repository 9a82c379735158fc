"""Schedules: a workflow started at every tick of a cron expression, once per tick
whatever the number of executors.

Invariants:
- A tick's workflow has the id ``"<schedule>@<tick, ISO 8601 with its offset>"``:
  executors firing the same tick at the same moment start it once (the store
  refuses a second workflow of the same id), and a backfill never repeats a
  tick that ran.
- The workflow is called with the tick's time (an aware datetime in the
  schedule's zone) as its one argument.
- After downtime (no executor served the schedule), the catch-up policy says
  what runs: ``"latest"`` the most recent missed tick only, ``"all"`` every
  missed tick (at most `_MOST_MISSED`), ``"skip"`` none that is more than
  `_GRACE` seconds late. Either way the missed ticks are recorded as handled.
- A paused schedule fires nothing; resuming it skips the ticks of the pause.
- Schedules are stored when declared (`schedule()`, or
  ``[tool.autodurable.schedules.NAME]``) by a serving process, so
  ``autodurable schedules`` sees them; the store's pause and last tick win
  over a declaration.
- Bad input (a malformed cron expression, an unknown zone, a function that is
  not a workflow) raises at declaration, naming the fix.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

from .._core import _timebase
from .._core._app_versions import version_for
from .._core._decorators import kind_of, workflow_name
from .._core._runtime import Runtime
from .._errors import AutodurableError
from .._store import PENDING, Claim, ScheduleRecord, WorkflowRecord
from ._handle import WorkflowHandle
from ._launch import submit_claimed
from ._recovery_report import RecoveryReport, Unrecoverable
from ._registry import find_workflow

CATCH_UP = ("latest", "all", "skip")
_MOST_MISSED = 1000  # ticks one look starts at most, per schedule ("all")
_GRACE = 60.0  # seconds: a tick this late still runs under "skip"

_declared: dict[str, ScheduleRecord] = {}
_lock = threading.Lock()


def _croniter() -> Any:
    try:  # imported by name: it ships no type information for type checkers to follow
        croniter = importlib.import_module("croniter").croniter
    except ImportError:
        raise AutodurableError(
            "schedules need the croniter package: pip install 'autodurable[schedules]'"
        ) from None
    return croniter


def check_schedule(cron: str, timezone: str, catch_up: str) -> None:
    """Raise `AutodurableError` naming the fix unless the three parse."""
    if not isinstance(cron, str) or not _croniter().is_valid(cron):
        raise AutodurableError(
            f"cron expression {cron!r} is not valid: five fields (minute hour day month "
            "weekday), or six with seconds last: '*/5 * * * *', '0 9 * * mon-fri', "
            "'* * * * * */10'"
        )
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise AutodurableError(
            f"time zone {timezone!r} is unknown: give an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None
    if catch_up not in CATCH_UP:
        raise AutodurableError(f"catch_up must be one of {', '.join(CATCH_UP)}, not {catch_up!r}")


def schedule(
    fn: Callable[[dt.datetime], Any],
    *,
    cron: str,
    timezone: str = "UTC",
    name: str | None = None,
    catch_up: str = "latest",
) -> str:
    """Start workflow ``fn(tick)`` at every tick of `cron` in `timezone`; the schedule's name.

    Served by every process that calls ``autodurable.recover(watch=True)`` (or
    runs ``autodurable worker``): each tick starts one workflow whatever their
    number, with the id ``"<name>@<tick>"`` and the tick's time (an aware
    datetime) as its argument. ``catch_up`` says what runs for ticks missed
    while nothing served the schedule: ``"latest"`` (the most recent one),
    ``"all"``, or ``"skip"``. The name defaults to the workflow's
    (``"module:qualname"``). Operate schedules with ``autodurable schedules
    list|pause|resume|trigger|backfill``.
    """
    if kind_of(fn) != "workflow":
        raise TypeError(f"schedule() takes a function decorated with @workflow, not {fn!r}")
    check_schedule(cron, timezone, catch_up)
    target = workflow_name(fn)
    record = ScheduleRecord(
        name or target, target, cron, timezone, catch_up, created_at=time.time()
    )
    with _lock:
        _declared[record.name] = record
    return record.name


def declare_schedules(runtime: Runtime) -> None:
    """Store the schedules declared in this process and in the configuration."""
    with _lock:
        records = dict(_declared)
    for name, configured in runtime.settings.schedules.items():
        records[name] = ScheduleRecord(
            name,
            configured.workflow,
            configured.cron,
            configured.timezone,
            configured.catch_up,
            created_at=time.time(),
        )
    for record in records.values():
        runtime.store.define_schedule(record)


def ticks(record: ScheduleRecord, after: float, until: float) -> Iterator[dt.datetime]:
    """The schedule's ticks in (`after`, `until`], as aware datetimes in its zone."""
    zone = zoneinfo.ZoneInfo(record.timezone)
    found = _croniter()(record.cron, dt.datetime.fromtimestamp(after, zone))
    while True:
        tick: dt.datetime = found.get_next(dt.datetime)
        if tick.timestamp() > until:
            return
        yield tick


def tick_id(name: str, tick: dt.datetime) -> str:
    """The id of the workflow a tick starts."""
    return f"{name}@{tick.isoformat()}"


def fire_due(runtime: Runtime, report: RecoveryReport, now: float | None = None) -> int:
    """Start the workflows of every schedule's due ticks; how many this process started."""
    now = _timebase.clock.time() if now is None else now
    started = 0
    for record in runtime.store.schedules():
        if record.paused:
            continue
        after = record.last_tick if record.last_tick is not None else record.created_at
        due = []
        for tick in ticks(record, after, now):
            due.append(tick)
            if len(due) >= _MOST_MISSED and record.catch_up == "all":
                break
        if not due:
            continue
        if record.catch_up == "latest":
            run = due[-1:]
        elif record.catch_up == "skip":
            run = [tick for tick in due[-1:] if now - tick.timestamp() <= _GRACE]
        else:
            run = due
        for tick in run:
            started += _start_tick(runtime, record, tick, report)
        runtime.store.advance_schedule(record.name, due[-1].timestamp())
    return started


def _start_tick(
    runtime: Runtime, record: ScheduleRecord, tick: dt.datetime, report: RecoveryReport
) -> int:
    """Record the tick's workflow as ours and run it; 0 when another executor has it."""
    workflow_id = tick_id(record.name, tick)
    try:
        fn = find_workflow(record.workflow_name)
    except (LookupError, AutodurableError) as exc:
        report.unrecoverable.append(Unrecoverable(workflow_id, record.workflow_name, str(exc)))
        return 0
    claim = record_tick(runtime, record, tick, fn, owned=True)
    if claim is None:
        return 0  # another executor fired this tick first
    future = submit_claimed(runtime, fn, claim, {"args": [tick], "kwargs": {}})
    report.resumed.append(WorkflowHandle(workflow_id, future))
    return 1


def record_tick(
    runtime: Runtime,
    record: ScheduleRecord,
    tick: dt.datetime,
    fn: Any,
    owned: bool,
    workflow_id: str | None = None,
) -> Claim | None:
    """Create a tick's workflow, owned by this executor (to run it now) or by nobody (for
    whichever executor adopts it); its claim, or None when it exists already. `fn`
    (None when its code is not at hand) gives the version recorded."""
    inputs = runtime.codec.encode({"args": [tick], "kwargs": {}}, f"the tick of {record.name!r}")
    now = time.time()
    owner = runtime.executor.id if owned else None
    version = version_for(runtime.settings, fn) if fn is not None else None
    created = WorkflowRecord(
        workflow_id or tick_id(record.name, tick), record.workflow_name, PENDING, inputs,
        None, None, owner, now, now, version,
    )  # fmt: skip
    if not runtime.store.create_workflow(created):
        return None
    return Claim(created, True, [], None)
