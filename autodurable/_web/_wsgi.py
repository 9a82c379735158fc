"""WSGI: `IdempotencyWSGIMiddleware` and the request workflow it runs.

Invariants:
- A request without an ``Idempotency-Key`` header goes to the application
  untouched.
- A keyed request's body is read whole first (its digest is part of what a
  retry must repeat); the application reads it from the record.
- The application runs, and its response iterable is consumed, inside the
  request workflow and outside any workflow the server itself runs in, so
  the handler's steps are the request's: a crash mid-handler resumes after
  the finished ones.
- The response is buffered up to ``max_body`` bytes and sent once recorded.
  A longer body is not recorded (the workflow records that; a retry gets a
  500 that says so): the buffered part and the rest of the application's
  iterable are sent on as they come, the rest after the workflow ended.
"""

from __future__ import annotations

import contextvars
import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from .._core._context import enter_run, exit_run
from .._core._decorators import workflow
from .._core._options import options
from .._core._workflows import handed_over
from .._errors import AutodurableError
from . import _record
from ._apps import IN_REQUEST, App, register_app, wait_for_app, wsgi_key

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# The recorded name: its public path, so that recovery imports it if need be.
WORKFLOW_NAME = "autodurable.web:IdempotencyWSGIMiddleware.request_workflow"
_POLL = 0.05  # seconds between looks at a request in flight elsewhere
_CGI_HEADERS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


@dataclass
class _Live:
    """The attempt that runs the workflow now (None in recovery)."""

    middleware: IdempotencyWSGIMiddleware
    environ: Environ
    # A response too long to record: what was buffered and the rest of the iterable.
    rest: tuple[list[bytes], Iterator[bytes], Iterable[bytes]] | None = None


_LIVE: contextvars.ContextVar[_Live | None] = contextvars.ContextVar(
    "autodurable_web_wsgi_live", default=None
)


class IdempotencyWSGIMiddleware:
    """WSGI middleware making requests with an ``Idempotency-Key`` header idempotent.

    The WSGI twin of `IdempotencyMiddleware` (same behaviour, same
    parameters): a request with key K runs as the workflow ``http:K`` with
    the handler's steps as its steps, and its response is recorded; another
    request with K gets that response without running the handler; K with
    another method, path, query or body gets 422; K still running elsewhere
    waits up to `wait` seconds, then gets 409.

    Usage: ``app.wsgi_app = IdempotencyWSGIMiddleware(app.wsgi_app)`` (Flask),
    or ``application = IdempotencyWSGIMiddleware(get_wsgi_application())``
    (Django).
    """

    # The workflow each keyed request runs (also its recorded name's target).
    request_workflow: ClassVar[Callable[[dict[str, Any]], Any]]

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_body: int = _record.DEFAULT_MAX_BODY,
        wait: float = _record.DEFAULT_WAIT,
        name: str = "wsgi",
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.wait = wait
        self.name = name
        alive = getattr(app, "alive", None)  # an application registered automatically
        register_app(name, App(app, "wsgi", max_body, alive=alive or (lambda: True)))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one WSGI call (see the class)."""
        key = wsgi_key(environ)
        if key is None or IN_REQUEST.get():
            return self.app(environ, start_response)
        problem = _record.key_problem(key)
        if problem is not None:
            return _send(start_response, _record.error_response(400, "idempotency_error", problem))
        request = _request(environ, key, _read_body(environ), self.name)
        deadline = time.monotonic() + self.wait
        while True:
            decision = _record.open_request(WORKFLOW_NAME, request)
            if not isinstance(decision, _record.Busy) or time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
        if isinstance(decision, _record.Busy):
            return _send(start_response, _record.in_flight(key))
        if isinstance(decision, _record.Answer):
            return _send(start_response, decision.response)
        live = _Live(self, environ)
        live_token = _LIVE.set(live)
        run_tokens = enter_run(None)  # a server run as a workflow: the request is its own
        wid = decision.claim.workflow.workflow_id
        try:
            with handed_over(decision.claim):
                response = options(wsgi_request, workflow_id=wid)(decision.request)
        finally:
            exit_run(run_tokens)
            _LIVE.reset(live_token)
            _record.finished_here(wid)
        if live.rest is None:
            return _send(start_response, response)
        start_response(_status_line(response["status"]), _record.wire_headers(response)[:-1])
        return _Passing(*live.rest)


@workflow(name=WORKFLOW_NAME)
def wsgi_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run the application on a recorded request; the response to record."""
    live = _LIVE.get()
    if live is not None:
        app, limit = live.middleware.app, live.middleware.max_body
        environ = _environ(request, live.environ)
    else:
        found = wait_for_app(request["app"], "wsgi")
        if found is None:
            raise AutodurableError(
                f"the application {request['app']!r} that received request "
                f"{_record.workflow_id(request['key'])!r} is not loaded in this process yet; "
                "the retry of the request finishes it"
            )
        app, limit, environ = found.call, found.max_body, _environ(request, None)
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"], started["headers"] = status, headers
        return chunks.append  # the legacy write() callable

    token = IN_REQUEST.set(True)
    try:
        result = app(environ, start_response)
        iterator = iter(result)
        size = sum(len(chunk) for chunk in chunks)
        unrecorded = None
        for chunk in iterator:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                unrecorded = f"its body is longer than {limit} bytes"
                break
    finally:
        IN_REQUEST.reset(token)
    if unrecorded is not None and live is not None:
        live.rest = (chunks, iterator, result)  # sent, then closed, by the middleware
    else:
        _close(result)
    status = int(str(started.get("status", "500")).split(" ", 1)[0])
    recorded: dict[str, Any] = {
        "status": status,
        "headers": _record.recordable_headers(list(started.get("headers") or [])),
        "body": None if unrecorded else b"".join(chunks),
    }
    if unrecorded:
        recorded["unrecorded"] = unrecorded
    return recorded


