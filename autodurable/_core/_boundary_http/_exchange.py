"""One HTTP exchange recorded as a step at a client library's transport.

Every boundary (`_httpx`, `_urllib3`) turns the request it sees into a
`Request` and calls `record` (or `record_async`) with a function that performs
it and returns a `Recorded` response, as plain data.

Invariants:
- The step's name is ``http METHOD host[:port]/path`` (the port only when it
  is not the scheme's default; never the query string, which may carry keys):
  a request to another method, host or path at the same position is another
  step, a `NondeterminismError` naming both.
- The step's arguments are the method, the whole URL and the sha256 of the
  body: only their digest is stored (`_watch.digest`), so a query's secrets
  never reach the store. Headers are not part of the identity: their volatile
  ones (authorization, dates, request ids, user agents, retry counts) change
  between a run and its replay. A recorded request whose body or query differs
  from the current one is a `NondeterminismError` whose message describes both
  requests (method, URL without its query, body size and digest).
- The recorded value is a dict of scalars, bytes and lists (status, reason,
  HTTP version, headers as text pairs, the raw body as sent on the wire, the
  final URL when a redirect followed below the transport changed it, the
  request's description): the codec round-trips it exactly.
- A step here has no retries of its own (the client's retry logic runs above
  the transport, on recorded answers); a failed request is recorded as the
  step's failure and raised again on replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..._errors import NondeterminismError
from .._context import current_run
from .._options import CallOptions, Retry
from .._steps import call_step, call_step_async

_OPTIONS = CallOptions(retries=Retry(max_attempts=1), unrecordable="error")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LONGEST_PATH = 200  # characters of the path kept in a step's name


@dataclass(frozen=True, slots=True)
class Request:
    """What identifies a request at a transport: method, absolute URL, body."""

    method: str
    url: str
    body: bytes

    @property
    def step_name(self) -> str:
        """``http METHOD host[:port]/path``: the step's name (no query string)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        path = parts.path or "/"
        if len(path) > _LONGEST_PATH:
            path = path[:_LONGEST_PATH] + "..."
        return f"http {self.method.upper()} {host}{path}"

    @property
    def body_digest(self) -> str:
        """The sha256 of the body, in hex."""
        return hashlib.sha256(self.body).hexdigest()

    def arguments(self) -> tuple[str, str, str]:
        """The step's arguments, of which the record keeps only a digest."""
        return (self.method.upper(), self.url, self.body_digest)

    def describe(self) -> str:
        """For people: method, URL without its query, the body's size and digest."""
        parts = urlsplit(self.url)
        query = "?..." if parts.query else ""
        url = f"{parts.scheme}://{parts.netloc}{parts.path}{query}"
        body = f"a body of {len(self.body)} bytes (sha256 {self.body_digest[:16]})"
        return f"{self.method.upper()} {url} with {body}"


def recorded_value(
    request: Request,
    status: int,
    reason: str,
    version: str,
    headers: list[list[str]],
    body: bytes,
    url: str,
) -> dict[str, Any]:
    """The value a boundary's step returns (and the store keeps) for one response."""
    return {
        "request": request.describe(),
        "status": status,
        "reason": reason,
        "version": version,
        "headers": headers,
        "body": body,
        # Only where it differs from the request's (redirects followed below the
        # transport): the query of a request's URL is not kept (see the invariants).
        "url": None if url == request.url else url,
    }


def text_pairs(pairs: Any) -> list[list[str]]:
    """Header pairs (bytes or str) as ``[[name, value], ...]`` text, order and repeats kept."""
    found: list[list[str]] = []
    for name, value in pairs:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        found.append([name, value])
    return found


def record(request: Request, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `fetch` as the step for `request` (or replay its record); the recorded value."""
    try:
        return call_step(_Fetch(fetch), request.arguments(), {}, request.step_name, _OPTIONS)  # type: ignore[no-any-return]
    except NondeterminismError as exc:
        raise _explained(exc, request) from None


async def record_async(
    request: Request, fetch: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """`record` for an async transport."""
    try:
        return await call_step_async(  # type: ignore[no-any-return]
            _FetchAsync(fetch), request.arguments(), {}, request.step_name, _OPTIONS
        )
    except NondeterminismError as exc:
        raise _explained(exc, request) from None


class _Fetch:
    """The step's function: performs the request (the step's arguments only identify it)."""

    __slots__ = ("fetch",)

    def __init__(self, fetch: Callable[[], dict[str, Any]]) -> None:
        self.fetch = fetch

    def __call__(self, *_identity: str) -> dict[str, Any]:
        return self.fetch()


class _FetchAsync:
    """`_Fetch` for an async transport."""

    __slots__ = ("fetch",)

    def __init__(self, fetch: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.fetch = fetch

    async def __call__(self, *_identity: str) -> dict[str, Any]:
        return await self.fetch()


def _explained(exc: NondeterminismError, request: Request) -> NondeterminismError:
    """`exc` again, naming the recorded request and this one when only their arguments
    (body, query) differ; other mismatches already name both steps."""
    if exc.arguments is None or exc.current != request.step_name:
        return exc
    recorded = _recorded_description(exc.position)
    found = NondeterminismError(
        exc.workflow_id,
        exc.position,
        f"{request.step_name}: {recorded or 'another request'}",
        f"{request.step_name}: {request.describe()}",
    )
    found.arguments = exc.arguments  # still "the same step, other arguments"
    return found


def _recorded_description(place: int | str) -> str | None:
    """The description of the request recorded at `place` of the current run, if any."""
    run = current_run()
    if run is None:
        return None
    try:
        position = int(str(place).rpartition(".")[2])
        row = run.history.get(position)
        if row is None or row.output is None:
            return None
        value = run.runtime.codec.decode(row.output)
    except Exception:  # a description is a courtesy: the mismatch is reported anyway
        return None
    described = value.get("request") if isinstance(value, dict) else None
    return described if isinstance(described, str) else None
