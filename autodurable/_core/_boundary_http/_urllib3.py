"""The urllib3 boundary: ``HTTPConnectionPool.urlopen`` recorded as a step in
workflow code; requests (``HTTPAdapter.send``) and botocore reach the network
through it.

Invariants:
- Called in workflow code, the pool's response is read whole inside the step,
  undecoded (``decode_content=False``), and the connection released; the
  caller gets a new ``urllib3.HTTPResponse`` built from the record over an
  in-memory body, with the ``preload_content`` and ``decode_content`` it asked
  for, the same status, reason, version and headers, so ``.data``,
  ``.read()``, ``.stream()`` and requests' ``.content`` and ``iter_lines``
  behave as over the network. The first run hands out that rebuilt response
  too. Cookies reach a requests session's jar as before (the rebuilt response
  carries the headers as the message requests reads them from).
- Redirects and retries that ``urlopen`` follows itself happen inside the
  step (its recursive calls run as the step's own code, unrecorded): the step
  records the final response. Redirects across hosts, followed by a
  ``PoolManager``, are separate steps.
- A body given as a file or an iterable is read into bytes before the step,
  so that its digest identifies the request; those bytes are sent.
- Outside workflow code (and inside steps) the patched method is the original:
  wrapt's `enabled` test is the one ContextVar read of `workflow_code`.
"""

from __future__ import annotations

import functools
import http.client
import inspect
import io
from typing import Any

import urllib3
from urllib3.response import HTTPResponse

from ._exchange import Request, record, recorded_value, text_pairs

_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=4)
def _signature(function: Any) -> inspect.Signature:
    return inspect.signature(function)


def _body_bytes(body: Any) -> bytes:
    """The request body as bytes (a file or an iterable read whole; text as UTF-8)."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body)


def _absolute(pool: Any, url: str) -> str:
    """The URL `urlopen` was given (a path, or absolute through a proxy), made absolute."""
    if "://" in url:
        return url
    scheme = getattr(pool, "scheme", None) or "http"
    host = pool.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    port = pool.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{url if url.startswith('/') else '/' + url}"


class _Original:
    """What urllib3 and requests read of the http.client response a rebuilt one stands
    for: its message (headers, which requests' cookie jar reads), its method, and that
    it is closed (there is no connection)."""

    __slots__ = ("_method", "msg")

    def __init__(self, method: str, msg: http.client.HTTPMessage) -> None:
        self._method, self.msg = method, msg

    def close(self) -> None:
        """Nothing to close."""

    def isclosed(self) -> bool:
        """Always: the body is in memory."""
        return True


def rebuilt(
    value: dict[str, Any], request: Request, preload_content: bool, decode_content: bool
) -> HTTPResponse:
    """The response a recorded value stands for, over an in-memory body."""
    message = http.client.HTTPMessage()
    for name, text in value["headers"]:
        message[name] = text  # appends: repeated headers (Set-Cookie) stay repeated
    version = int(value["version"]) if value["version"].isdigit() else 11
    return HTTPResponse(
        body=io.BytesIO(value["body"]),
        headers=urllib3.HTTPHeaderDict([(name, text) for name, text in value["headers"]]),
        status=value["status"],
        version=version,
        version_string={10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(version, "HTTP/?"),
        reason=value["reason"],
        preload_content=preload_content,
        decode_content=decode_content,
        original_response=_Original(request.method, message),  # type: ignore[arg-type]
        msg=message,
        request_method=request.method,
        request_url=value["url"] or request.url,
    )


def urlopen(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The wrapper of ``HTTPConnectionPool.urlopen`` (wrapt's signature), in workflow code."""
    # Bound on the plain function (cached), with the pool for `self`.
    bound = _signature(getattr(wrapped, "__func__", wrapped)).bind(instance, *args, **kwargs)
    call = dict(bound.arguments)
    call.pop("self", None)
    extra = call.pop("response_kw", {})
    method, url = str(call["method"]), str(call["url"])
    preload = call.get("preload_content", True)
    decode = call.get("decode_content", True)
    body = _body_bytes(call.get("body"))
    call["body"] = body if call.get("body") is not None else None
    exchange = Request(method, _absolute(instance, url), body)

    def fetch() -> dict[str, Any]:
        response = wrapped(**{**call, **extra, "preload_content": False, "decode_content": False})
        try:
            raw = response.read(decode_content=False)
        finally:
            response.release_conn()
        return recorded_value(
            exchange,
            response.status,
            response.reason or "",
            str(response.version),
            text_pairs(response.headers.items()),
            raw,
            _absolute(instance, response.url) if response.url else exchange.url,
        )

    return rebuilt(record(exchange, fetch), exchange, preload, decode)


# (module, attribute path, wrapper) for `_boundary_http.install`.
TARGETS = (("urllib3.connectionpool", "HTTPConnectionPool.urlopen", urlopen),)
