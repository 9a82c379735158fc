"""The execution context: which workflow run and which step the current code is in.

Invariants:
- `current_run()` is the workflow run whose code is executing in this thread or
  task, or None outside workflows. Tasks and threads started with a copied
  context share the same `Run`, so step positions are handed out in the order
  the calls are made.
- `current_step()` is the position of the step executing now, or None in
  workflow code; code inside a step is never recorded. `recording()` (and the
  C-level `workflow_code`) is true exactly in workflow code: in a run and
  outside any step; `enter_run`/`enter_step` keep the three variables in step.
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
from typing import TYPE_CHECKING, Any

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
# The run whose workflow code is executing here, None outside workflows and inside
# steps: `recording()` in one C call. Rewritten code and inferred steps read it on
# every call from plain code, where it must cost next to nothing.
_code: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "autodurable_workflow_code", default=None
)


_unrecorded: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "autodurable_unrecorded", default=None
)


# The variables themselves, for the step call's hot path (a function call less
# each); everything else goes through the functions below.
RUN_VAR, STEP_VAR, CODE_VAR = _run, _step, _code
# A callable that is truthy exactly in workflow code (a C method: no Python frame).
workflow_code = _code.get

Tokens = tuple[contextvars.Token[Any], contextvars.Token[Run | None]]


def current_run() -> Run | None:
    """The workflow run executing in this context, if any."""
    return _run.get()


def current_step() -> int | None:
    """The position of the step executing in this context, if any."""
    return _step.get()


def recording() -> bool:
    """Whether the code running here is workflow code (in a run, outside any step)."""
    return _code.get() is not None


def enter_run(run: Run | None) -> Tokens:
    """Make `run` current (its code is workflow code); returns the tokens for `exit_run`."""
    return _run.set(run), _code.set(run)


def exit_run(tokens: Tokens) -> None:
    """Undo `enter_run`."""
    _code.reset(tokens[1])
    _run.reset(tokens[0])


def enter_step(position: int | None) -> Tokens:
    """Mark code from here on as running inside step `position` (not workflow code)."""
    return _step.set(position), _code.set(None)


def exit_step(tokens: Tokens) -> None:
    """Undo `enter_step`."""
    _code.reset(tokens[1])
    _step.reset(tokens[0])


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
