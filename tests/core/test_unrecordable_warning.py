"""A workflow whose inputs cannot be recorded (a request handler taking `request: Request`)
is reported in one short line, once per function: the parameter, its type and the fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import autodurable
from autodurable._core import _report


class Request:
    """Like starlette's: an object holding a live connection, which the codec refuses."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.receive = lambda: None


@autodurable.workflow(unrecordable="rerun")
def handle(request: Request, n: int) -> str:
    return f"{request.path}:{n}"


@autodurable.workflow(unrecordable="rerun")
def handle_keyword(*, request: Request) -> str:
    return request.path


def _reports(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "autodurable"]


def test_unrecordable_request_is_reported_once_short_and_readable(database, caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    _report.forget()
    assert [handle(Request("/orders"), n) for n in range(3)] == [f"/orders:{n}" for n in range(3)]
    reports = _reports(caplog)
    assert len(reports) == 1  # once per function, not per call
    (line,) = reports
    name = f"{__name__}:handle"
    # One line, short apart from the two names (this test module's are long).
    assert "\n" not in line and len(line) - len(name) - len(f"{__name__}.Request") <= 160
    assert line == (
        f"autodurable: workflow {name} runs unrecorded: its parameter 'request' is a "
        f"{__name__}.Request, which cannot be recorded; pass plain data taken from it "
        "(the fields it needs) instead"
    )


def test_a_keyword_argument_is_named_too(database, caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    _report.forget()
    assert handle_keyword(request=Request("/a")) == "/a"
    assert handle_keyword(request=Request("/b")) == "/b"
    (line,) = _reports(caplog)
    assert "its parameter 'request' is a" in line and "Return plain data" not in line


@autodurable.workflow(unrecordable="rerun")
def endpoint(request: Any) -> str:  # a starlette handler
    return str(request.url.path)


def test_a_real_starlette_request(database, caplog):
    requests = pytest.importorskip("starlette.requests")  # installed with mcp (the ai extra)
    caplog.set_level(logging.WARNING, logger="autodurable")
    _report.forget()
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    for _ in range(3):
        assert endpoint(requests.Request(scope)) == "/x"
    (line,) = _reports(caplog)
    assert "its parameter 'request' is a starlette.requests.Request, which cannot" in line
    assert len(line) <= 240, line


def test_other_reports_are_left_as_they_are(caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    _report.forget()
    _report.warn_once("subject", "autodurable: something else; it is not recorded")
    assert _reports(caplog) == ["autodurable: something else; it is not recorded"]
