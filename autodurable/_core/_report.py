"""Diagnostics that must not change what the program does: once per subject, through logging.

Invariants:
- A subject (a function, a step name, a source line) is reported at most once
  per process, so a hot loop over an unrecordable call leaves one record, not
  one per call.
- Reports go to the ``autodurable`` logger (Python's last-resort handler prints
  them to stderr when the program configured no logging), never through
  ``warnings``: a program run with warnings as errors behaves the same.
- A report holds only its text: no exception, traceback or argument is kept
  alive by a log record or by the set of subjects seen.
- Thread-safe.
- A report is one readable line: that a workflow's inputs cannot be recorded
  is said as what runs unrecorded, the parameter and its type, and the fix
  (`unrecordable_inputs`), never as the codec's long error.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

_seen: set[object] = set()
_lock = threading.Lock()


def first_time(subject: object) -> bool:
    """True the first time `subject` (hashable, holding no live objects) is seen."""
    with _lock:
        if subject in _seen:
            return False
        _seen.add(subject)
        return True


def warn_once(subject: object, message: str) -> None:
    """Log `message` as a warning the first time `subject` is reported in this process."""
    if first_time(subject):
        warn(message)


def warn(message: str) -> None:
    """Log `message` as a warning of the ``autodurable`` logger."""
    logger().warning("%s", message)


def logger() -> logging.Logger:
    """The ``autodurable`` logger; logging is imported on the first report, not before
    (every process under the launcher imports this module)."""
    import logging

    return logging.getLogger("autodurable")


def forget() -> None:
    """Forget every subject seen (for tests)."""
    with _lock:
        _seen.clear()


def warn_unrecordable(name: str, exc: Exception) -> None:
    """Say once per step name that its result cannot be recorded and will be re-run."""
    warn_once(name, f"autodurable: {exc}; step {name!r} will run again on resume instead")


def unrecordable_inputs(name: str, parameter: str | None, type_name: str) -> str:
    """The one-line report for a workflow whose input `parameter` (of `type_name`) cannot
    be recorded: what runs unrecorded, why, and the fix."""
    what = f"its parameter {parameter!r}" if parameter else "one of its arguments"
    return (
        f"autodurable: workflow {name} runs unrecorded: {what} is a {type_name}, which "
        "cannot be recorded; pass plain data taken from it (the fields it needs) instead"
    )


def warn_unrecordable_inputs(name: str, parameter: str | None, type_name: str) -> None:
    """Say once per workflow that its inputs cannot be recorded (see `unrecordable_inputs`)."""
    warn_once(name, unrecordable_inputs(name, parameter, type_name))
