"""OpenTelemetry traces and metrics of workflows and steps (``telemetry = true``).

Imported only when telemetry is on (`_telemetry.load`); it uses the global
tracer and meter providers, which the application (or ``opentelemetry-instrument``)
sets up with its exporters.

Invariants:
- One span per workflow *execution* (a first run, and each resume in this or
  another process), the child of the span current where it was called; run
  by another thread or process (`start`, a queue, recovery), the child of the
  span that started or enqueued it, whose W3C context is recorded with the
  workflow. A resumed execution's span links to the span of the execution it
  continues (also recorded with the workflow), and to the span current where
  it was resumed when that is not its parent.
- One child span per step *attempt* that runs: a retry is a span of its own
  (``autodurable.step.attempt`` counts from 1). A replayed step is an event on
  the execution's span, never a span. Steps named ``autodurable.*`` (durable
  clocks and randomness, a sleep's wake-up time, messages, events, child ids)
  are events too, as are waits (``recv``, ``get_event``, a parent waiting for
  its child).
- A span that ends in failure has status ERROR, an ``error.type`` attribute and
  an exception event; a step attempt that will be retried records its
  exception too but not ERROR (the step is not failed yet).
- A span whose process dies (SIGKILL, or a simulated crash) is never ended,
  hence never exported: the resumed execution's link still names it.
- Nothing here raises into the workflow: an error of OpenTelemetry (or of an
  exporter called synchronously) is logged once and ignored.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._errors import AutodurableError, Interrupted, WorkflowCancelled
from .._store import FAILED, SUCCEEDED

if TYPE_CHECKING:
    from .._store import WorkflowRecord
    from ._config import TelemetrySettings
    from ._context import Run
    from ._runtime import Runtime

log = logging.getLogger("autodurable")
F = TypeVar("F", bound=Callable[..., Any])

SCOPE = "autodurable"
# Attribute names: OpenTelemetry's semantic conventions where they have one.
CODE_FUNCTION = "code.function.name"
CODE_NAMESPACE = "code.namespace"
ERROR_TYPE = "error.type"
WORKFLOW_ID = "autodurable.workflow.id"
WORKFLOW_NAME = "autodurable.workflow.name"
WORKFLOW_STATUS = "autodurable.workflow.status"
WORKFLOW_RESUMED = "autodurable.workflow.resumed"
WORKFLOW_REPLAYED = "autodurable.workflow.replayed_steps"
STEP_POSITION = "autodurable.step.position"
STEP_NAME = "autodurable.step.name"
STEP_ATTEMPT = "autodurable.step.attempt"
STEP_STATUS = "autodurable.step.status"
STEP_OUTCOME = "autodurable.step.outcome"
RETRY_DELAY = "autodurable.retry.delay"
REPLAYED = "autodurable.replayed"
QUEUE_NAME = "autodurable.queue.name"
# Histogram buckets in seconds (the SDK's defaults are for milliseconds).
_SECONDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
_W3C = TraceContextTextMapPropagator()


def _guarded(method: F) -> F:
    """Log (once per method) and swallow what OpenTelemetry raises: telemetry never
    changes a workflow's course."""
    warned = False

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal warned
        try:
            return method(*args, **kwargs)
        except Exception:
            if not warned:
                warned = True
                log.warning(
                    "autodurable: telemetry failed in %s", method.__qualname__, exc_info=True
                )
            return None

    return call  # type: ignore[return-value]


def _code(name: str, module: str = "") -> dict[str, str]:
    """The code attributes of a recorded name (``"module:qualname"``, or a qualname of
    `module`): the function's fully qualified name, and its module."""
    found, sep, qualname = name.partition(":")
    if sep:
        module = found
    else:
        qualname = name
    if not module:
        return {CODE_FUNCTION: qualname}
    return {CODE_FUNCTION: f"{module}.{qualname}", CODE_NAMESPACE: module}


def _short(name: str) -> str:
    """A span name's part for a recorded name: its qualname (low cardinality, readable)."""
    return name.rpartition(":")[2] or name


