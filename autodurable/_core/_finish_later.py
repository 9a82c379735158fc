"""Holding back the recorded success of a launched program's workflow until its
process has exited cleanly.

Invariants:
- A success held back is written at most once, by `FinishLater.finish`; a
  process killed before that leaves the workflow pending, so that running the
  same command again replays it to the end.
- Only the call of the workflow named by `FinishLater.workflow_id`, inside a
  `finishing_later` block, holds its success back; every other call records
  its own as usual.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator


class FinishLater:
    """Holds the success of workflow `workflow_id` back, to be written by `finish()`.

    For a program run by the launcher: it is finished only once its process
    has exited cleanly (its atexit handlers and threads done), so a process
    killed in between leaves the run pending and the same command replays it
    to the end instead of starting a fresh run that repeats every effect.
    """

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self._finish: Callable[[], str] | None = None

    def hold(self, finish: Callable[[], str]) -> None:
        """Keep the write of the success (`succeeded` calls it instead of writing)."""
        self._finish = finish

    def finish(self) -> None:
        """Write the success held back, if any (once)."""
        finish, self._finish = self._finish, None
        if finish is not None:
            finish()


_FINISH_LATER: contextvars.ContextVar[FinishLater | None] = contextvars.ContextVar(
    "autodurable_finish_later", default=None
)


@contextlib.contextmanager
def finishing_later(later: FinishLater) -> Iterator[None]:
    """Run the block with the success of `later.workflow_id` held back (see `FinishLater`)."""
    token = _FINISH_LATER.set(later)
    try:
        yield
    finally:
        _FINISH_LATER.reset(token)
