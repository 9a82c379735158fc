"""Metrics through the global meter, on both stores: workflows started and finished by
status, step attempts by outcome, retries, step durations, queue waits and depth."""

from __future__ import annotations

import pytest

import autodurable

from ._read import points, total

tries: list[int] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    tries.clear()


@autodurable.step(retries=autodurable.Retry(max_attempts=2, initial_interval=0.001))
def shaky() -> int:
    tries.append(1)
    if len(tries) == 1:
        raise TimeoutError("first attempt")
    return len(tries)


@autodurable.workflow
def measured(fail: bool) -> int:
    if fail:
        raise ValueError("no")
    return shaky()


STEP = {"autodurable.step.name": "shaky"}
WORKFLOW = {"autodurable.workflow.name": f"{__name__}:measured"}
COUNTED = {
    "started": ("autodurable.workflow.started", WORKFLOW),
    "ok": (
        "autodurable.workflow.finished",
        {**WORKFLOW, "autodurable.workflow.status": "succeeded"},
    ),
    "failed": (
        "autodurable.workflow.finished",
        {**WORKFLOW, "autodurable.workflow.status": "failed"},
    ),
    "retrying": ("autodurable.step.attempts", {**STEP, "autodurable.step.outcome": "retrying"}),
    "succeeded": ("autodurable.step.attempts", {**STEP, "autodurable.step.outcome": "succeeded"}),
    "retries": ("autodurable.step.retries", STEP),
    "durations": ("autodurable.step.duration", STEP),
}


def _counts(traced) -> dict[str, float]:
    return {key: total(traced, name, wanted) for key, (name, wanted) in COUNTED.items()}


def test_counters_and_histograms_of_workflows_steps_and_retries(traced):
    before = _counts(traced)
    assert measured(False) == 2
    with pytest.raises(ValueError):
        measured(True)
    after = _counts(traced)
    assert {key: after[key] - before[key] for key in before} == {
        "started": 2,
        "ok": 1,
        "failed": 1,
        "retrying": 1,
        "succeeded": 1,
        "retries": 1,
        "durations": 2,
    }
    (unit,) = {
        metric.unit
        for resource in traced.metrics.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "autodurable.step.duration"
    }
    assert unit == "s"


@autodurable.workflow
def queued(n: int) -> int:
    return n


def test_queue_wait_and_depth(traced):
    queue = autodurable.Queue("telemetry-metrics")
    where = {"autodurable.queue.name": "telemetry-metrics"}
    waited = total(traced, "autodurable.queue.wait", where)
    handles = [queue.enqueue(queued, n) for n in range(3)]
    assert [value for found, value in _depth(traced) if found == where] == [3]
    autodurable.recover(watch=True)
    assert [h.result(timeout=60) for h in handles] == [0, 1, 2]
    assert total(traced, "autodurable.queue.wait", where) - waited == 3
    assert [value for found, value in _depth(traced) if found == where] == [0]


def _depth(traced) -> list[tuple[dict, float]]:
    return [(found, point.value) for found, point in points(traced, "autodurable.queue.depth")]
