"""The crash sweep of a whole program run by ``autodurable run``, killed for real.

`sweep_program("app.py", *args)` runs the program once in a child process to
learn its step attempts, then, for each attempt and each side of it, runs it
again in a process that dies (``os._exit(137)``, no cleanup, as after a
SIGKILL) at that boundary, and runs the same command again, which resumes it.
The resumed process must exit as the uncrashed one did, and the steps run and
the effects seen must be those of the uncrashed run (the crashed step once
more at most, see `crash_sweep`).

Invariants:
- Every case is a run of its own (``--run-id``); the program's state goes
  where its configuration says (a test points ``AUTODURABLE_DATABASE_URL`` at a
  throwaway store). `reset`, when given, is called before each run that starts
  afresh.
- The child processes learn where to crash and where to log from environment
  variables that only this module sets (`autodurable._core._faults`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._core._faults import CRASH_EXIT_CODE, ENV_CRASH, ENV_LOG
from ._effects import ENV_EFFECT_LOG, ledger
from ._sweep import Attempt, SweepFailure, _attempts, _check, _Resumed


@dataclass
class ProgramReport:
    """What a program sweep that passed covered."""

    program: list[str]
    exit_code: int
    attempts: list[Attempt]
    cases: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"crash sweep of {' '.join(self.program)}: {self.cases} kills at "
            f"{len(self.attempts)} step attempt(s), each resumed to the same exit, in "
            f"{self.seconds:.1f}s"
        )


class _Program:
    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str],
        folder: Path,
        timeout: float,
    ) -> None:
        self.argv, self.cwd, self.env, self.folder, self.timeout = argv, cwd, env, folder, timeout
        self.runs = 0

    def run(self, run_id: str, crash: str | None = None) -> tuple[int, list[tuple[str, str]]]:
        """Run the program as run `run_id`; its exit code and the attempts it started
        (`crashed` says at which attempt it died, if it did)."""
        self.runs += 1
        steps = self.folder / f"steps-{self.runs}.log"
        effects = self.folder / f"effects-{self.runs}.log"
        env = {**self.env, ENV_LOG: str(steps), ENV_EFFECT_LOG: str(effects)}
        env.pop(ENV_CRASH, None)
        if crash is not None:
            env[ENV_CRASH] = crash
        command = [sys.executable, "-m", "autodurable", "run", "-q", "--run-id", run_id]
        done = subprocess.run(
            [*command, *self.argv],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        if effects.exists():
            ledger.replay_lines(effects.read_text(encoding="utf-8").splitlines())
        started = []
        self.crashed: tuple[str, str, str] | None = None
        self.recorded: Counter[tuple[str, str]] = Counter()
        if steps.exists():
            for line in steps.read_text(encoding="utf-8").splitlines():
                when, _, place, name, _ = line.split("\t")
                if when == "before":
                    started.append((place, name))
                elif when == "recorded":
                    self.recorded[(place, name)] += 1
                elif when.startswith("crash-"):
                    self.crashed = (when[len("crash-") :], place, name)
        self.last = done
        return done.returncode, started


def sweep_program(
    program: str | os.PathLike[str],
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    observe: Callable[[], Any] | None = None,
    reset: Callable[[], None] | None = None,
    timeout: float = 120.0,
    select: Callable[[Attempt], bool] | None = None,
) -> ProgramReport:
    """Kill ``autodurable run PROGRAM ARGS`` at every step boundary, run it again, and
    check that it finishes as it does without the kill; raise `SweepFailure` naming
    the first boundary that breaks. `observe` and `reset` as for `crash_sweep`;
    `select`, if given, picks the attempts whose boundaries are swept (each costs two
    runs of the program, twice)."""
    argv = [os.fspath(program), *args]
    name = " ".join(argv)
    started_at = time.monotonic()
    base = f"sweep-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as folder:
        runner = _Program(
            argv, Path(cwd or os.getcwd()), dict(env or os.environ), Path(folder), timeout
        )
        if reset is not None:
            reset()
        ledger.clear()
        exit_code, started = runner.run(f"{base}-0")
        baseline_output = runner.last.stderr
        expected_runs, expected_effects = Counter(started), ledger.counts()
        expected_world = observe() if observe is not None else None
        attempts = _attempts(started)
        chosen = [a for a in attempts if select is None or select(a)]
        for attempt in chosen:
            for when in ("before", "after"):
                run_id = f"{base}-{attempt.index}{when[0]}"
                if reset is not None:
                    reset()
                ledger.clear()
                code, crashed = runner.run(run_id, f"{when}:{attempt.index}")
                if code != CRASH_EXIT_CODE or runner.crashed is None:
                    raise SweepFailure(
                        f"crash sweep of {name}: a second run never reached "
                        f"{attempt.boundary(when)} (it exited with {code}): it took another "
                        "path than the first (does it read the clock, randomness or "
                        f"unrecorded I/O outside steps?)\n{runner.last.stderr[-2000:]}"
                    )
                # Concurrent attempts start in another order from run to run: the
                # boundary is the one the process died at.
                _, place, step_name = runner.crashed
                at = Attempt(attempt.index, place, step_name, 1)
                in_flight = Counter(crashed) - runner.recorded  # started, never recorded
                code, resumed = runner.run(run_id)
                if "NondeterminismError" in runner.last.stderr:
                    raise SweepFailure(
                        f"crash sweep of {name}: killed {at.boundary(when)}, the resumed "
                        f"run stopped with a NondeterminismError:\n{runner.last.stderr[-2000:]}"
                    )
                got = _Resumed(code, Counter(crashed) + Counter(resumed), ledger.counts())
                try:
                    _check(
                        name, at, when, exit_code, got, expected_runs, expected_effects, in_flight
                    )
                except SweepFailure as failure:
                    raise SweepFailure(
                        f"{failure}\n{runner.last.stderr[-2000:] or baseline_output[-2000:]}"
                    ) from None
                if observe is not None and observe() != expected_world:
                    raise SweepFailure(
                        f"crash sweep of {name}: killed {at.boundary(when)} and resumed, "
                        f"the outside world is {observe()!r}; without the kill it is "
                        f"{expected_world!r}"
                    )
    seconds = time.monotonic() - started_at
    return ProgramReport(argv, exit_code, attempts, 2 * len(chosen), seconds)
