"""`IdempotencyMiddleware` in process (Starlette's test client), on each store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import autodurable
from autodurable._core._runtime import get_runtime
from autodurable._store import PENDING, SUCCEEDED
from autodurable.web import IdempotencyMiddleware

from ..helpers import Crash, crash_points, maybe_crash

pytestmark = pytest.mark.usefixtures("database")

charged: list[int] = []


@autodurable.step
def charge(amount: int) -> str:
    charged.append(amount)
    return f"ch_{len(charged)}"


async def charges(request: Request) -> Response:
    body = await request.json()
    charge_id = charge(body["amount"])
    maybe_crash("after-charge")
    if body.get("fail"):
        raise ValueError("the handler failed")
    return JSONResponse(
        {"charge_id": charge_id, "query": request.url.query},
        status_code=201,
        headers={"X-Shop": "yes"},
    )


async def stream(request: Request) -> Response:
    charge(1)
    return StreamingResponse(iter([b"x" * 60, b"y" * 60]), media_type="text/plain")


def make_app(**options: Any) -> IdempotencyMiddleware:
    routes = [Route("/charges", charges, methods=["POST"]), Route("/stream", stream)]
    return IdempotencyMiddleware(Starlette(routes=routes), **options)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    charged.clear()
    yield
    charged.clear()


def client(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=True)


def test_a_repeated_request_gets_the_recorded_response_without_running_again() -> None:
    with client(make_app()) as http:
        first = http.post("/charges?a=1", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
        again = http.post("/charges?a=1", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"charge_id": "ch_1", "query": "a=1"}
    assert charged == [5]
    assert again.headers["x-shop"] == "yes"
    assert again.headers["content-type"] == "application/json"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    store = get_runtime().store
    record = store.get_workflow("http:k1")
    assert record is not None and record.status == SUCCEEDED
    # The handler's step is a step of the request's workflow.
    assert [step.name for step in store.list_steps("http:k1")] == [charge.__qualname__]
    recorded = get_runtime().codec.decode(record.output or "null")
    assert sorted(name for name, _ in recorded["headers"]) == ["content-type", "x-shop"]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/charges?a=1", {"amount": 6}), ("/charges?a=2", {"amount": 5}), ("/stream", None)],
)
def test_the_same_key_with_another_request_is_refused_with_422(path: str, body: Any) -> None:
    with client(make_app()) as http:
        http.post("/charges?a=1", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
        refused = http.post(path, json=body, headers={"Idempotency-Key": "k1"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["type"] == "idempotency_error"
    assert "k1" in refused.json()["error"]["message"]
    assert charged == [5]


def test_requests_without_the_header_are_untouched() -> None:
    with client(make_app()) as http:
        answers = [http.post("/charges", json={"amount": 5}) for _ in range(2)]
    assert [answer.json()["charge_id"] for answer in answers] == ["ch_1", "ch_2"]
    assert get_runtime().store.list_workflows(limit=10) == []


def test_a_request_that_crashed_mid_handler_resumes_after_its_finished_steps() -> None:
    app = make_app()
    crash_points.add("after-charge")
    # The crash escapes the test client's portal as itself or as a cancellation.
    with pytest.raises((Crash, CancelledError)):
        client(app).post("/charges", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    record = get_runtime().store.get_workflow("http:k1")
    assert record is not None and record.status == PENDING
    with client(app) as http:
        retry = http.post("/charges", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    assert (retry.status_code, retry.json()["charge_id"]) == (201, "ch_1")
    assert charged == [5]  # the charge was replayed, not made again


def test_a_failed_handler_is_replayed_as_a_500_without_running_again() -> None:
    with TestClient(make_app(), raise_server_exceptions=False) as http:
        body = {"amount": 5, "fail": True}
        first = http.post("/charges", json=body, headers={"Idempotency-Key": "k1"})
        again = http.post("/charges", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 500
    assert again.headers["idempotent-replayed"] == "true"
    assert charged == [5]


def test_a_key_in_flight_elsewhere_gets_409_after_the_wait() -> None:
    entered, release = threading.Event(), threading.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        release.wait(10)
        return PlainTextResponse("done")

    app = IdempotencyMiddleware(Starlette(routes=[Route("/slow", slow)]), wait=0.2)
    answers: list[Any] = []
    with client(app) as first, client(app) as second:
        worker = threading.Thread(
            target=lambda: answers.append(first.get("/slow", headers={"Idempotency-Key": "k"}))
        )
        worker.start()
        assert entered.wait(10)
        busy = second.get("/slow", headers={"Idempotency-Key": "k"})
        release.set()
        worker.join(10)
        replay = second.get("/slow", headers={"Idempotency-Key": "k"})
    assert busy.status_code == 409
    assert busy.json()["error"]["type"] == "idempotency_error"
    assert busy.headers["retry-after"] == "1"
    assert answers[0].text == replay.text == "done"
    assert replay.headers["idempotent-replayed"] == "true"


def test_a_response_longer_than_the_limit_passes_through_unrecorded() -> None:
    with client(make_app(max_body=100)) as http:
        first = http.get("/stream", headers={"Idempotency-Key": "k1"})
        again = http.get("/stream", headers={"Idempotency-Key": "k1"})
    assert first.status_code == 200 and first.text == "x" * 60 + "y" * 60
    assert again.status_code == 500
    assert "not recorded" in again.json()["error"]["message"]
    assert "longer than 100 bytes" in again.json()["error"]["message"]
    assert charged == [1]


def test_a_streamed_response_within_the_limit_is_recorded_whole() -> None:
    with client(make_app()) as http:
        first = http.get("/stream", headers={"Idempotency-Key": "k1"})
        again = http.get("/stream", headers={"Idempotency-Key": "k1"})
    assert first.text == again.text == "x" * 60 + "y" * 60
    assert again.headers["content-type"].startswith("text/plain")
    assert charged == [1]


@pytest.mark.parametrize("key", [b"", b"k" * 256, "caf\u00e9".encode()])
def test_an_unusable_key_is_refused_with_400(key: bytes) -> None:
    with client(make_app()) as http:
        answer = http.post("/charges", json={"amount": 5}, headers=[(b"Idempotency-Key", key)])
    assert answer.status_code == 400
    assert charged == []


def test_fastapi_add_middleware() -> None:
    api = FastAPI()

    @api.post("/pay")
    def pay(amount: int) -> dict[str, str]:
        return {"charge_id": charge(amount)}

    api.add_middleware(IdempotencyMiddleware)
    with client(api) as http:
        answers = [http.post("/pay?amount=3", headers={"Idempotency-Key": "k"}) for _ in range(2)]
    assert answers[0].json() == answers[1].json() == {"charge_id": "ch_1"}
    assert charged == [3]