IdempotencyWSGIMiddleware.request_workflow = staticmethod(wsgi_request)


class _Passing:
    """The response iterable of a body too long to record: buffered part, then the rest."""

    def __init__(self, head: list[bytes], rest: Iterator[bytes], result: Iterable[bytes]) -> None:
        self._head, self._rest, self._result = head, rest, result

    def __iter__(self) -> Iterator[bytes]:
        yield from self._head
        yield from self._rest

    def close(self) -> None:
        _close(self._result)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _read_body(environ: Environ) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        return bytes(stream.read(length))
    if environ.get("wsgi.input_terminated"):  # chunked upload the server de-chunks
        return bytes(stream.read())
    return b""


def _request(environ: Environ, key: str, body: bytes, label: str) -> dict[str, Any]:
    headers = []
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers.append([name[5:].replace("_", "-").lower(), value])
        elif name in _CGI_HEADERS and value:
            headers.append([_CGI_HEADERS[name], value])
    remote = environ.get("REMOTE_ADDR")
    return {
        "app": label,
        "key": key,
        "method": environ.get("REQUEST_METHOD", "GET"),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "http_version": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2],
        "root": environ.get("SCRIPT_NAME", ""),
        "path": environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "headers": headers,
        "body": body,
        "client": [remote, int(environ.get("REMOTE_PORT") or 0)] if remote else None,
        "server": [environ.get("SERVER_NAME", "localhost"), int(environ.get("SERVER_PORT") or 80)],
    }


def _environ(request: dict[str, Any], live: Environ | None) -> Environ:
    """The environ the application sees: the recorded request (over the live environ)."""
    environ: Environ = (
        {k: v for k, v in live.items() if not k.startswith("HTTP_")}
        if live is not None
        else {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "SERVER_NAME": (request.get("server") or ["localhost"])[0],
            "SERVER_PORT": str((request.get("server") or ["", 80])[1]),
            "SERVER_PROTOCOL": f"HTTP/{request.get('http_version') or '1.1'}",
        }
    )
    for name in _CGI_HEADERS:
        environ.pop(name, None)
    for name, value in request["headers"]:
        cgi = name.upper().replace("-", "_")
        environ[cgi if cgi in _CGI_HEADERS else f"HTTP_{cgi}"] = value
    client = request.get("client")
    if live is None and client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    environ.update(
        {
            "REQUEST_METHOD": request["method"],
            "SCRIPT_NAME": request["root"],
            "PATH_INFO": request["path"],
            "QUERY_STRING": request["query"],
            "CONTENT_LENGTH": str(len(request["body"])),
            "wsgi.url_scheme": request["scheme"],
            "wsgi.input": io.BytesIO(request["body"]),
        }
    )
    environ.pop("wsgi.input_terminated", None)
    return environ


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _send(start_response: StartResponse, response: dict[str, Any]) -> list[bytes]:
    """Start a whole (recorded or error) response; its body iterable."""
    start_response(_status_line(response["status"]), _record.wire_headers(response))
    return [response["body"] or b""]
