"""Time-travel replay: a recorded workflow's code run again in this process, with
every step, message and clock reading answered from the record.

``autodurable replay ID`` (and `time_travel`) loads the workflow's history
(from the store, or from a file written by ``workflows export``) into a scratch
store and runs the workflow's current code against it, as a replay check does.
It can stop where the code calls step N (``--until-step N``) and show where
and what the workflow knew there, or open a debugger in the workflow's own
code at that point (``--pdb``), so a person can step through yesterday's run.

Invariants:
- Nothing of the outside world runs: every answer comes from the record; the
  first step or wait the record does not hold ends the replay instead of
  running (see `_replay`). The configured store is never written.
- The stop point is a step of the workflow's own code (not of a branch it
  started): the N of ``autodurable workflows steps ID``.
- The frame shown, and the one the debugger opens in, is the nearest caller
  of the step outside autodurable's own modules (and wrapt): the workflow's
  code, never the runtime's.
- Values shown are `repr`s cut to a bounded length; nothing is executed to
  show them but the objects' own ``__repr__`` (the workflow's own values).
"""

from __future__ import annotations

import os
import pdb
import reprlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from .._errors import AutodurableError
from .._store import StepRecord
from ._histories import History, export_history, read_history
from ._replay import STOPPED, ReplayOutcome, replay_watched

Debugger = Callable[[FrameType], None]

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 160
_SHOWN.maxlist = _SHOWN.maxdict = _SHOWN.maxtuple = _SHOWN.maxset = 8
_SHOWN.maxlevel = 3


@dataclass(frozen=True)
class StopPoint:
    """Where a time-travel replay stopped: the workflow's code calling step `step`."""

    step: int
    name: str
    status: str  # the step's recorded status
    file: str
    line: int
    function: str
    locals: dict[str, str] = field(default_factory=dict)  # name -> bounded repr

    def __str__(self) -> str:
        where = f"{os.path.basename(self.file)}:{self.line} in {self.function}()"
        lines = [f"stopped where the code calls step {self.step} {self.name!r} "
                 f"(recorded: {self.status}), at {where}"]  # fmt: skip
        lines += [f"  {name} = {value}" for name, value in self.locals.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Travel:
    """What a time-travel replay did: the replay's outcome, and where it stopped."""

    outcome: ReplayOutcome
    stopped: StopPoint | None = None
    debugged: bool = False  # a debugger was opened at the stop point

    def __str__(self) -> str:
        if self.stopped is not None:
            return f"{self.outcome.workflow_id} ({self.outcome.name}): {self.stopped}"
        return str(self.outcome)


class _Stop(BaseException):
    """Ends the replay at the stop point (a BaseException: workflow code's
    ``except Exception`` does not swallow it)."""

    def __init__(self, point: StopPoint) -> None:
        super().__init__(str(point))
        self.point = point


def load_history(source: str) -> History:
    """The history named by `source`: a file written by ``workflows export`` when such
    a file exists, else the id of a workflow in the configured store."""
    if os.path.isfile(source):
        return read_history(source)
    return export_history(source)


def time_travel(
    history: History,
    *,
    until_step: int | None = None,
    debugger: Debugger | None = None,
    workflow: Any = None,
) -> Travel:
    """Replay `history` with the current code, executing nothing.

    With `until_step`, stop where the workflow's code calls that step (its
    recorded answer not yet given) and report the place and the workflow's
    locals; with `debugger` too, call it with the workflow's frame at that
    point instead of stopping (`open_pdb` opens pdb there), and go on to the
    end of the record. `workflow`, if given, must be the recorded one.
    """
    own = sorted({s.position for s in history.steps if not s.branch})
    if until_step is not None and until_step not in own:
        span = f"steps 1 to {own[-1]}" if own else "no recorded step"
        raise AutodurableError(
            f"{history.workflow_id} has {span}: --until-step takes one of them "
            f"(autodurable workflows steps {history.workflow_id} lists them)"
        )
    reached: list[StopPoint] = []

    def watch(run: Any, position: int, recorded: StepRecord) -> None:
        mine = run.workflow_id == history.workflow_id and not run.branch
        if not mine or position != until_step or reached:
            return
        frame = _workflow_frame(sys._getframe(1))
        point = _stop_point(position, recorded, frame)
        reached.append(point)
        if debugger is None:
            raise _Stop(point)
        debugger(frame)

    # A debugger replaces the process's trace function, and takes it away when told to
    # continue: the one in place before (a coverage tool's, another debugger's) is put
    # back once the replay ends.
    tracing = sys.gettrace()
    try:
        outcome = replay_watched(history, workflow, watch if until_step is not None else None)
    except _Stop as stop:
        return Travel(_stopped_outcome(history), stop.point)
    finally:
        if debugger is not None:
            sys.settrace(tracing)
    return Travel(outcome, reached[0] if reached else None, debugged=bool(reached))


def open_pdb(frame: FrameType) -> None:
    """Open pdb in `frame` (the workflow's code): it stops at the next line there, once
    the step being replayed has returned its recorded result."""
    _Pdb(frame).set_trace(frame)


class _Pdb(pdb.Pdb):
    """pdb whose first stop is the next line of one frame, not the next line run."""

    def __init__(self, first: FrameType) -> None:
        super().__init__()
        self._first: FrameType | None = first

    def set_step(self) -> None:
        # `set_trace` starts by stepping, which would stop first in the runtime's code
        # between here and the workflow's; the first time, stop next in the workflow's
        # frame instead (decided before tracing starts). The `step` command is as usual.
        first, self._first = self._first, None
        if first is None:
            super().set_step()
        else:
            self.set_next(first)


def _stopped_outcome(history: History) -> ReplayOutcome:
    record = history.workflow
    return ReplayOutcome(record.workflow_id, record.name, len(history.steps), STOPPED)


def _workflow_frame(frame: FrameType) -> FrameType:
    """The nearest frame from `frame` up that is not autodurable's or wrapt's own."""
    found: FrameType | None = frame
    while found is not None:
        module = str(found.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] not in ("autodurable", "wrapt"):
            return found
        found = found.f_back
    return frame


def _stop_point(position: int, recorded: StepRecord, frame: FrameType) -> StopPoint:
    code = frame.f_code
    shown = {
        name: _SHOWN.repr(value)
        for name, value in frame.f_locals.items()
        if not name.startswith("__")
    }
    return StopPoint(
        position, recorded.name, recorded.status, code.co_filename, frame.f_lineno,
        code.co_name, shown,
    )  # fmt: skip
