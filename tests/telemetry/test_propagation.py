"""The caller's trace carried into the workflows it starts, on both stores: from a
request traced by OpenTelemetry's WSGI middleware into a workflow called in the
request, started in the background, or enqueued and run by a worker."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.trace import SpanKind

import autodurable

from ..helpers import wait_until
from ._read import finished, named

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

queue = autodurable.Queue("telemetry-propagation")


@autodurable.step
def greet(name: str) -> str:
    return f"hello {name}"


@autodurable.workflow
def welcome(name: str) -> str:
    return greet(name)


def app(environ: dict, start_response) -> list[bytes]:
    """Runs `welcome` as the path says: in the request, started, or enqueued."""
    how = environ["PATH_INFO"].strip("/")
    if how == "call":
        body = autodurable.options(welcome, workflow_id="by-call")("call")
    elif how == "start":
        body = autodurable.start(welcome, "start").result(timeout=30)
    else:
        body = queue.placed(workflow_id="by-queue").enqueue(welcome, "queue").workflow_id
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(traced) -> Iterator[str]:
    """The app behind the middleware, served on a thread; its base URL."""
    httpd = make_server("127.0.0.1", 0, OpenTelemetryMiddleware(app), handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _get(url: str) -> str:
    request = urllib.request.Request(url, headers={"traceparent": TRACEPARENT})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def _request_span(spans: list) -> object:
    (found,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert f"{found.context.trace_id:032x}" == TRACE_ID  # the middleware took the header
    return found


@pytest.mark.parametrize("how", ["call", "start"])
def test_a_workflow_run_for_a_request_is_a_child_of_its_span(server, traced, how):
    assert _get(f"{server}/{how}") == f"hello {how}"
    spans = finished(traced)
    request = _request_span(spans)
    (workflow,) = named(spans, "workflow ")
    assert f"{workflow.context.trace_id:032x}" == TRACE_ID
    assert workflow.parent.span_id == request.context.span_id
    (step,) = named(spans, "step ")
    assert step.parent.span_id == workflow.context.span_id


def test_a_workflow_enqueued_in_a_request_runs_in_the_requests_trace(server, traced):
    assert _get(f"{server}/queue") == "by-queue"
    request = _request_span(finished(traced))
    stored = autodurable.get_workflow("by-queue")
    autodurable.recover(watch=True)  # this process is the worker
    assert stored.result(timeout=60) == "hello queue"
    # The worker ends its span just after recording the outcome that result() read.
    wait_until(lambda: named(finished(traced), "workflow "))
    (workflow,) = named(finished(traced), "workflow ")
    assert f"{workflow.context.trace_id:032x}" == TRACE_ID
    assert workflow.parent.span_id == request.context.span_id
    assert workflow.parent.is_remote  # it came through the store


def test_a_batch_enqueued_in_a_span_records_its_context_for_every_item(traced):
    from opentelemetry import trace

    from autodurable._core._runtime import get_runtime

    with trace.get_tracer("tests").start_as_current_span("batch") as batch:
        handles = queue.enqueue_many(welcome, [("x",), ("y",)])
    expected = f"00-{batch.get_span_context().trace_id:032x}-"
    store = get_runtime().store
    for handle in handles:
        stored = store.get_workflow(handle.workflow_id).trace_context
        assert expected in stored
    autodurable.recover(watch=True)
    assert [h.result(timeout=60) for h in handles] == ["hello x", "hello y"]
    wait_until(lambda: len(named(finished(traced), "workflow ")) == 2)
    workflows = named(finished(traced), "workflow ")
    assert {w.parent.span_id for w in workflows} == {batch.get_span_context().span_id}
