"""The execution context: which workflow run and which step the current code is in.

Invariants:
- `current_run()` is the workflow run whose code is executing in this thread or
  task, or None outside workflows. Work that workflow code starts concurrently
  (threads, pools, tasks: `_concurrency`) runs as a *branch*: a `Run` of the
  same workflow with a counter of its own, made by `Run.fork`, so positions
  never depend on which concurrent work calls its steps first.
- A step's place is its position in the code that calls it: ``5`` in the
  workflow's own code, ``"3.1"`` for the first step of the branch started at
  position 3 (``"3.2.1"`` for a branch that branch started at its position 2).
  A position is taken by a step or by a fork, never both, so places are unique
  and stable across replays and crashes (idempotency keys are made of them).
- `current_step()` is the place of the step executing now, or None in
  workflow code; code inside a step is never recorded. `recording()` (and the
  C-level `workflow_code`) is true exactly in workflow code: in a run and
  outside any step; `enter_run`/`enter_step` keep the three variables in step.
- A `Run` holds its history in memory (its branches' too): replay reads no
  database.
- A `Run` belongs to the process that made it (`Run.pid`). A child forked from
  workflow code (``os.fork``, a "fork" multiprocessing pool) inherits the run
  in its memory, but never writes to it: steps and watched calls there see
  ``run.pid != pid`` and run unrecorded (`_steps`, `_watch`; a `send` is sent
  unrecorded, a durable sleep sleeps plainly); what would act for the parent's
  workflow (`recv`, `set_event`, `idempotency_key`) is refused
  (`refuse_forked`). `pid` is this
  process's id, kept current by an at-fork hook, so the check costs no call.
- `unrecorded_workflow()` names the workflow whose code runs now without a
  record (its inputs could not be recorded), so errors can say why.
- `replay_watch` is None except while a time-travel replay runs
  (`autodurable replay ID`): then it is told of every recorded step, message
  or event a run finds in its history, before the recorded answer is given.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._errors import AutodurableError, NondeterminismError

if TYPE_CHECKING:
    from .._store import StepRecord
    from ._runtime import Runtime


# This process's id, reset in a forked child by the hook below: reading it is
# cheaper than calling os.getpid() on every step.
pid = os.getpid()


def _after_fork_in_child() -> None:
    global pid
    pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# Set only by a time-travel replay (`_control._timetravel`); None costs one check per
# replayed step and nothing on a first execution.
replay_watch: Callable[[Run, int, StepRecord], None] | None = None


def _this_process() -> int:
    return pid


class Run:
    """One execution (first run or replay) of one workflow, or of one branch of it.

    `history` holds the recorded steps of this code (the workflow's own, or the
    branch's) by position; `branches` the recorded steps of every branch of the
    workflow by branch path, shared by the whole run.

    (A plain class, not a dataclass: code rewritten by the hook imports this
    module, and ``dataclasses`` costs every such process about 5 ms to import.)
    """

    def __init__(
        self,
        workflow_id: str,
        runtime: Runtime,
        history: dict[int, StepRecord],
        executor_id: str,
        position: int = 0,
        replayed: int = 0,
        deadline: float | None = None,
        branch: str = "",
        branches: dict[str, dict[int, StepRecord]] | None = None,
        pid: int | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.runtime = runtime
        self.history = history
        self.executor_id = executor_id
        self.position = position
        self.replayed = replayed
        self.deadline = deadline  # the workflow is cancelled when this passes
        # "" for the workflow's own code; "3" for the work it started at position 3;
        # "3.2" for the work that branch started at its position 2.
        self.branch = branch
        self.branches: dict[str, dict[int, StepRecord]] = {} if branches is None else branches
        # The process the run belongs to; in any other (a forked child) it records nothing.
        self.pid = _this_process() if pid is None else pid
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Run(workflow_id={self.workflow_id!r}, executor_id={self.executor_id!r}, "
            f"position={self.position}, replayed={self.replayed}, deadline={self.deadline!r}, "
            f"branch={self.branch!r})"
        )

    def take_position(self) -> int:
        """Allocate the next position of this code (1-based), for a step or a fork."""
        with self._lock:
            self.position += 1
            return self.position

    def peek_position(self) -> int | str:
        """The place the next step call will get."""
        return self.place(self.position + 1)

    def place(self, position: int) -> int | str:
        """The place of this code's step at `position` (see the module's invariants)."""
        return f"{self.branch}.{position}" if self.branch else position

    def recorded(self, position: int, name: str) -> StepRecord | None:
        """The step recorded at `position` of this code, checked to be the one named
        `name`; None past the recorded history. Another name there means the code
        changed since it was recorded: `NondeterminismError` (the one replay rule of
        steps, messages and events)."""
        found = self.history.get(position)
        if found is not None and found.name != name:
            raise NondeterminismError(self.workflow_id, self.place(position), found.name, name)
        if found is not None and replay_watch is not None:
            replay_watch(self, position, found)
        return found

    def fork(self) -> Run:
        """Take a position for concurrent work; the `Run` its code executes as."""
        path = str(self.place(self.take_position()))
        return Run(
            self.workflow_id,
            self.runtime,
            self.branches.get(path, {}),
            self.executor_id,
            deadline=self.deadline,
            branch=path,
            branches=self.branches,
            pid=self.pid,
        )

    def reserve(self) -> Run:
        """Take a position for a step called concurrently: a `Run` whose next step has it.

        The step then runs elsewhere (a pool's thread) with the position taken
        here, in the order of submission.
        """
        return Run(
            self.workflow_id,
            self.runtime,
            self.history,
            self.executor_id,
            position=self.take_position() - 1,
            deadline=self.deadline,
            branch=self.branch,
            branches=self.branches,
            pid=self.pid,
        )


Branches = dict[str, dict[int, "StepRecord"]]


def split_history(steps: list[StepRecord]) -> tuple[dict[int, StepRecord], Branches]:
    """A workflow's recorded steps as (its own by position, its branches' by path and position)."""
    history: dict[int, StepRecord] = {}
    branches: Branches = {}
    for step in steps:
        if step.branch:
            branches.setdefault(step.branch, {})[step.position] = step
        else:
            history[step.position] = step
    return history, branches


_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("autodurable_run", default=None)
_step: contextvars.ContextVar[int | str | None] = contextvars.ContextVar(
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


class Watch:
    """What one watched call saw: the first I/O it did itself, if any."""

    __slots__ = ("io",)

    def __init__(self) -> None:
        self.io: str | None = None


# The watched call running here (`_watch`), told by the I/O chokepoints of its I/O.
WATCH_VAR: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "autodurable_watch", default=None
)


def note_io(label: str) -> bool:
    """Called by an I/O chokepoint in workflow code: True when a watched call takes it.

    I/O inside a step is the step's (recorded with it); only the watched
    function's own I/O marks its watch.
    """
    watch = WATCH_VAR.get()
    if watch is None or STEP_VAR.get() is not None:
        return False
    if watch.io is None:
        watch.io = label
    return True


Tokens = tuple[contextvars.Token[Any], contextvars.Token[Run | None]]


def current_run() -> Run | None:
    """The workflow run executing in this context, if any."""
    return _run.get()


def current_step() -> int | str | None:
    """The place of the step executing in this context, if any (see the invariants)."""
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


def enter_step(place: int | str | None) -> Tokens:
    """Mark code from here on as running inside the step at `place` (not workflow code)."""
    return _step.set(place), _code.set(None)


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


def forked_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call `fn` outside any run: how a forked child runs the steps of its parent's run.

    Nothing there sees the parent's run (no `idempotency_key()` shared with it).
    """
    tokens = enter_run(None)
    try:
        return fn(*args, **kwargs)
    finally:
        exit_run(tokens)


