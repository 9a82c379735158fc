"""Step boundaries a test may watch and stop a run at (`autodurable.testing`).

Invariants:
- Nothing here costs anything unless a test installs an observer: `observer`
  is None and steps take their fast path.
- The observer is told of every attempt of a recorded step that runs, never of
  a replay: ``"before"`` just before its body, ``"after"`` once the body has
  returned and before its result is recorded. Raising a ``BaseException``
  there stops the run at that boundary (a simulated crash): the step is
  neither recorded nor retried, and the workflow stays pending. ``"recorded"``
  follows once its result is durable. ``"left"``
  says that a workflow returned before replaying all its recorded steps (the
  place and name of the first one left).
- A process whose environment has ``AUTODURABLE_STEP_LOG=<path>`` (set only by
  `autodurable.testing`, for programs it runs in a child process) appends one
  line per boundary to that file; with ``AUTODURABLE_CRASH_AT=<when>:<n>``
  it also dies with ``os._exit(137)`` at that boundary of the attempt that
  started n-th (counted from 1), without cleanup, as a SIGKILL would leave it,
  after logging the boundary as ``crash-<when>``.
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
    started: dict[tuple[str, str, str], int] = {}  # attempt -> its number, from 1

    def observe(when: str, workflow_id: str, place: int | str, name: str) -> None:
        key = (workflow_id, str(place), name)
        with lock:
            if when == "before":
                started[key] = len(started) + 1
            # Attempts that run concurrently end in any order: an "after" is the one of
            # the attempt that started n-th, whatever ended in between.
            crash = when == crash_when and started.get(key) == crash_at
            if log_path:
                kind = f"crash-{when}" if crash else when  # a crash "before": no body ran
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(f"{kind}\t{workflow_id}\t{place}\t{name}\t{os.getpid()}\n")
            if crash:
                os._exit(CRASH_EXIT_CODE)

    return observe


observer = _from_environment()
