"""The shop examples as real servers under ``autodurable run``, killed mid-request.

Each framework's server (uvicorn for FastAPI, Flask's development server,
Django's runserver) charges an order through a naive payment service, then
blocks; the test SIGKILLs it there, lets the gate open, starts it again, and
the client, retrying all along with the same ``Idempotency-Key``, gets the
answer of the first attempt while the payment service counts one charge.
The same key with another body is refused with 422; requests without the
header charge every time, as they do without autodurable.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autodurable._store import SUCCEEDED, open_store

from ..helpers import serving, wait_until
from ._shop import EXAMPLE, Answer, Server, post, post_retrying, shop_env, shop_project


@pytest.fixture
def payments(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The naive payment service's URL and its log of charges (a line per charge)."""
    log = tmp_path / "charges.txt"
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "payments.py"), "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    with serving(service) as url:
        yield url, log


def charges(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_a_request_killed_mid_handler_charges_once_and_its_retry_gets_the_answer(
    framework: str, database_url: str, tmp_path: Path, payments: tuple[str, Path]
) -> None:
    url, log = payments
    gate = tmp_path / "gate"
    server = Server(framework, shop_project(tmp_path / "shop"), shop_env(database_url, url, gate))
    server.start()
    try:
        order = {"order": "o1", "amount": 500}
        answers: list[Answer] = []
        client = threading.Thread(
            target=lambda: answers.append(
                post_retrying(server.port, order, "key-1", time.monotonic() + 45)
            )
        )
        client.start()
        wait_until((tmp_path / "gate.o1.waiting").exists, timeout=30)
        server.kill()  # after the charge, before the response
        assert charges(log) == ["o1 500"]
        gate.touch()
        server.start()
        client.join(50)
        assert answers, server.output()
        first = answers[0]
        assert first.status == 200, (first, server.output())
        assert first.body == {"order": "o1", "amount": 500, "charge_id": "ch_1"}
        assert first.headers["x-shop-order"] == "o1"
        assert charges(log) == ["o1 500"]  # the charge step was replayed, not run again

        again = post(server.port, order, "key-1")
        assert (again.status, again.body) == (200, first.body)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"].startswith("application/json")

        other = post(server.port, {"order": "o1", "amount": 999}, "key-1")
        assert other.status == 422
        assert other.body["error"]["type"] == "idempotency_error"

        plain = [post(server.port, {"order": "o2", "amount": 700}) for _ in range(2)]
        assert [answer.status for answer in plain] == [200, 200]
        assert "idempotent-replayed" not in plain[1].headers
        assert charges(log) == ["o1 500", "o2 700", "o2 700"]
    finally:
        server.stop()
    assert "Error in sitecustomize" not in server.output()


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_recovery_finishes_a_killed_request_when_the_server_starts_again(
    framework: str, database_url: str, tmp_path: Path, payments: tuple[str, Path]
) -> None:
    url, log = payments
    gate = tmp_path / "gate"
    server = Server(framework, shop_project(tmp_path / "shop"), shop_env(database_url, url, gate))
    server.start()
    store = open_store(database_url)
    try:
        order = {"order": "o3", "amount": 300}
        client = threading.Thread(target=lambda: _attempt(server.port, order, "key-3"))
        client.start()
        wait_until((tmp_path / "gate.o3.waiting").exists, timeout=30)
        server.kill()
        client.join(10)
        gate.touch()
        server.start()  # nobody retries: recovery finishes the request by itself

        def finished() -> bool:
            record = store.get_workflow("http:key-3")
            return record is not None and record.status == SUCCEEDED

        wait_until(finished, timeout=30)
        replay = post(server.port, order, "key-3")
        assert replay.status == 200, (replay, server.output())
        assert replay.body == {"order": "o3", "amount": 300, "charge_id": "ch_1"}
        assert replay.headers["idempotent-replayed"] == "true"
        assert charges(log) == ["o3 300"]
    finally:
        store.close()
        server.stop()
    assert "cannot resume" not in server.output()


def _attempt(port: int, body: object, key: str) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        post(port, body, key, timeout=30)
