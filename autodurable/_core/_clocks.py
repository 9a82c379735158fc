"""Durable replacements for nondeterminism: clocks, randomness, ids, sleep.

Invariants:
- In workflow code each call is a recorded step (``autodurable.now`` ...), so a
  replay sees the same values as the first run. Inside a step or outside any
  workflow they are the plain functions.
- `sleep` records the wake-up time before sleeping: after a crash only the
  remainder is slept, and a wake-up time in the past does not sleep at all.
  A workflow cancelled while it sleeps (or whose deadline comes first) stops
  sleeping with `WorkflowCancelled`.
- `idempotency_key()` is ``"{workflow_id}:{position}"``: inside a step, that
  step's position; in workflow code, the position of the next step called, so
  ``charge(amount, key=idempotency_key())`` passes the charge step its own key.
  In work the workflow runs concurrently the position is the step's place,
  ``"{workflow_id}:P.k"`` (see `_context`).
"""

from __future__ import annotations

import datetime as dt
import random as _random
import uuid as _uuid

from .._errors import AutodurableError
from . import _context, _timebase
from ._boundary import sleep_until, sleep_until_async
from ._context import (
    current_run,
    current_step,
    refuse_forked,
    unrecorded_workflow,
    workflow_code,
)
from ._options import EMPTY
from ._steps import call_step, call_step_async

_SHORT = 0.05  # shorter sleeps are slept plainly: no look at the workflow in between


def _recorded(name: str, fn: object) -> object:
    if workflow_code() is None:
        return fn()  # type: ignore[operator]
    return call_step(fn, (), {}, name, EMPTY)  # type: ignore[arg-type]


def now(tz: dt.tzinfo | None = None) -> dt.datetime:
    """`datetime.now(tz)`, recorded in workflow code."""
    return _recorded(  # type: ignore[return-value]
        "autodurable.now", lambda: dt.datetime.fromtimestamp(_timebase.clock.time(), tz)
    )


def time_time() -> float:
    """`time.time()`, recorded in workflow code (used by the import hook)."""
    return _recorded("autodurable.time", _timebase.clock.time)  # type: ignore[return-value]


def random() -> float:
    """`random.random()`, recorded in workflow code."""
    return _recorded("autodurable.random", _random.random)  # type: ignore[return-value]


def uuid4() -> _uuid.UUID:
    """`uuid.uuid4()`, recorded in workflow code."""
    return _recorded("autodurable.uuid4", _uuid.uuid4)  # type: ignore[return-value]


def sleep(seconds: float) -> None:
    """Sleep durably: the wake-up time is recorded, a restart sleeps only the rest."""
    clock = _timebase.clock
    wake: float = _recorded("autodurable.sleep", lambda: clock.time() + seconds)  # type: ignore[assignment]
    remaining = min(wake - clock.time(), seconds)  # a wall clock set back never stretches it
    run = workflow_code()
    if run is None or remaining < _SHORT or run.pid != _context.pid:  # a fork's: plainly
        if remaining > 0:
            clock.sleep(remaining)
        return
    sleep_until(run, wake, seconds)


async def sleep_async(seconds: float) -> None:
    """`sleep` for ``async def`` workflows."""
    clock = _timebase.clock
    if workflow_code() is None:
        await clock.sleep_async(seconds)
        return

    async def wake_time() -> float:
        return clock.time() + seconds

    wake = await call_step_async(wake_time, (), {}, "autodurable.sleep", EMPTY)
    remaining = min(wake - clock.time(), seconds)  # a wall clock set back never stretches it
    run = current_run()
    if run is None or remaining < _SHORT or run.pid != _context.pid:  # a fork's: plainly
        if remaining > 0:
            await clock.sleep_async(remaining)
        return
    await sleep_until_async(run, wake, seconds)


def workflow_id() -> str | None:
    """The id of the workflow running in this context, or None outside workflows."""
    run = current_run()
    return run.workflow_id if run is not None else None


def idempotency_key() -> str:
    """A key that is the same for every attempt, replay and crash of one step.

    Pass it to external APIs (payments, email) so that a step retried after a
    crash has its effect once. It is ``"<workflow id>:<position>"`` (the step's
    position; in workflow code, the next step's), and ``"<workflow id>:P.k"``
    in work the workflow runs concurrently (threads, pools, asyncio tasks): the
    k-th step of the branch started at the workflow's position P (``"P.Q.k"``
    in a branch that branch started), the same whichever work runs first.
    """
    run = current_run()
    if run is None:
        unrecorded = unrecorded_workflow()
        if unrecorded is not None:
            raise AutodurableError(
                f"idempotency_key() needs a recorded workflow, and workflow {unrecorded!r} "
                "runs unrecorded because its inputs cannot be recorded (a warning said which). "
                "Pass it plain data, and make clients and connections at start-up or in steps"
            )
        raise AutodurableError(
            "idempotency_key() is defined only in workflow code and in the steps it calls"
        )
    refuse_forked("idempotency_key()", run)
    position = current_step() or run.peek_position()
    return f"{run.workflow_id}:{position}"
