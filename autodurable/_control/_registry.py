"""Finding a stored workflow's code by its recorded name.

Invariants:
- A recorded name is a workflow's qualified name (``"module:qualname"``) or a
  name given with ``@workflow(name=...)``; registered names win, then the
  name is imported and must still be decorated with ``@workflow``.
- Programs run by ``autodurable run`` are recorded under `RUN_PREFIX`; they
  have no function to find: running the command again continues them.
"""

from __future__ import annotations

from typing import Any

from .._core._names import resolve
from .._store import WorkflowRecord

RUN_PREFIX = "autodurable.run:"  # the names of programs run by `autodurable run`


def is_program_run(name: str) -> bool:
    """Whether `name` is the recorded name of a program run by ``autodurable run``."""
    return name.startswith(RUN_PREFIX)


def find_workflow(name: str) -> Any:
    """The workflow function recorded as `name` (registered or importable); LookupError."""
    # Here, not at the top: reading stored workflows (`_info`) needs this module's
    # names, not the decorators and wrapt behind them.
    from .._core._decorators import kind_of, registry

    found = registry.get(name)
    if found is not None:
        return found
    try:
        fn = resolve(name)
    except LookupError as exc:
        raise LookupError(
            f"{exc}. Make sure the module that defines it is importable (on sys.path) "
            "where recover() runs."
        ) from None
    if kind_of(fn) != "workflow":
        raise LookupError(f"{name} exists but is no longer decorated with @workflow")
    return fn


def code_here(record: WorkflowRecord | None) -> Any:
    """The function of a stored workflow when this process can run it, else None."""
    if record is None or is_program_run(record.name):
        return None
    try:
        return find_workflow(record.name)
    except LookupError:
        return None
