"""The aiohttp boundary: a client session's requests recorded as steps in
workflow code, below its redirects, cookies, retries and middlewares.

aiohttp has no transport object to patch; since version 3.12 it has client
middlewares, and the innermost one sees each request as it goes to the
connection (redirects and the session's own middlewares above it), which is
where httpx's transport sits. ``ClientSession._request`` (behind ``get``,
``post``, ``request`` and ``aiohttp.request``) is patched to add one more
middleware, innermost, when it is called in workflow code.

Invariants:
- In workflow code, the middleware records each request that would go to a
  connection as a step: the response's body is read whole inside the step
  (as the caller would read it: decompressed), recorded, and the caller gets a
  new `ClientResponse` built from the record and started by aiohttp's own
  ``start`` from a connection that holds the record (status, reason, HTTP
  version, headers in order with repeats, cookies, body as a stream). The
  first run hands out that rebuilt response too: it and a replay cannot be
  told apart. A session's cookie jar, ``raise_for_status`` and redirects run
  above, on recorded answers, on the first run and on replay alike.
- The request's identity is its method, whole URL and body: bytes, text, JSON
  and forms exactly; a body from a file or a stream is identified by its kind
  only (reading it here would consume it).
- A WebSocket upgrade (``ws_connect``) is never recorded: it is passed on.
- Closing a connector (``ClientSession.close``) in workflow code runs as
  library code, not workflow code: it closes the connections the first run
  pooled and a replay never opened, and before Python 3.12 it does that in a
  task, which workflow code would number as a branch and so shift the
  positions of the steps after it on the first run only.
- aiohttp older than 3.12 (no client middlewares) is left alone: its requests
  are not recorded, and the first workflow that would have recorded one logs
  that once.
- Outside workflow code (and inside steps) ``_request`` is the original:
  wrapt's `enabled` test is the one ContextVar read of `workflow_code`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from types import SimpleNamespace
from typing import Any

from .._context import CODE_VAR
from ._exchange import Request, record_async, recorded_value, text_pairs

log = logging.getLogger("autodurable")


def request_wrapper(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper of ``ClientSession._request`` (wrapt's signature), in workflow code:
    the same call with the recording middleware innermost."""
    if not _has_middlewares():
        return wrapped(*args, **kwargs)
    chosen = kwargs.get("middlewares")
    above = instance._middlewares if chosen is None else chosen
    return wrapped(*args, **{**kwargs, "middlewares": (*above, _recording_middleware)})


@functools.cache  # looked up, and reported, once
def _has_middlewares() -> bool:
    """Whether this aiohttp has client middlewares (3.12 and later)."""
    import aiohttp

    found = "middlewares" in inspect.signature(aiohttp.ClientSession._request).parameters
    if not found:
        log.warning(
            "aiohttp %s has no client middlewares (3.12 added them): its requests in "
            "workflow code are not recorded; upgrade aiohttp, or make the calls steps",
            aiohttp.__version__,
        )
    return found


async def _recording_middleware(req: Any, handler: Any) -> Any:
    """The innermost client middleware: the request as a step, its response rebuilt."""
    if req.headers.get("Upgrade"):  # a WebSocket: a connection, not an exchange
        return await handler(req)
    exchange = Request(req.method, str(req.url), _body(req.body))

    async def fetch() -> dict[str, Any]:
        response = await handler(req)
        try:
            body = await response.read()
        finally:
            response.release()
        version = response.version
        return recorded_value(
            exchange,
            response.status,
            response.reason or "",
            f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1",
            text_pairs(response.raw_headers),
            body,
            str(response.url),
        )

    return await _rebuilt(await record_async(exchange, fetch), req)


def _body(payload: Any) -> bytes:
    """The bytes that identify a request's body: its bytes when it holds them (bytes,
    text, JSON, forms); its kind otherwise (a file or a stream would be consumed)."""
    from aiohttp.payload import BytesPayload

    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if isinstance(payload, BytesPayload):
        return bytes(payload._value)  # what `as_bytes` returns since 3.12.4, before it too
    return f"<a body streamed from {type(payload).__name__}>".encode()


async def _rebuilt(value: dict[str, Any], req: Any) -> Any:
    """A `ClientResponse` for `req` started from the recorded `value` (aiohttp's own
    ``start`` sets status, headers and cookies as it would from the network)."""
    from aiohttp import ClientResponse
    from aiohttp.base_protocol import BaseProtocol
    from aiohttp.http import HttpVersion
    from aiohttp.streams import StreamReader
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    loop = asyncio.get_running_loop()
    headers = [(name, text) for name, text in value["headers"]]
    raw = tuple((name.encode("latin-1"), text.encode("latin-1")) for name, text in headers)
    major, _, minor = value["version"].removeprefix("HTTP/").partition(".")
    message = SimpleNamespace(
        version=HttpVersion(int(major or 1), int(minor or 1)),
        code=value["status"],
        reason=value["reason"],
        headers=CIMultiDictProxy(CIMultiDict(headers)),
        raw_headers=raw,
    )
    content = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    if value["body"]:
        content.feed_data(value["body"])
    content.feed_eof()
    url = URL(value["url"]) if value.get("url") else req.url
    response_class: Any = getattr(req, "response_class", None) or ClientResponse
    response = response_class(req.method, url, **_constructor_arguments(response_class, req))
    return await response.start(_RecordedConnection(message, content))


def _constructor_arguments(response_class: Any, req: Any) -> dict[str, Any]:
    """The keyword arguments this aiohttp's `ClientResponse` takes, for a response
    whose request was sent already (no writer, nothing to continue)."""
    from aiohttp.helpers import TimerNoop

    known = {
        "writer": None,
        "continue100": None,
        "timer": TimerNoop(),
        "request_info": req.request_info,
        "traces": [],
        "loop": asyncio.get_running_loop(),
        "session": getattr(req, "_session", None),
        "stream_writer": SimpleNamespace(output_size=0),
    }
    names = inspect.signature(response_class).parameters
    return {name: known[name] for name in names if name in known}


class _RecordedConnection:
    """What ``ClientResponse.start`` reads a response from: the record, not a socket."""

    def __init__(self, message: Any, content: Any) -> None:
        self.protocol = _RecordedProtocol(message, content)

    def release(self) -> None:
        """Nothing to give back to a pool."""

    def close(self) -> None:
        """Nothing to close."""


class _RecordedProtocol:
    upgraded = False

    def __init__(self, message: Any, content: Any) -> None:
        self._read = (message, content)

    async def read(self) -> tuple[Any, Any]:
        return self._read


def as_library_code(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper of ``BaseConnector.close``: run outside workflow code (see the
    invariants)."""
    token = CODE_VAR.set(None)
    try:
        return wrapped(*args, **kwargs)
    finally:
        CODE_VAR.reset(token)


# (module, attribute path, wrapper) for `_boundary_http.install`.
TARGETS = (
    ("aiohttp.client", "ClientSession._request", request_wrapper),
    ("aiohttp.connector", "BaseConnector.close", as_library_code),
)
