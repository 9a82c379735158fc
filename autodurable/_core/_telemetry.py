"""The telemetry seam: what executing workflows tells an observer (OpenTelemetry).

Invariants:
- Off (the default), a runtime's ``telemetry`` is None, nothing of
  OpenTelemetry is imported, and steps keep their fast path: the runtime's
  `steps_watched`, read there anyway for limits, covers telemetry too.
- On, the runtime imports `_otel` (and OpenTelemetry); the hooks below are
  the only calls the core makes, each behind a ``telemetry is not None`` test
  on a path that is not the fast one.
- Hooks never change what is recorded or raised: an observer's failure is
  logged and ignored (`_otel` guards its own calls), so tracing cannot stop
  a workflow.
- What a workflow's record keeps for telemetry is an opaque text
  (`WorkflowRecord.trace_context`): written when the record is created (who
  started it) and when an execution that did not create it begins (which
  span runs it now), so that a later process can continue the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._store import WorkflowRecord
    from ._context import Run


class WorkflowTrace(Protocol):
    """The telemetry of one top-level call of a workflow (one execution, if it runs)."""

    def created(self) -> str | None:
        """The trace context to record with the workflow this call is about to create
        (its starter's context and this execution's span)."""

    def claimed(self, run: Run, stored: str | None) -> None:
        """The execution continues a recorded workflow (resumed, handed over, dequeued):
        `stored` is its recorded trace context; this execution's is recorded instead."""

    def enter(self) -> None:
        """Make the execution's span current (around the body, in its thread or task)."""

    def leave(self) -> None:
        """Undo `enter`."""

    def end(self, run: Run | None, exc: BaseException | None) -> None:
        """The call ended: `exc` is what it raised (None: it succeeded)."""


class StepTrace(Protocol):
    """The telemetry of one attempt of a step that runs (not a replay)."""

    def leave(self) -> None:
        """The body returned or raised: its span is no longer current."""

    def failed(self, exc: BaseException, delay: float | None) -> None:
        """The attempt failed; `delay` is the wait before the next one (None: final;
        a `BaseException` that is not an `Exception` stops the run there)."""

    def succeeded(self, result: Any) -> None:
        """The attempt's result is recorded."""


class Telemetry(Protocol):
    """The observer a runtime with telemetry on tells about its work."""

    def workflow(self, workflow_id: str, name: str, fn: Callable[..., Any]) -> WorkflowTrace:
        """The telemetry of a top-level call of workflow `name` (function `fn`) as
        `workflow_id`."""

    def trace_context(self) -> str | None:
        """The trace context to record with a workflow created now for another thread
        or process to run (started in the background, enqueued): the caller's."""

    def step(self, run: Run, place: int | str, name: str, attempt: int, module: str) -> StepTrace:
        """An attempt of step `name` (a function of `module`, or "") at `place` of `run`
        starts (its body next)."""

    def replayed(self, run: Run, place: int | str, name: str, status: str) -> None:
        """A recorded step's outcome was returned without running it."""

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        """Something happened in the current span (a wait began or ended)."""

    def dequeued(self, record: WorkflowRecord, queue: str, now: float) -> None:
        """A worker took `record` from `queue` at `now` (seconds since the epoch)."""
