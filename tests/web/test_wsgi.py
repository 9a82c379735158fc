"""`IdempotencyWSGIMiddleware` in process (Werkzeug's test client), on each store."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.test import Client

import autodurable
from autodurable._core._runtime import get_runtime
from autodurable._store import PENDING, SUCCEEDED
from autodurable.web import IdempotencyWSGIMiddleware

from ..helpers import Crash, crash_points, maybe_crash

pytestmark = pytest.mark.usefixtures("database")

charged: list[int] = []


@autodurable.step
def charge(amount: int) -> str:
    charged.append(amount)
    return f"ch_{len(charged)}"


def flask_app(**options: Any) -> Flask:
    app = Flask(__name__)

    @app.post("/charges")
    def charges() -> Any:
        charge_id = charge(request.get_json()["amount"])
        maybe_crash("after-charge")
        response = jsonify(charge_id=charge_id, query=request.query_string.decode())
        response.headers["X-Shop"] = "yes"
        return response, 201

    app.wsgi_app = IdempotencyWSGIMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


def streaming(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    charge(1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Date", "today")])
    return iter([b"x" * 60, b"y" * 60])


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    charged.clear()
    yield
    charged.clear()


def test_a_repeated_request_gets_the_recorded_response_without_running_again() -> None:
    http = flask_app().test_client()
    first = http.post("/charges?a=1", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    again = http.post("/charges?a=1", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json() == {"charge_id": "ch_1", "query": "a=1"}
    assert again.headers["X-Shop"] == "yes"
    assert again.headers["Content-Type"] == "application/json"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert charged == [5]
    store = get_runtime().store
    record = store.get_workflow("http:k1")
    assert record is not None and record.status == SUCCEEDED
    assert [step.name for step in store.list_steps("http:k1")] == [charge.__qualname__]


def test_the_same_key_with_another_body_is_refused_with_422() -> None:
    http = flask_app().test_client()
    http.post("/charges", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    refused = http.post("/charges", json={"amount": 6}, headers={"Idempotency-Key": "k1"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["type"] == "idempotency_error"
    assert charged == [5]


def test_requests_without_the_header_are_untouched() -> None:
    http = flask_app().test_client()
    answers = [http.post("/charges", json={"amount": 5}) for _ in range(2)]
    assert [answer.get_json()["charge_id"] for answer in answers] == ["ch_1", "ch_2"]
    assert "Idempotent-Replayed" not in answers[1].headers
    assert get_runtime().store.list_workflows(limit=10) == []


def test_a_request_that_crashed_mid_handler_resumes_after_its_finished_steps() -> None:
    app = flask_app()
    crash_points.add("after-charge")
    with pytest.raises(Crash):
        app.test_client().post("/charges", json={"amount": 5}, headers={"Idempotency-Key": "k1"})
    record = get_runtime().store.get_workflow("http:k1")
    assert record is not None and record.status == PENDING
    retry = app.test_client().post(
        "/charges", json={"amount": 5}, headers={"Idempotency-Key": "k1"}
    )
    assert (retry.status_code, retry.get_json()["charge_id"]) == (201, "ch_1")
    assert charged == [5]


def test_a_response_longer_than_the_limit_passes_through_unrecorded() -> None:
    http = Client(IdempotencyWSGIMiddleware(streaming, max_body=100))
    first = http.get("/", headers={"Idempotency-Key": "k1"})
    again = http.get("/", headers={"Idempotency-Key": "k1"})
    assert first.status_code == 200 and first.get_data() == b"x" * 60 + b"y" * 60
    assert again.status_code == 500
    assert "longer than 100 bytes" in again.get_json()["error"]["message"]
    assert charged == [1]


def test_server_headers_are_not_recorded() -> None:
    http = Client(IdempotencyWSGIMiddleware(streaming))
    http.get("/", headers={"Idempotency-Key": "k1"})
    again = http.get("/", headers={"Idempotency-Key": "k1"})
    assert again.get_data() == b"x" * 60 + b"y" * 60
    assert "Date" not in again.headers
    assert again.headers["Content-Length"] == "120"
    assert charged == [1]


def test_a_key_in_flight_elsewhere_gets_409_after_the_wait() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        entered.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    app = IdempotencyWSGIMiddleware(slow, wait=0.2)
    answers: list[Any] = []
    worker = threading.Thread(
        target=lambda: answers.append(Client(app).get("/", headers={"Idempotency-Key": "k"}))
    )
    worker.start()
    assert entered.wait(10)
    busy = Client(app).get("/", headers={"Idempotency-Key": "k"})
    release.set()
    worker.join(10)
    replay = Client(app).get("/", headers={"Idempotency-Key": "k"})
    assert busy.status_code == 409
    assert busy.headers["Retry-After"] == "1"
    assert answers[0].get_data() == replay.get_data() == b"done"


def test_django_wsgi_application() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="tests", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, MIDDLEWARE=[]
        )
    from django.core.wsgi import get_wsgi_application

    http = Client(IdempotencyWSGIMiddleware(get_wsgi_application()))
    answers = [http.post("/pay", data=b"7", headers={"Idempotency-Key": "k"}) for _ in range(2)]
    assert answers[0].get_data() == answers[1].get_data() == b"ch_1"
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    assert charged == [7]


def _django_pay(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(charge(int(request.body)), content_type="text/plain")


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":  # Django's URLconf, built only when Django asks for it
        from django.urls import path

        return [path("pay", _django_pay)]
    raise AttributeError(name)
