"""The execution context: which workflow run and which step the current code is in.

Invariants:
- `current_run()` is the workflow run whose code is executing in this thread or
  task, or None outside workflows. Tasks and threads started with a copied
  context share the same `Run`, so step positions are handed out in the order
  the calls are made.
- `current_step()` is the position of the step executing now, or None in
  workflow code; code inside a step is never recorded. `recording()` is true
  exactly in workflow code: in a run and outside any step.
- A `Run` holds its history in memory: replay reads no database.
- `unrecorded_workflow()` names the workflow whose code runs now without a
  record (its inputs could not be recorded), so errors can say why.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._runtime import Runtime
    from ._store import StepRecord


@dataclass(eq=False)
class Run:
    """One execution (first run or replay) of one workflow."""

    workflow_id: str
    runtime: Runtime
    history: dict[int, StepRecord]
    executor_id: str
    position: int = 0
    replayed: int = 0
    deadline: float | None = None  # the workflow is cancelled when this passes
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_position(self) -> int:
        """Allocate the next step position (1-based)."""
        with self._lock:
            self.position += 1
            return self.position

    def peek_position(self) -> int:
        """The position the next step call will get."""
        return self.position + 1


_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("autodurable_run", default=None)
_step: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "autodurable_step", default=None
)


_unrecorded: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "autodurable_unrecorded", default=None
)


# The variables themselves, for the step call's hot path (a function call less
# each); everything else goes through the functions below.
RUN_VAR, STEP_VAR = _run, _step


def current_run() -> Run | None:
    """The workflow run executing in this context, if any."""
    return _run.get()


def current_step() -> int | None:
    """The position of the step executing in this context, if any."""
    return _step.get()


def recording() -> bool:
    """Whether the code running here is workflow code (in a run, outside any step).

    Called on every call of an inferred step from plain code, so kept to two
    variable reads: everywhere else a rewritten function is the original.
    """
    return _run.get() is not None and _step.get() is None


def enter_run(run: Run | None) -> contextvars.Token[Run | None]:
    """Make `run` current; returns the token for `exit_run`."""
    return _run.set(run)


def exit_run(token: contextvars.Token[Run | None]) -> None:
    """Undo `enter_run`."""
    _run.reset(token)


def enter_step(position: int | None) -> contextvars.Token[int | None]:
    """Mark code from here on as running inside step `position`."""
    return _step.set(position)


def exit_step(token: contextvars.Token[int | None]) -> None:
    """Undo `enter_step`."""
    _step.reset(token)


def unrecorded_workflow() -> str | None:
    """The name of the workflow running here unrecorded, if any."""
    return _unrecorded.get()


@contextlib.contextmanager
def running_unrecorded(name: str) -> Iterator[None]:
    """Mark code from here on as the body of workflow `name`, run without a record."""
    token = _unrecorded.set(name)
    try:
        yield
    finally:
        _unrecorded.reset(token)