def _error_type(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _span_context(traceparent: object) -> SpanContext | None:
    """The span context a recorded traceparent names (None if it names none)."""
    if not isinstance(traceparent, str):
        return None
    found = trace.get_current_span(_W3C.extract({"traceparent": traceparent})).get_span_context()
    return found if found.is_valid else None


def _decode(stored: str | None) -> dict[str, Any]:
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Instruments:
    """The metrics, made once per process (a meter refuses a second instrument of a name)."""

    def __init__(self) -> None:
        meter = metrics.get_meter(SCOPE)
        self.started = meter.create_counter(
            "autodurable.workflow.started", "{execution}", "Workflow executions begun"
        )
        self.finished = meter.create_counter(
            "autodurable.workflow.finished", "{execution}", "Workflow executions ended, by status"
        )
        self.steps = meter.create_counter(
            "autodurable.step.attempts", "{attempt}", "Step attempts run, by outcome"
        )
        self.retries = meter.create_counter(
            "autodurable.step.retries", "{retry}", "Step attempts that failed and will be retried"
        )
        self.replayed = meter.create_counter(
            "autodurable.step.replayed", "{step}", "Recorded steps returned without running"
        )
        self.duration = meter.create_histogram(
            "autodurable.step.duration",
            "s",
            "Duration of step attempts, their record included",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.queue_wait = meter.create_histogram(
            "autodurable.queue.wait",
            "s",
            "Time from enqueue to dequeue (a delay included)",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        meter.create_observable_gauge(
            "autodurable.queue.depth",
            [_queue_depth],
            "{workflow}",
            "Workflows waiting in each queue (read from the store at each collection)",
        )


@functools.cache
def _instruments() -> _Instruments:
    return _Instruments()


# The runtime most recently made with telemetry on (the current one, unless a newer
# one turned it off): the queue depth gauge reads its store.
_latest: weakref.ref[Runtime] | None = None


def _queue_depth(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    """The queues of the latest runtime's store, if it is open and has telemetry on
    (a collection never opens a database)."""
    runtime = _latest() if _latest is not None else None
    if runtime is None or runtime._store is None or runtime.telemetry is None:
        return []
    try:
        store = runtime._store
        observations = []
        for spec in store.queue_specs():
            stats = store.queue_stats(spec.name)
            observations.append(
                metrics.Observation(stats.enqueued + stats.delayed, {QUEUE_NAME: spec.name})
            )
        return observations
    except Exception:  # a store closing meanwhile: nothing this time
        return []


class OpenTelemetry:
    """`_telemetry.Telemetry` through the global OpenTelemetry providers."""

    def __init__(self, runtime: Runtime, settings: TelemetrySettings) -> None:
        global _latest
        _latest = weakref.ref(runtime)
        self.runtime = runtime
        self.traces = settings.traces
        self.tracer = trace.get_tracer(SCOPE)
        self.metrics = _instruments() if settings.metrics else None

    def workflow(self, workflow_id: str, name: str, fn: Callable[..., Any]) -> _WorkflowTrace:
        """The telemetry of one top-level call."""
        return _WorkflowTrace(self, workflow_id, name, fn)

    @_guarded
    def trace_context(self) -> str | None:
        """The current context as a W3C carrier, recorded as the parent of a workflow
        that another thread or process runs; None without a valid current span."""
        if not self.traces or not trace.get_current_span().get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return json.dumps({"parent": carrier}, separators=(",", ":"))

    def step(self, run: Run, place: int | str, name: str, attempt: int, module: str) -> _StepTrace:
        """An attempt of a step begins."""
        return _StepTrace(self, run, place, name, attempt, module)

    @_guarded
    def replayed(self, run: Run, place: int | str, name: str, status: str) -> None:
        """An event on the execution's span for a recorded step it did not run."""
        if self.metrics is not None:
            self.metrics.replayed.add(1, {STEP_NAME: name, STEP_STATUS: status})
        if self.traces:
            trace.get_current_span().add_event(
                f"replayed {_short(name)}",
                {STEP_POSITION: str(place), STEP_NAME: name, STEP_STATUS: status, REPLAYED: True},
            )

    @_guarded
    def event(self, name: str, attributes: dict[str, Any]) -> None:
        """An event on the current span."""
        if self.traces:
            trace.get_current_span().add_event(name, attributes)

    @_guarded
    def dequeued(self, record: WorkflowRecord, queue: str, now: float) -> None:
        """The time the workflow waited in its queue."""
        if self.metrics is not None:
            self.metrics.queue_wait.record(
                max(0.0, now - record.created_at), {QUEUE_NAME: queue, WORKFLOW_NAME: record.name}
            )


class _WorkflowTrace:
    """The span of one execution of a workflow (see `_telemetry.WorkflowTrace`)."""

    def __init__(
        self, telemetry: OpenTelemetry, workflow_id: str, name: str, fn: Callable[..., Any]
    ) -> None:
        self.telemetry = telemetry
        self.workflow_id = workflow_id
        self.name = name
        self.fn = fn
        self.span: Span | None = None
        self.resumed = False
        self._token: object | None = None
        self._text: str | None = None

    def _attributes(self) -> dict[str, Any]:
        # The code's names are the function's (a workflow may be recorded under another).
        qualname = getattr(self.fn, "__qualname__", None)
        module = getattr(self.fn, "__module__", None)
        code = (
            _code(qualname, module)
            if isinstance(qualname, str) and isinstance(module, str)
            else _code(self.name)
        )
        return {WORKFLOW_ID: self.workflow_id, WORKFLOW_NAME: self.name, **code}

    def _start(self, parent: Any, links: list[Link]) -> None:
        attributes = self._attributes()
        attributes[WORKFLOW_RESUMED] = self.resumed
        self.span = self.telemetry.tracer.start_span(
            f"workflow {_short(self.name)}", context=parent, links=links, attributes=attributes
        )

    @_guarded
    def created(self) -> str | None:
        """Start the execution's span (a child of the current one) before its record is
        written; what the record keeps of it and of the caller."""
        if self._text is None:  # `_open` may try again after a race: one span
            if self.telemetry.traces:
                self._start(None, [])
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            value: dict[str, Any] = {"parent": carrier} if carrier else {}
            if self.span is not None:
                value["execution"] = _traceparent(self.span.get_span_context())
            self._text = json.dumps(value, separators=(",", ":")) if value else ""
        return self._text or None

    @_guarded
    def claimed(self, run: Run, stored: str | None) -> None:
        """Start the span of an execution that continues a record; record it there."""
        # A span `created` started for a record that existed already is dropped
        # unended (never exported): this one has the right parent and links.
        self.span, self._text = None, None
        recorded = _decode(stored)
        previous = _span_context(recorded.get("execution"))
        self.resumed = previous is not None or bool(run.history) or bool(run.branches)
        if not self.telemetry.traces:
            return
        carrier = recorded.get("parent")
        parent = propagate.extract(carrier) if isinstance(carrier, dict) and carrier else None
        links = []
        if previous is not None:
            links.append(Link(previous, {"autodurable.link": "previous execution"}))
        here = trace.get_current_span().get_span_context()
        if parent is not None and here.is_valid:
            links.append(Link(here, {"autodurable.link": "resumed from"}))
        self._start(parent, links)
        assert self.span is not None
        value: dict[str, Any] = {"execution": _traceparent(self.span.get_span_context())}
        if isinstance(carrier, dict) and carrier:
            value["parent"] = carrier
        run.runtime.store.set_trace_context(
            run.workflow_id, run.executor_id, json.dumps(value, separators=(",", ":"))
        )

    @_guarded
    def enter(self) -> None:
        """The execution's span is current in the body."""
        metrics_ = self.telemetry.metrics
        if metrics_ is not None:
            metrics_.started.add(1, {WORKFLOW_NAME: self.name, WORKFLOW_RESUMED: self.resumed})
        if self.span is not None:
            self._token = otel_context.attach(trace.set_span_in_context(self.span))

    @_guarded
    def leave(self) -> None:
        """The body has ended."""
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    @_guarded
    def end(self, run: Run | None, exc: BaseException | None) -> None:
        """End the execution's span with the call's outcome."""
        span, self.span = self.span, None
        if run is None:  # nothing ran here (a recorded outcome, or another's run)
            return
        status = _workflow_status(exc)
        metrics_ = self.telemetry.metrics
        if metrics_ is not None:
            metrics_.finished.add(1, {WORKFLOW_NAME: self.name, WORKFLOW_STATUS: status})
        if span is None:
            return
        span.set_attribute(WORKFLOW_STATUS, status)
        span.set_attribute(WORKFLOW_REPLAYED, run.replayed)
        if exc is not None and status != "pending":
            span.set_attribute(ERROR_TYPE, _error_type(exc))
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


def _workflow_status(exc: BaseException | None) -> str:
    """What an execution ending with `exc` left its workflow as (for people)."""
    if exc is None:
        return SUCCEEDED
    if isinstance(exc, WorkflowCancelled):
        return "cancelled"
    if isinstance(exc, Interrupted | KeyboardInterrupt | SystemExit | AutodurableError):
        return "pending"  # released, to be resumed (see `_workflows._finish_failed`)
    return FAILED if isinstance(exc, Exception) else "pending"


class _StepTrace:
    """One attempt of a step: a span, or an event for the runtime's own records."""

    def __init__(
        self,
        telemetry: OpenTelemetry,
        run: Run,
        place: int | str,
        name: str,
        attempt: int,
        module: str,
    ) -> None:
        self.telemetry = telemetry
        self.name = name
        self.module = module
        self.started = time.perf_counter()
        self.span: Span | None = None
        self._token: object | None = None
        self.attributes: dict[str, Any] = {
            STEP_POSITION: str(place),
            STEP_NAME: name,
            STEP_ATTEMPT: attempt,
            WORKFLOW_ID: run.workflow_id,
        }
        if telemetry.traces and not name.startswith("autodurable."):
            self._begin()

    @_guarded
    def _begin(self) -> None:
        attributes = {**self.attributes, **_code(self.name, self.module), REPLAYED: False}
        self.span = self.telemetry.tracer.start_span(
            f"step {_short(self.name)}", attributes=attributes
        )
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    @_guarded
    def leave(self) -> None:
        """The body is over: its span is no longer current."""
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    @_guarded
    def failed(self, exc: BaseException, delay: float | None) -> None:
        """End the attempt with its exception (ERROR when the step fails for good)."""
        if not isinstance(exc, Exception):
            outcome = "interrupted"
        else:
            outcome = "retrying" if delay is not None else FAILED
        self._count(outcome)
        metrics_ = self.telemetry.metrics
        if metrics_ is not None and delay is not None:
            metrics_.retries.add(1, {STEP_NAME: self.name})
        attributes: dict[str, Any] = {STEP_OUTCOME: outcome, ERROR_TYPE: _error_type(exc)}
        if delay is not None:
            attributes[RETRY_DELAY] = delay
        span = self.span
        if span is None:
            self._event(attributes)
            return
        span.set_attributes(attributes)
        span.record_exception(exc)
        if outcome == FAILED:
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        if delay is not None:
            span.add_event("retry scheduled", {RETRY_DELAY: delay})
        span.end()

    @_guarded
    def succeeded(self, result: Any) -> None:
        """End the attempt: its result is recorded."""
        self._count(SUCCEEDED)
        span = self.span
        if span is None:
            extra: dict[str, Any] = {STEP_OUTCOME: SUCCEEDED}
            if self.name == "autodurable.sleep" and isinstance(result, float):
                extra["autodurable.sleep.until"] = result  # the recorded wake-up time
            self._event(extra)
            return
        span.set_attribute(STEP_OUTCOME, SUCCEEDED)
        span.end()

    def _count(self, outcome: str) -> None:
        metrics_ = self.telemetry.metrics
        if metrics_ is not None:
            labels = {STEP_NAME: self.name, STEP_OUTCOME: outcome}
            metrics_.steps.add(1, labels)
            metrics_.duration.record(time.perf_counter() - self.started, labels)

    def _event(self, extra: dict[str, Any]) -> None:
        if self.telemetry.traces:
            trace.get_current_span().add_event(self.name, {**self.attributes, **extra})
