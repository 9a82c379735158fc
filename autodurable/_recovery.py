"""Recovery: resume every unfinished workflow that nobody alive is running.

Invariants:
- A workflow owned by a live executor (another process, or this one) is left
  alone; one whose executor is dead, or that nobody owns, is resumed here in
  the background from its recorded inputs.
- Workflows that cannot be resumed are reported with the reason, never
  dropped: they stay pending in the store for a later attempt.
- The result is a value (`RecoveryReport`), not an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ._decorators import kind_of, registry
from ._errors import AutodurableError
from ._handle import WorkflowHandle, start
from ._names import resolve
from ._options import options
from ._runtime import get_runtime

log = logging.getLogger("autodurable")
_RUN_PREFIX = "autodurable.run:"


@dataclass(frozen=True)
class Unrecoverable:
    """A workflow recovery had to leave pending, and why."""

    workflow_id: str
    name: str
    reason: str


@dataclass
class RecoveryReport:
    """What `recover()` did: the workflows it resumed and those it could not."""

    resumed: list[WorkflowHandle] = field(default_factory=list)
    unrecoverable: list[Unrecoverable] = field(default_factory=list)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the resumed workflows; map each id to its result or exception."""
        outcomes: dict[str, Any] = {}
        for handle in self.resumed:
            try:
                outcomes[handle.workflow_id] = handle.result(timeout)
            except Exception as exc:
                outcomes[handle.workflow_id] = exc
        return outcomes

    def __str__(self) -> str:
        lines = [
            f"resumed {len(self.resumed)} workflow(s); "
            f"{len(self.unrecoverable)} could not be resumed"
        ]
        lines += [f"  {u.workflow_id} ({u.name}): {u.reason}" for u in self.unrecoverable]
        return "\n".join(lines)


def _find(name: str) -> Any:
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


def recover() -> RecoveryReport:
    """Resume, in the background, every unfinished workflow that no live process runs.

    Call it at start-up of a long-running application (the launcher does).
    Returns a `RecoveryReport`; workflows it cannot resume (their function
    cannot be imported, their inputs cannot be decoded) are listed with the
    reason and logged as warnings.
    """
    runtime = get_runtime()
    executor = runtime.executor
    report = RecoveryReport()
    for record, owner in runtime.store.unfinished_workflows():
        if record.workflow_id in runtime.active:
            continue
        if owner is not None and executor.alive(owner):
            continue
        if record.name.startswith(_RUN_PREFIX):
            continue  # a program run by `autodurable run`: running the command resumes it
        try:
            fn = _find(record.name)
            inputs = runtime.codec.decode(record.inputs)
        except (LookupError, AutodurableError) as exc:
            report.unrecoverable.append(Unrecoverable(record.workflow_id, record.name, str(exc)))
            log.warning("autodurable: cannot resume workflow %s: %s", record.workflow_id, exc)
            continue
        handle = start(
            options(fn, workflow_id=record.workflow_id), *inputs["args"], **inputs["kwargs"]
        )
        report.resumed.append(handle)
    return report
