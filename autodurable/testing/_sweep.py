"""The crash sweep: a workflow crashed at every step boundary, resumed, and checked.

`crash_sweep(workflow, *args)` runs the workflow once to learn its step
attempts (and once more, to know whether its result is the same from run to
run), then once per attempt and per side of it: crashed just before the
attempt's body ("before": its effect not done) or just after it and before
its record ("after": done, not recorded), then resumed under the same
workflow id. Each resumed run must return what the uncrashed run returned
(when two uncrashed runs agree), never raise `NondeterminismError`, run every
step as often as the uncrashed run did (the step crashed after its body: once
more at most), and leave the outside world (`effect`, or the test's own
`observe`) as the uncrashed run left it. The first boundary that breaks fails
with a message naming it.

Invariants:
- Each run has a workflow id of its own; `reset`, when given, is called
  before each run that starts afresh, so every case starts from the same
  world; the sweep's own effects ledger is cleared then too.
- The crash is a ``BaseException`` raised at the boundary (`Crash`): like a
  dead process, it leaves the workflow pending, and nothing after it in the
  run is recorded. Steps that other threads of the workflow were running at
  that moment may still finish and be recorded.
- The runtime in use is the test's (the ``durable`` fixture gives a throwaway
  one); the sweep changes no setting and removes its observer when it ends.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._core import _faults
from .._errors import NondeterminismError
from ._effects import ledger


class Crash(BaseException):
    """The simulated death of the process at a step boundary."""


class SweepFailure(AssertionError):
    """A boundary at which a crash and a resume did not give the uncrashed outcome."""


@dataclass(frozen=True)
class Attempt:
    """One step attempt of the uncrashed run, in the order they started."""

    index: int  # from 1
    place: str  # the step's position, or its path in concurrent work ("3.1")
    name: str
    occurrence: int  # how many attempts of the same (place, name) came before, plus one

    def boundary(self, when: str) -> str:
        """``after step 3 'charge' (its body done, its result not recorded)``."""
        side = (
            "before step {place} {name!r} (its body not run)"
            if when == "before"
            else "after step {place} {name!r} (its body done, its result not recorded)"
        )
        return side.format(place=self.place, name=self.name)


@dataclass
class SweepReport:
    """What a sweep that passed covered."""

    workflow: str
    result: Any
    attempts: list[Attempt]
    cases: int
    seconds: float
    effects: dict[str, int] = field(default_factory=dict)
    # Whether each resumed run's result was compared with the uncrashed one's (two
    # runs without a crash returned the same result).
    result_compared: bool = True

    def __str__(self) -> str:
        return (
            f"crash sweep of {self.workflow}: {self.cases} crashes at {len(self.attempts)} "
            f"step attempt(s), each resumed to the same result, in {self.seconds:.2f}s"
        )


class _Trace:
    """An observer that notes attempts and crashes the run at one boundary."""

    def __init__(self, crash: tuple[str, Attempt] | None = None) -> None:
        self.crash = crash
        self.started: list[tuple[str, str]] = []  # (place, name) of every attempt
        self._seen: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, when: str, workflow_id: str, place: int | str, name: str) -> None:
        key = (when, str(place), name)
        with self._lock:
            self._seen[key] += 1
            if self.crash is not None:
                crash_when, attempt = self.crash
                target = (crash_when, attempt.place, attempt.name)
                if key == target and self._seen[key] == attempt.occurrence:
                    self.crash = None  # once; a body stopped before it started did not run
                    raise Crash(attempt.boundary(crash_when))
            if when == "before":
                self.started.append((str(place), name))


@contextmanager
def _observing(trace: _Trace) -> Iterator[None]:
    previous, _faults.observer = _faults.observer, trace
    try:
        yield
    finally:
        _faults.observer = previous


class _Runner:
    """Runs the workflow under a given id, as a root, sync or async."""

    def __init__(self, workflow: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        from .._core._decorators import workflow as as_workflow
        from .._core._wrappers import kind_of

        # A function the hook or the codemod left undecorated (an inferred workflow
        # is workflow code only under a root): the sweep makes it one, as
        # [tool.autodurable.roles] would.
        durable = kind_of(workflow) == "workflow"
        self.workflow = workflow if durable else as_workflow(workflow)
        self.name = getattr(workflow, "__qualname__", repr(workflow))
        self.args, self.kwargs = args, kwargs

    def run(self, workflow_id: str) -> Any:
        from .._core._options import options

        outcome = options(self.workflow, workflow_id=workflow_id)(*self.args, **self.kwargs)
        if inspect.isawaitable(outcome):
            return asyncio.run(_awaited(outcome))
        return outcome


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def crash_sweep(
    workflow: Callable[..., Any],
    *args: Any,
    observe: Callable[[], Any] | None = None,
    reset: Callable[[], None] | None = None,
    select: Callable[[Attempt], bool] | None = None,
    **kwargs: Any,
) -> SweepReport:
    """Crash `workflow(*args, **kwargs)` at every step boundary, resume it, and check
    the outcome; raise `SweepFailure` naming the first boundary that breaks.

    `observe`, if given, returns what the outside world looks like after a run
    (rows of a table, files, calls a fake service received): it must be the
    same after every crashed and resumed run as after the uncrashed one.
    `reset`, if given, puts the world back as it was before a run. `select`, if
    given, picks the attempts whose boundaries are swept (all by default).
    """
    runner = _Runner(workflow, args, kwargs)
    started = time.monotonic()
    base = f"sweep-{uuid.uuid4().hex[:10]}"
    if reset is not None:
        reset()
    ledger.clear()
    trace = _Trace()
    with _observing(trace):
        result = runner.run(f"{base}-0")
    attempts = _attempts(trace.started)
    expected_runs = Counter(trace.started)
    expected_effects = ledger.counts()
    expected_world = observe() if observe is not None else None
    # A second run without a crash: when its result differs from the first's, the
    # result depends on what differs from run to run (a clock read in a step, say),
    # and only what a crash can break is compared: replay, runs, effects, world.
    if reset is not None:
        reset()
    ledger.clear()
    comparable = runner.run(f"{base}-00") == result
    cases = 0
    for attempt in [a for a in attempts if select is None or select(a)]:
        for when in ("before", "after"):
            cases += 1
            _case(runner, f"{base}-{attempt.index}{when[0]}", attempt, when, reset)
            got = _resumed(runner, f"{base}-{attempt.index}{when[0]}", attempt, when)
            _check(
                runner.name,
                attempt,
                when,
                result if comparable else got.value,
                got,
                expected_runs,
                expected_effects,
            )
            if observe is not None:
                world = observe()
                if world != expected_world:
                    raise SweepFailure(
                        f"crash sweep of {runner.name}: crashed {attempt.boundary(when)} and "
                        f"resumed, the outside world is {world!r}; without the crash it is "
                        f"{expected_world!r}"
                    )
    seconds = time.monotonic() - started
    return SweepReport(
        runner.name, result, attempts, cases, seconds, expected_effects, result_compared=comparable
    )


@dataclass
class _Resumed:
    value: Any
    runs: Counter[tuple[str, str]]
    effects: dict[str, int]


_crashed_runs: dict[str, Counter[tuple[str, str]]] = {}


def _case(
    runner: _Runner,
    workflow_id: str,
    attempt: Attempt,
    when: str,
    reset: Callable[[], None] | None,
) -> None:
    """Run the case until its crash (which must come)."""
    if reset is not None:
        reset()
    ledger.clear()
    trace = _Trace(crash=(when, attempt))
    with _observing(trace):
        try:
            runner.run(workflow_id)
        except Crash:
            _crashed_runs[workflow_id] = Counter(trace.started)
            return
        except Exception as exc:
            raise SweepFailure(
                f"crash sweep of {runner.name}: on the way to the crash {attempt.boundary(when)}, "
                f"the run raised {type(exc).__name__}: {exc}"
            ) from exc
    raise SweepFailure(
        f"crash sweep of {runner.name}: a second run never reached {attempt.boundary(when)}: "
        "it took another path than the first (does it read the clock, randomness or "
        "unrecorded I/O outside steps?)"
    )


def _resumed(runner: _Runner, workflow_id: str, attempt: Attempt, when: str) -> _Resumed:
    trace = _Trace()
    with _observing(trace):
        try:
            value = runner.run(workflow_id)
        except NondeterminismError as exc:
            raise SweepFailure(
                f"crash sweep of {runner.name}: crashed {attempt.boundary(when)}, the resumed "
                f"run raised NondeterminismError: {exc}"
            ) from exc
        except Exception as exc:
            raise SweepFailure(
                f"crash sweep of {runner.name}: crashed {attempt.boundary(when)}, the resumed "
                f"run raised {type(exc).__name__}: {exc}"
            ) from exc
    runs = _crashed_runs.pop(workflow_id, Counter()) + Counter(trace.started)
    return _Resumed(value, runs, ledger.counts())


def _check(
    name: str,
    attempt: Attempt,
    when: str,
    result: Any,
    got: _Resumed,
    expected_runs: Counter[tuple[str, str]],
    expected_effects: dict[str, int],
    in_flight: Counter[tuple[str, str]] | None = None,
) -> None:
    """Compare a resumed run with the uncrashed one. A step may run once more when it
    was interrupted after its body (the crashed step "after"), and so may every step
    `in_flight` at the crash (started, not recorded: a process killed during
    concurrent work interrupts them all)."""
    where = f"crash sweep of {name}: crashed {attempt.boundary(when)} and resumed"
    if got.value != result:
        raise SweepFailure(f"{where}, the run returned {got.value!r}; without the crash {result!r}")
    extra = Counter(in_flight or {})
    if when == "after":
        extra[(attempt.place, attempt.name)] = 1
    for step in sorted(set(expected_runs) | set(got.runs)):
        allowed = expected_runs[step] + min(1, extra[step])
        if got.runs[step] > allowed or got.runs[step] < expected_runs[step]:
            raise SweepFailure(
                f"{where}, step {step[0]} {step[1]!r} ran {got.runs[step]} time(s); without "
                f"the crash {expected_runs[step]}"
                + (" (and once more is allowed: it was interrupted)" if extra[step] else "")
            )
    for effect_name in sorted(set(expected_effects) | set(got.effects)):
        seen, wanted = got.effects.get(effect_name, 0), expected_effects.get(effect_name, 0)
        if seen != wanted:
            hint = (
                ": give the call autodurable.idempotency_key(), and have the service "
                "honour it, so that a retried step has its effect once"
                if seen > wanted
                else ""
            )
            raise SweepFailure(
                f"{where}, effect {effect_name!r} happened {seen} time(s); without the crash "
                f"{wanted}{hint}"
            )


def _attempts(started: list[tuple[str, str]]) -> list[Attempt]:
    seen: Counter[tuple[str, str]] = Counter()
    found = []
    for index, (place, name) in enumerate(started, 1):
        seen[(place, name)] += 1
        found.append(Attempt(index, place, name, seen[(place, name)]))
    return found
