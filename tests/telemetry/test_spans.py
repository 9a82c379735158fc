"""The span tree of workflows and steps, on both stores: a span per execution and per
step attempt, retries, failures, replays and links on a resume, waits as events."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import autodurable

from ..helpers import Crash, crash_points, maybe_crash, run_workflow
from ._read import finished, named

attempts: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _fresh_attempts() -> None:
    attempts.clear()


@autodurable.step(retries=autodurable.Retry(max_attempts=3, initial_interval=0.001))
def flaky(key: str, failures: int) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] <= failures:
        raise ConnectionError(f"attempt {attempts[key]} of {key} failed")
    return key.upper()


@autodurable.step
def fetch(n: int) -> int:
    return n * 10


@autodurable.workflow
def pipeline(key: str, failures: int) -> str:
    first = fetch(1)
    maybe_crash("after fetch")
    return f"{flaky(key, failures)}:{first + fetch(2)}"


def test_a_workflow_span_has_a_child_per_step_attempt_and_a_retry_is_a_span_of_its_own(
    traced,
):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request:
        assert run_workflow(pipeline, "wf-retry", "a", 1) == "A:30"
    spans = finished(traced)
    (workflow,) = named(spans, "workflow ")
    assert workflow.name == "workflow pipeline"
    assert workflow.parent.span_id == request.get_span_context().span_id  # the caller's child
    assert workflow.attributes["autodurable.workflow.id"] == "wf-retry"
    assert workflow.attributes["autodurable.workflow.name"].endswith(":pipeline")
    assert workflow.attributes["code.function.name"].endswith(".pipeline")
    assert workflow.attributes["autodurable.workflow.status"] == "succeeded"
    assert workflow.attributes["autodurable.workflow.resumed"] is False
    assert workflow.status.status_code is StatusCode.UNSET
    steps = named(spans, "step ")
    assert [(s.name, s.attributes["autodurable.step.attempt"]) for s in steps] == [
        ("step fetch", 1),
        ("step flaky", 1),
        ("step flaky", 2),
        ("step fetch", 1),
    ]
    assert {s.parent.span_id for s in steps} == {workflow.context.span_id}
    assert {s.context.trace_id for s in spans} == {request.get_span_context().trace_id}
    assert [s.attributes["autodurable.step.position"] for s in steps] == ["1", "2", "2", "3"]
    failed, retried = steps[1], steps[2]
    assert failed.attributes["autodurable.step.outcome"] == "retrying"
    assert failed.attributes["error.type"] == "ConnectionError"
    assert [e.name for e in failed.events] == ["exception", "retry scheduled"]
    assert failed.status.status_code is StatusCode.UNSET  # not failed: it is retried
    assert retried.attributes["autodurable.step.outcome"] == "succeeded"
    assert retried.attributes["code.function.name"].endswith(".flaky")
    assert retried.attributes["code.namespace"] == flaky.__module__


def test_a_failed_step_and_workflow_are_errors_with_their_exception(traced):
    with pytest.raises(ConnectionError):
        run_workflow(pipeline, "wf-fail", "b", 5)
    spans = finished(traced)
    (workflow,) = named(spans, "workflow ")
    last = named(spans, "step flaky")[-1]
    for span in (workflow, last):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "ConnectionError"
        (event,) = [e for e in span.events if e.name == "exception"]
        assert event.attributes["exception.type"] == "ConnectionError"
    assert last.attributes["autodurable.step.attempt"] == 3
    assert workflow.attributes["autodurable.workflow.status"] == "failed"


def test_a_resumed_execution_replays_as_events_and_links_to_the_execution_it_continues(traced):
    crash_points.add("after fetch")
    with pytest.raises(Crash):
        run_workflow(pipeline, "wf-resume", "c", 0)
    first = named(finished(traced), "workflow ")[0]
    assert first.attributes["autodurable.workflow.status"] == "pending"
    traced.spans.clear()
    assert run_workflow(pipeline, "wf-resume", "c", 0) == "C:30"
    spans = finished(traced)
    (second,) = named(spans, "workflow ")
    assert second.attributes["autodurable.workflow.resumed"] is True
    assert second.attributes["autodurable.workflow.replayed_steps"] == 1
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    assert second.context.trace_id != first.context.trace_id  # a new trace, linked
    replayed = [e for e in second.events if e.name.startswith("replayed ")]
    assert [(e.name, e.attributes["autodurable.step.position"]) for e in replayed] == [
        ("replayed fetch", "1")
    ]
    assert replayed[0].attributes["autodurable.replayed"] is True
    assert [s.name for s in named(spans, "step ")] == ["step flaky", "step fetch"]


@autodurable.workflow
def waiter() -> object:
    autodurable.sleep(0.01)
    return autodurable.recv("go", timeout=0.05)


def test_durable_sleeps_and_waits_are_events_of_the_workflow_span(traced):
    assert run_workflow(waiter, "wf-wait") is None
    (workflow,) = named(finished(traced), "workflow ")
    events = [e.name for e in workflow.events]
    assert events == ["autodurable.sleep", "autodurable.wait", "autodurable.wait.end"]
    sleep, wait, end = workflow.events
    assert isinstance(sleep.attributes["autodurable.sleep.until"], float)
    assert wait.attributes["autodurable.wait.kind"] == "recv"
    assert end.attributes["autodurable.wait.outcome"] == "timed out"


@autodurable.step
async def double(n: int) -> int:
    await asyncio.sleep(0)
    return 2 * n


@autodurable.workflow
async def async_pipeline(n: int) -> int:
    return await double(n) + await double(n + 1)


def test_async_workflows_have_the_same_tree(traced):
    assert asyncio.run(autodurable.options(async_pipeline, workflow_id="wf-async")(1)) == 6
    spans = finished(traced)
    (workflow,) = named(spans, "workflow ")
    steps = named(spans, "step ")
    assert [s.name for s in steps] == ["step double", "step double"]
    assert {s.parent.span_id for s in steps} == {workflow.context.span_id}


def test_a_replay_check_reports_nothing_while_telemetry_is_on(traced):
    from autodurable._control._histories import export_history
    from autodurable._control._replay import replay_check

    assert run_workflow(pipeline, "checked", "k", 0) is not None
    traced.spans.clear()
    assert replay_check(export_history("checked")).ok
    assert traced.spans.get_finished_spans() == ()  # the scratch replay is not the app's work
