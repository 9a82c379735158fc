"""Step boundaries a test may watch and stop a run at (`autodurable.testing`).

Invariants:
- Nothing here costs anything unless a test installs an observer: `observer`
  is None and steps take their fast path.
- The observer is told of every attempt of a recorded step that runs, never of
  a replay: ``"before"`` just before its body, ``"after"`` once the body has
  returned and before its result is recorded. Raising a ``BaseException``
  there stops the run at that boundary (a simulated crash): the step is
  neither recorded nor retried, and the workflow stays pending. ``"left"``
  says that a workflow returned before replaying all its recorded steps (the
  place and name of the first one left).
- A process whose environment has ``AUTODURABLE_STEP_LOG=<path>`` (set only by
  `autodurable.testing`, for programs it runs in a child process) appends one
  line per boundary to that file; with ``AUTODURABLE_CRASH_AT=<when>:<n>``
  it also dies with ``os._exit(137)`` at that boundary of its n-th attempt
  (counted from 1), without cleanup, as a SIGKILL would leave it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

# (when, workflow id, place, step name); set by autodurable.testing
StepObserver = Callable[[str, str, "int | str", str], None]

observer: StepObserver | None = None

ENV_LOG = "AUTODURABLE_STEP_LOG"
ENV_CRASH = "AUTODURABLE_CRASH_AT"
CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def _from_environment() -> StepObserver | None:
    """The observer a child process started by `autodurable.testing` asks for."""
    log_path = os.environ.get(ENV_LOG)
    crash = os.environ.get(ENV_CRASH)
    if not log_path and not crash:
        return None
    crash_when, _, count = (crash or "").partition(":")
    crash_at = int(count) if count.isdigit() else 0
    lock = threading.Lock()
    attempts = [0]

    def observe(when: str, workflow_id: str, place: int | str, name: str) -> None:
        with lock:
            if when == "before":
                attempts[0] += 1
            crash = when == crash_when and attempts[0] == crash_at
            if log_path and not (crash and when == "before"):  # a body never started
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(f"{when}\t{workflow_id}\t{place}\t{name}\t{os.getpid()}\n")
            if crash:
                os._exit(CRASH_EXIT_CODE)

    return observe


observer = _from_environment()
