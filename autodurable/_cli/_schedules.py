"""``autodurable schedules list|pause|resume|trigger|backfill``.

Invariants are those of the CLI (`_main`), and:
- ``list`` reads only and never creates a database.
- ``trigger`` and ``backfill`` record workflows that nobody owns yet: whichever
  serving process (``recover(watch=True)``, ``autodurable worker``) adopts them
  runs them. A backfilled tick gets the tick's own id, so a tick that ran
  already is not run again.
- An unknown schedule, or a moment that does not parse, is one line on
  stderr and exit 2, with nothing changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import zoneinfo
from typing import Any

from .._control._registry import find_workflow
from .._control._schedules import record_tick, ticks
from .._core._runtime import get_runtime
from .._errors import AutodurableError
from .._store import ScheduleRecord
from ._format import emit, parse_when, table, when

_MOST_BACKFILLED = 10_000


def add_parsers(commands: Any) -> None:
    """The ``schedules`` command and its actions."""
    schedules = commands.add_parser(
        "schedules",
        help="the schedules: list, pause, resume, trigger, backfill",
        description="Workflows started at every tick of a cron expression (declared with "
        "autodurable.schedule() or [tool.autodurable.schedules.NAME]), as stored.",
    )
    actions = schedules.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every schedule, with its last and next tick")
    pause = actions.add_parser("pause", help="fire nothing until resumed")
    resume = actions.add_parser("resume", help="fire again (the ticks of the pause are skipped)")
    trigger = actions.add_parser("trigger", help="start the workflow once now, off the schedule")
    backfill = actions.add_parser(
        "backfill",
        help="start the workflows of past ticks (each tick once: one that ran is skipped)",
    )
    backfill.add_argument(
        "--since",
        required=True,
        type=parse_when,
        help="ticks after: 2h (ago), 7d, or 2024-05-01T12:00",
    )
    backfill.add_argument(
        "--until", type=parse_when, help="ticks up to (default: now): same forms as --since"
    )
    for action in (pause, resume, trigger, backfill):
        action.add_argument("name", metavar="NAME", help="the schedule's name")
    for action in (listing, pause, resume, trigger, backfill):
        action.add_argument("--json", action="store_true", help="one JSON document on stdout")


def main_schedules(args: argparse.Namespace) -> int:
    """Run one ``schedules`` action."""
    runtime = get_runtime()
    if not runtime.state_exists():
        print(f"autodurable: no state database at {runtime.location}", file=sys.stderr)
        return 1
    found = {record.name: record for record in runtime.store.schedules()}
    if args.action == "list":
        rows = [_row(record) for record in found.values()]
        text = table(
            ["SCHEDULE", "WORKFLOW", "CRON", "ZONE", "CATCH-UP", "PAUSED", "LAST TICK", "NEXT"],
            [
                [
                    r["name"], r["workflow"], r["cron"], r["timezone"], r["catch_up"],
                    "yes" if r["paused"] else "no", when(r["last_tick"]), when(r["next_tick"]),
                ]
                for r in rows
            ],
        )  # fmt: skip
        emit(args, {"schedules": rows}, text)
        return 0
    record = found.get(args.name)
    if record is None:
        known = ", ".join(found) or "none"
        print(f"autodurable: no schedule named {args.name!r} (schedules: {known})", file=sys.stderr)
        return 2
    if args.action in ("pause", "resume"):
        runtime.store.pause_schedule(record.name, args.action == "pause", time.time())
        verb = (
            "paused" if args.action == "pause" else "resumed (the ticks of the pause are skipped)"
        )
        emit(
            args,
            {"schedule": record.name, "paused": args.action == "pause"},
            f"{record.name}: {verb}",
        )
        return 0
    fn = _code_here(record)
    if args.action == "trigger":
        now = dt.datetime.now(zoneinfo.ZoneInfo(record.timezone))
        workflow_id = f"{record.name}@manual-{now.isoformat()}"
        record_tick(runtime, record, now, fn, owned=False, workflow_id=workflow_id)
        emit(args, {"schedule": record.name, "workflow_id": workflow_id}, f"started {workflow_id}")
        return 0
    until = args.until if args.until is not None else time.time()
    if until <= args.since:
        print("autodurable: --until must be after --since", file=sys.stderr)
        return 2
    created: list[str] = []
    existing = 0
    for tick in ticks(record, args.since, until):
        if len(created) + existing >= _MOST_BACKFILLED:
            break
        claim = record_tick(runtime, record, tick, fn, owned=False)
        if claim is None:
            existing += 1
        else:
            created.append(claim.workflow.workflow_id)
    emit(
        args,
        {"schedule": record.name, "created": created, "already_there": existing},
        f"{record.name}: started {len(created)} tick(s); {existing} had run or were running",
    )
    return 0


def _row(record: ScheduleRecord) -> dict[str, Any]:
    after = record.last_tick if record.last_tick is not None else record.created_at
    try:
        upcoming = next(ticks(record, max(after, time.time()), float("inf"))).timestamp()
    except (AutodurableError, StopIteration):
        upcoming = None
    return {
        "name": record.name,
        "workflow": record.workflow_name,
        "cron": record.cron,
        "timezone": record.timezone,
        "catch_up": record.catch_up,
        "paused": record.paused,
        "last_tick": record.last_tick,
        "next_tick": None if record.paused else upcoming,
    }


def _code_here(record: ScheduleRecord) -> Any:
    """The workflow's function when it can be imported here (for its version), else None."""
    try:
        return find_workflow(record.workflow_name)
    except (LookupError, AutodurableError):
        return None