async def forked_call_async(
    fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`forked_call` of an async function, outside any run while it is awaited."""
    tokens = enter_run(None)
    try:
        return await fn(*args, **kwargs)
    finally:
        exit_run(tokens)


def refuse_forked(what: str, run: Run) -> None:
    """Raise when `run` is inherited from the process this one was forked from.

    For what cannot run unrecorded without harm: a `recv` would consume the
    parent's message, a `set_event` publish for it, an idempotency key repeat
    the parent's.
    """
    if run.pid != pid:
        raise AutodurableError(
            f"{what} cannot be used in a process forked from workflow {run.workflow_id!r} "
            f"(pid {pid}, the workflow's is {run.pid}): nothing there is recorded, and it "
            "would act for the parent's workflow. Call it in the workflow's own process "
            "(use a thread instead of a fork), or start a workflow in the child"
        )


def warn_forked(kind: str, name: str, run: Run) -> None:
    """Say once per process and name that a step ran unrecorded in a forked child."""
    from ._report import warn_once  # here: it imports logging, which most runs need not

    warn_once(
        ("forked", pid, name),
        f"autodurable: {kind} {name!r} ran in a process forked from workflow "
        f"{run.workflow_id!r} (pid {pid}, the workflow's is {run.pid}), so it is not "
        "recorded and would run again on resume; use a thread instead, or start a "
        "workflow in the child process",
    )
