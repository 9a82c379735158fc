"""The httpx boundary: ``HTTPTransport.handle_request`` and
``AsyncHTTPTransport.handle_async_request`` recorded as steps in workflow code,
in httpx and in its successor package httpx2 (same API; the openai SDK from
version 3 uses it).

The openai and anthropic SDKs, and the agent frameworks built on them, reach
the network through these two methods, so their requests are recorded here
whoever calls them.

Invariants:
- Called in workflow code, the transport's response is read whole inside the
  step (its raw bytes, before any content decoding), recorded, and the caller
  gets a new `httpx.Response` built from the record: same status, headers
  (in order, repeats kept), HTTP version, reason phrase and raw body, as a
  byte stream that ``read``, ``iter_bytes``, ``aiter_lines`` and the rest
  decode as they would have decoded the network's. The first run hands out
  that rebuilt response too, so it and a replay cannot be told apart.
- A streamed response (``stream=True``, server-sent events) is read to its
  end before the caller sees its first byte; the record replays it as a
  stream.
- The request's body is read before the step (``Request.read``), so that its
  digest identifies it; a streamed request body is sent as those bytes.
- Outside workflow code (and inside steps) the patched method is the
  original: wrapt's `enabled` test is the one ContextVar read of
  `workflow_code`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ._exchange import Request, record, record_async, recorded_value, text_pairs

if TYPE_CHECKING:
    import httpx  # httpx2's types are the same


def _package(request: Any) -> Any:
    """The package (httpx or httpx2) of the transport that got `request`."""
    return sys.modules[type(request).__module__.partition(".")[0]]


def _request(request: httpx.Request) -> Request:
    return Request(request.method, str(request.url), request.content)


def _value(
    exchange: Request, request: httpx.Request, response: httpx.Response, body: bytes
) -> dict[str, Any]:
    extensions = response.extensions
    version = extensions.get("http_version", b"HTTP/1.1")
    reason = extensions.get("reason_phrase", b"")
    return recorded_value(
        exchange,
        response.status_code,
        reason.decode("latin-1") if isinstance(reason, bytes) else str(reason),
        version.decode("latin-1") if isinstance(version, bytes) else str(version),
        text_pairs(response.headers.raw),
        body,
        str(request.url),
    )


def rebuilt(value: dict[str, Any], request: httpx.Request) -> httpx.Response:
    """The response a recorded value stands for, its body a byte stream (sync and async)."""
    headers = [(name.encode("latin-1"), text.encode("latin-1")) for name, text in value["headers"]]
    package = _package(request)
    response: httpx.Response = package.Response(
        value["status"],
        headers=headers,
        stream=package.ByteStream(value["body"]),
        request=request,
        extensions={
            "http_version": value["version"].encode("latin-1"),
            "reason_phrase": value["reason"].encode("latin-1"),
        },
    )
    return response


def handle_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper of ``HTTPTransport.handle_request`` (wrapt's signature), in workflow code."""
    request: httpx.Request = args[0] if args else kwargs["request"]
    request.read()
    exchange = _request(request)

    def fetch() -> dict[str, Any]:
        response = wrapped(*args, **kwargs)
        try:
            body = b"".join(response.iter_raw())
        finally:
            response.close()
        return _value(exchange, request, response, body)

    return rebuilt(record(exchange, fetch), request)


def handle_async_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper of ``AsyncHTTPTransport.handle_async_request``, in workflow code."""
    return _handle_async(wrapped, args, kwargs)


async def _handle_async(
    wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> httpx.Response:
    request: httpx.Request = args[0] if args else kwargs["request"]
    await request.aread()
    exchange = _request(request)

    async def fetch() -> dict[str, Any]:
        response = await wrapped(*args, **kwargs)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return _value(exchange, request, response, body)

    return rebuilt(await record_async(exchange, fetch), request)


# (module, attribute path, wrapper) for `_boundary_http.install`.
TARGETS = tuple(
    target
    for package in ("httpx", "httpx2")
    for target in (
        (package, "HTTPTransport.handle_request", handle_request),
        (package, "AsyncHTTPTransport.handle_async_request", handle_async_request),
    )
)
