"""ASGI: `IdempotencyMiddleware` and the request workflow it runs.

Invariants:
- A request without an ``Idempotency-Key`` header, and every non-HTTP scope,
  goes to the application untouched.
- A keyed request's body is read whole before anything else (its digest is
  part of what a retry must repeat); the application reads it from the record.
- The application runs inside the request workflow, outside any other
  workflow the server itself may run in, so the steps of the handler are the
  request's steps: a crash mid-handler resumes after the finished ones.
- The response is buffered up to ``max_body`` bytes and sent once recorded.
  A longer body is sent on as it comes (buffered part first) and is not
  recorded: the workflow records that, and a retry gets a 500 that says so.
- After the body, the application's ``receive`` never reports a disconnect:
  the request runs to the end whether or not its client is still there, so
  that the retry finds its result.
- An exception raised after the application sent its whole response (as
  Starlette's error middleware does after its 500) is re-raised after the
  response is recorded and sent, so the server logs it as it would.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._core._context import enter_run, exit_run
from .._core._decorators import workflow
from .._core._options import options
from .._core._workflows import handed_over
from .._errors import AutodurableError
from . import _record
from ._apps import IN_REQUEST, App, asgi_key, register_app, wait_for_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The recorded name: its public path, so that recovery imports it if need be.
WORKFLOW_NAME = "autodurable.web:IdempotencyMiddleware.request_workflow"
_POLL = 0.05  # seconds between looks at a request in flight elsewhere


@dataclass
class _Live:
    """The attempt that runs the workflow now: its connection (None in recovery)."""

    middleware: IdempotencyMiddleware
    scope: Scope
    send: Send
    sent: bool = False  # the response went out while the workflow ran (passed through)
    error: BaseException | None = None


_LIVE: contextvars.ContextVar[_Live | None] = contextvars.ContextVar(
    "autodurable_web_asgi_live", default=None
)


class IdempotencyMiddleware:
    """ASGI middleware making requests with an ``Idempotency-Key`` header idempotent.

    A request whose header carries key K runs as the workflow ``http:K``: the
    handler's steps are recorded as that workflow's, and its response
    (status, the application's headers, body) is recorded. Another request
    with K gets the recorded response (with ``Idempotent-Replayed: true``)
    without running the handler; one interrupted by a crash is finished by
    recovery or by its retry. K with another method, path, query or body is
    refused with 422; K while its first request still runs elsewhere waits up
    to `wait` seconds for it, then gets 409. Requests without the header are
    passed through untouched.

    `max_body`: response bodies up to this many bytes are recorded (longer
    ones are streamed through unrecorded). `name`: the label under which a
    restarted process finds this application to finish interrupted requests
    (give each application of a process its own).

    Usage: ``app = IdempotencyMiddleware(app)``, or with Starlette/FastAPI
    ``app.add_middleware(IdempotencyMiddleware)``.
    """

    # The workflow each keyed request runs (also its recorded name's target).
    request_workflow: ClassVar[Callable[[dict[str, Any]], Any]]

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int = _record.DEFAULT_MAX_BODY,
        wait: float = _record.DEFAULT_WAIT,
        name: str = "asgi",
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.wait = wait
        self.name = name
        alive = getattr(app, "alive", None)  # an application registered automatically
        register_app(name, App(app, "asgi", max_body, alive=alive or (lambda: True)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call (see the class)."""
        raw_key = asgi_key(scope) if scope.get("type") == "http" else None
        if raw_key is None or IN_REQUEST.get():
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        problem = _record.key_problem(key)
        if problem is not None:
            await _send(send, _record.error_response(400, "idempotency_error", problem))
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before sending its body: nothing to do
        request = _request(scope, key, body, self.name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while True:
            decision = await asyncio.to_thread(_record.open_request, WORKFLOW_NAME, request)
            if not isinstance(decision, _record.Busy) or loop.time() >= deadline:
                break
            await asyncio.sleep(_POLL)
        if isinstance(decision, _record.Busy):
            await _send(send, _record.in_flight(key))
        elif isinstance(decision, _record.Answer):
            await _send(send, decision.response)
        else:
            await self._run(decision, scope, send)

    async def _run(self, decision: _record.Start, scope: Scope, send: Send) -> None:
        live = _Live(self, scope, send)
        live_token = _LIVE.set(live)
        run_tokens = enter_run(None)  # a server run as a workflow: the request is its own
        wid = decision.claim.workflow.workflow_id
        try:
            with handed_over(decision.claim):
                response = await options(asgi_request, workflow_id=wid)(decision.request)
        finally:
            exit_run(run_tokens)
            _LIVE.reset(live_token)
            _record.finished_here(wid)
        if not live.sent:
            await _send(send, response)
        if live.error is not None:
            raise live.error


@workflow(name=WORKFLOW_NAME)
async def asgi_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run the application on a recorded request; the response to record."""
    live = _LIVE.get()
    if live is not None:
        app, max_body = live.middleware.app, live.middleware.max_body
        scope = _live_scope(live.scope, request)
    else:
        found = wait_for_app(request["app"], "asgi")
        if found is None:
            raise AutodurableError(
                f"the application {request['app']!r} that received request "
                f"{_record.workflow_id(request['key'])!r} is not loaded in this process yet; "
                "the retry of the request finishes it"
            )
        app, max_body, scope = found.call, found.max_body, _scope_from(request)
    capture = _Capture(max_body, live)
    token = IN_REQUEST.set(True)
    try:
        await app(scope, _receiver(request["body"]), capture.send)
    except Exception as exc:
        if not capture.complete:
            raise
        if live is not None:
            live.error = exc  # raised once the response is recorded and sent
    finally:
        IN_REQUEST.reset(token)
    return capture.response()


IdempotencyMiddleware.request_workflow = staticmethod(asgi_request)


@dataclass
class _Capture:
    """The ``send`` the application gets inside the workflow: buffers the response."""

    limit: int
    live: _Live | None
    status: int = 500
    headers: list[tuple[str, str]] = field(default_factory=list)
    start: Message | None = None
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    complete: bool = False
    unrecorded: str | None = None

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self.start = message
            self.status = int(message["status"])
            self.headers = [
                (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                for k, v in message.get("headers") or ()
            ]
        elif kind == "http.response.body":
            await self._body(bytes(message.get("body") or b""), bool(message.get("more_body")))
        elif self.unrecorded is not None:
            await self._forward(message)  # trailers and the like, while passing through

    async def _body(self, chunk: bytes, more: bool) -> None:
        if self.unrecorded is None:
            self.chunks.append(chunk)
            self.size += len(chunk)
            if self.size > self.limit:
                self.unrecorded = f"its body is longer than {self.limit} bytes"
                if self.start is not None:
                    await self._forward(self.start)
                chunk, self.chunks = b"".join(self.chunks), []
                await self._forward(
                    {"type": "http.response.body", "body": chunk, "more_body": more}
                )
        else:
            await self._forward({"type": "http.response.body", "body": chunk, "more_body": more})
        if not more:
            self.complete = True

    async def _forward(self, message: Message) -> None:
        if self.live is None:
            return  # recovery: nobody to send to
        self.live.sent = True
        with contextlib.suppress(OSError):  # the client left: the request still finishes
            await self.live.send(message)

    def response(self) -> dict[str, Any]:
        recorded: dict[str, Any] = {
            "status": self.status,
            "headers": _record.recordable_headers(self.headers),
            "body": None if self.unrecorded else b"".join(self.chunks),
        }
        if self.unrecorded:
            recorded["unrecorded"] = self.unrecorded
        return recorded


def _body_message(chunk: bytes, more: bool) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


def _receiver(body: bytes) -> Receive:
    """The application's ``receive``: the recorded body, then nothing (see the invariants)."""
    given = False

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: cancelled when the app is done
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return None
        chunks.append(bytes(message.get("body") or b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _request(scope: Scope, key: str, body: bytes, label: str) -> dict[str, Any]:
    client, server = scope.get("client"), scope.get("server")
    return {
        "app": label,
        "key": key,
        "method": scope.get("method", "GET"),
        "scheme": scope.get("scheme", "http"),
        "http_version": scope.get("http_version", "1.1"),
        "root": scope.get("root_path", ""),
        "path": scope.get("path", "/"),
        "raw_path": bytes(scope.get("raw_path") or b"").decode("latin-1"),
        "query": bytes(scope.get("query_string") or b"").decode("latin-1"),
        "headers": [
            [bytes(k).decode("latin-1"), bytes(v).decode("latin-1")]
            for k, v in scope.get("headers") or ()
        ],
        "body": body,
        "client": list(client) if client else None,
        "server": list(server) if server else None,
    }


def _request_fields(request: dict[str, Any]) -> dict[str, Any]:
    path: str = request["path"]
    return {
        "method": request["method"],
        "path": path,
        "raw_path": (
            request["raw_path"].encode("latin-1") if request.get("raw_path") else path.encode()
        ),
        "root_path": request["root"],
        "query_string": request["query"].encode("latin-1"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request["headers"]],
    }


def _live_scope(scope: Scope, request: dict[str, Any]) -> Scope:
    """The live scope, with the recorded request's method, path and headers."""
    made = dict(scope)
    made.update(_request_fields(request))
    extensions = dict(made.get("extensions") or {})
    for name in ("http.response.pathsend", "http.response.zerocopy", "http.response.push"):
        extensions.pop(name, None)  # the response must come through `send` to be recorded
    made["extensions"] = extensions
    return made


def _scope_from(request: dict[str, Any]) -> Scope:
    """A scope for a recorded request finished by recovery (no client connected)."""
    client, server = request.get("client"), request.get("server")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.get("http_version", "1.1"),
        "scheme": request.get("scheme", "http"),
        "client": tuple(client) if client else None,
        "server": tuple(server) if server else None,
        "extensions": {},
        "state": {},
        **_request_fields(request),
    }


async def _send(send: Send, response: dict[str, Any]) -> None:
    """Send a whole (recorded or error) response."""
    headers = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in _record.wire_headers(response)
    ]
    await send({"type": "http.response.start", "status": response["status"], "headers": headers})
    await send({"type": "http.response.body", "body": response["body"] or b""})
