"""Replay checks: the current code run against recorded histories, no step executed.

`replay_check(history)` loads a history into a scratch store (a temporary
SQLite file), runs the workflow's current code under the recorded id, and
answers from the record: every recorded step replays, and the first thing the
code would do that the record does not hold (a new step, a wait) ends the
check instead of running. It reports the first divergence with both steps:
a step inserted, removed, renamed or moved, other arguments, a workflow that
now returns before its recorded steps, or another result.

Invariants:
- Nothing of the outside world runs: the scratch runtime is stopping from the
  start, so a step not in the record, a sleep or a wait stops the replay there
  (`Interrupted`) and counts as "the code goes on past the record".
- The configured store is never written; the configuration in place before
  the check is in place after it.
- A history's values are decoded by the codec under its usual rules (it
  imports nothing that is not imported, unless configured to).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._core import _context, _faults
from .._core._options import options
from .._core._runtime import scratch_runtime
from .._errors import AutodurableError, Interrupted, NondeterminismError
from .._store import FAILED, PENDING, SUCCEEDED, StepRecord, WorkflowRecord
from ._histories import History, HistoryError, read_history
from ._registry import find_workflow, is_program_run

FINISHED, CONTINUES, DIVERGED = "finished", "continues", "diverged"
STOPPED = "stopped"  # a time-travel replay stopped where asked (`_timetravel`)

# (the run, the position in its code, the recorded step): see `_context.replay_watch`
ReplayWatch = Callable[[Any, int, StepRecord], None]


@dataclass(frozen=True)
class ReplayOutcome:
    """What the current code made of one recorded history."""

    workflow_id: str
    name: str
    steps: int  # recorded steps in the history
    # "finished" (as recorded), "continues" (past the record), "diverged", or "stopped"
    ended: str
    divergence: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the code replays the history without diverging."""
        return self.ended != DIVERGED

    def __str__(self) -> str:
        if self.ended == FINISHED:
            return f"{self.workflow_id}: replays its {self.steps} step(s) and ends as recorded"
        if self.ended == STOPPED:
            return f"{self.workflow_id}: stopped where asked, before the end of its record"
        if self.ended == CONTINUES:
            return (
                f"{self.workflow_id}: replays its {self.steps} recorded step(s); the code goes "
                "on from there"
            )
        return f"{self.workflow_id}: diverges: {self.divergence}"


def replay_check(
    history: History | str | os.PathLike[str] | dict[str, Any], workflow: Any = None
) -> ReplayOutcome:
    """Run the current code of the history's workflow (or `workflow`, which must be the
    one recorded) against the history, executing no step; the outcome."""
    return replay_watched(history, workflow)


def replay_watched(
    history: History | str | os.PathLike[str] | dict[str, Any],
    workflow: Any = None,
    watch: ReplayWatch | None = None,
) -> ReplayOutcome:
    """`replay_check`, with `watch` told of every recorded step the code replays
    (`_context.replay_watch`), in the thread that replays it."""
    found = history if isinstance(history, History) else read_history(history)
    record = found.workflow
    if is_program_run(record.name):
        raise HistoryError(
            f"{found.source}: a program run by `autodurable run` ({record.name}); replay "
            "checks take workflows of functions"
        )
    fn = workflow if workflow is not None else _code_of(found)
    recorded_name = getattr(fn, "_self_autodurable_name", None) or _qualified(fn)
    if workflow is not None and recorded_name != record.name:
        raise HistoryError(
            f"{found.source}: the history of workflow {record.name!r}, not of "
            f"{recorded_name!r}; check it against its own workflow"
        )
    with (
        tempfile.TemporaryDirectory() as folder,
        scratch_runtime(f"sqlite:///{os.path.join(folder, 'replay.db')}") as runtime,
    ):
        _load(runtime, found)
        return _replay(runtime, found, fn, watch)


def _code_of(history: History) -> Any:
    try:
        return find_workflow(history.workflow.name)
    except LookupError as exc:
        raise HistoryError(f"{history.source}: cannot find the workflow's code: {exc}") from None


def _qualified(fn: Any) -> str:
    target = getattr(fn, "__wrapped__", fn)
    return f"{target.__module__}:{target.__qualname__}"


def _load(runtime: Any, history: History) -> None:
    """The history as a pending, unowned workflow of the scratch store."""
    store, owner = runtime.store, runtime.executor.id
    record, now = history.workflow, time.time()
    pending = WorkflowRecord(
        record.workflow_id, record.name, PENDING, record.inputs, None, None, owner, now, now
    )
    store.create_workflow(pending)
    for step in history.steps:
        store.record_step(record.workflow_id, owner, step)
    store.release_workflow(record.workflow_id, owner)


class _Watch:
    """Notes a workflow returning before its recorded steps (see `_faults`)."""

    def __init__(self) -> None:
        self.left: tuple[str, str] | None = None

    def __call__(self, when: str, workflow_id: str, place: int | str, name: str) -> None:
        if when == "left" and self.left is None:
            self.left = (str(place), name)


def _replay(runtime: Any, history: History, fn: Any, watch: ReplayWatch | None) -> ReplayOutcome:
    record = history.workflow
    outcome = _Outcome(record.workflow_id, record.name, len(history.steps))
    try:
        inputs = runtime.codec.decode(record.inputs)
        args, kwargs = list(inputs.get("args", [])), dict(inputs.get("kwargs", {}))
    except (AutodurableError, AttributeError, TypeError) as exc:
        raise HistoryError(f"{history.source}: its inputs cannot be decoded ({exc})") from None
    runtime.stopping.set()  # nothing new runs: a step or a wait beyond the record stops it
    left, previous = _Watch(), _faults.observer
    _faults.observer = left
    _context.replay_watch = watch
    quiet = logging.getLogger("autodurable")
    level = quiet.level
    # setLevel, not the attribute: it also clears the cache of isEnabledFor's answers,
    # which would otherwise keep the quiet level after it is restored.
    quiet.setLevel(logging.ERROR)  # the outcome says it all
    try:
        value = options(fn, workflow_id=record.workflow_id)(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
    except Interrupted:
        if record.status in (SUCCEEDED, FAILED):
            return outcome.make(
                DIVERGED,
                f"the record ends ({record.status}) after its {len(history.steps)} step(s), "
                "but the code goes on to another step or wait (a step inserted, or another "
                "path taken)",
            )
        return outcome.make(CONTINUES)
    except NondeterminismError as exc:
        return outcome.make(DIVERGED, str(exc))
    except Exception as exc:
        recorded = runtime.codec.decode_error(record.error) if record.error else None
        if record.status == FAILED and type(recorded) is type(exc):
            return outcome.make(FINISHED)
        return outcome.make(
            DIVERGED, f"the code raises {type(exc).__name__}: {exc} (recorded: {record.status})"
        )
    finally:
        _faults.observer = previous
        _context.replay_watch = None
        quiet.setLevel(level)
    if left.left is not None:
        place, name = left.left
        return outcome.make(
            DIVERGED,
            f"the code returns before step {place} ({name!r}) and the steps after it, which "
            "the record holds (a step removed, or another path taken)",
        )
    recorded = record.output
    finished = record.status == SUCCEEDED and recorded is not None
    if finished and runtime.codec.encode(value, "the result") != recorded:
        return outcome.make(DIVERGED, f"the code returns {value!r}; the record says {recorded}")
    return outcome.make(FINISHED)


@dataclass(frozen=True)
class _Outcome:
    workflow_id: str
    name: str
    steps: int

    def make(self, ended: str, divergence: str | None = None) -> ReplayOutcome:
        return ReplayOutcome(self.workflow_id, self.name, self.steps, ended, divergence)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
