"""What a keyed request gets, and the shapes of recorded requests and responses.

A request with an ``Idempotency-Key`` header K is the workflow ``http:K``, of
the protocol's request workflow (recorded under a public name,
``autodurable.web:IdempotencyMiddleware.request_workflow`` or its WSGI twin,
that recovery can import). Its input is the recorded request (method, path,
query, headers, body, the label of the application); its output is the
recorded response (status, the headers the application set, the body).

Invariants:
- `open_request` decides without running anything: a new key is recorded as a
  pending workflow owned by this process (so a crash before the response
  leaves it for recovery or for the retry to adopt); a finished one is
  replayed; a pending one whose executor died is claimed; one a live executor
  runs is `Busy`. The claim is handed to the workflow call, never taken twice.
- The same key with another request (method, path, query or body digest: not
  the headers, which clients change between attempts) is refused with 422,
  before anything is claimed.
- A continued request runs with the *recorded* request, whichever attempt
  continues it, so a replay sees what the first execution saw.
- Headers the server computes (Date, Server, Content-Length, hop-by-hop) are
  not recorded; the replayed response gets its own Content-Length and an
  ``Idempotent-Replayed: true`` header.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from .._control._registry import find_workflow
from .._core._app_versions import version_for
from .._core._decorators import workflow_name
from .._core._runtime import get_runtime
from .._store import FAILED, FINISHED_STATUSES, PENDING, SUCCEEDED, Claim, WorkflowRecord
from ._apps import DEFAULT_MAX_BODY as DEFAULT_MAX_BODY

PREFIX = "http:"
MAX_KEY_LENGTH = 255
DEFAULT_WAIT = 2.0  # seconds a request waits for the same key in flight elsewhere
REPLAYED_HEADER = "idempotent-replayed"
_NOT_RECORDED_HEADERS = frozenset(
    {
        "date",
        "server",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "proxy-connection",
        "te",
        "trailer",
    }
)

Request = dict[str, Any]
Response = dict[str, Any]


@dataclass(frozen=True)
class Start:
    """Run (or continue) the request's workflow with this claim and the recorded request."""

    claim: Claim
    request: Request


@dataclass(frozen=True)
class Answer:
    """Answer with this response without running anything."""

    response: Response


@dataclass(frozen=True)
class Busy:
    """A live executor runs the request now."""


def workflow_id(key: str) -> str:
    """The workflow id of the request with this idempotency key."""
    return PREFIX + key


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an idempotency key (None when it can)."""
    if not key:
        return "the Idempotency-Key header is empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"the Idempotency-Key header is longer than {MAX_KEY_LENGTH} characters"
    if not key.isprintable() or not key.isascii():
        return "the Idempotency-Key header must be printable ASCII"
    return None


def fingerprint(request: Request) -> tuple[str, str, str, str]:
    """What must be the same for a retry: method, path, query and body digest."""
    body = request.get("body") or b""
    return (
        request["method"],
        request.get("root", "") + request["path"],
        request.get("query", ""),
        hashlib.sha256(body).hexdigest(),
    )


def recordable_headers(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """The response headers worth recording: the application's own, not the server's."""
    return [[name, value] for name, value in pairs if name.lower() not in _NOT_RECORDED_HEADERS]


def error_response(status: int, code: str, message: str, **extra: str) -> Response:
    """A JSON error response (``{"error": {"type", "message"}}``, as payment APIs do)."""
    body = json.dumps({"error": {"type": code, "message": message}}).encode()
    headers = [["content-type", "application/json"], *([k, v] for k, v in extra.items())]
    return {"status": status, "headers": headers, "body": body}


def replayed(response: Response) -> Response:
    """`response` as sent again: marked as a replay."""
    return {**response, "headers": [*response["headers"], [REPLAYED_HEADER, "true"]]}


def wire_headers(response: Response) -> list[tuple[str, str]]:
    """The headers to send: the recorded ones and a Content-Length of the body."""
    headers = [(name, value) for name, value in response["headers"]]
    return [*headers, ("content-length", str(len(response["body"] or b"")))]


# Requests this process runs now: the store cannot tell them apart (one executor),
# so a second attempt here would claim what the first one holds.
_running: set[str] = set()
_running_lock = threading.Lock()


def open_request(name: str, request: Request) -> Start | Answer | Busy:
    """Start, continue or answer the request's workflow (see the module's invariants).

    `name` is the registered name of the protocol's request workflow. After a
    `Start`, the caller runs the workflow and then calls `finished_here`.
    """
    wid = workflow_id(request["key"])
    with _running_lock:
        if wid in _running:
            return Busy()
        _running.add(wid)
    try:
        decision = _open(name, wid, request)
    except BaseException:
        finished_here(wid)
        raise
    if not isinstance(decision, Start):
        finished_here(wid)
    return decision


def finished_here(wid: str) -> None:
    """This process no longer runs request `wid` (see `open_request`)."""
    with _running_lock:
        _running.discard(wid)


def _open(name: str, wid: str, request: Request) -> Start | Answer | Busy:
    runtime = get_runtime()
    if wid in runtime.active:  # recovery runs it in this process
        return Busy()
    store = runtime.store
    fn = find_workflow(name)
    version = version_for(runtime.settings, fn.__wrapped__)
    for _ in range(3):  # a record deleted between two looks: look again
        record = store.get_workflow(wid)
        if record is None:
            inputs = runtime.codec.encode({"args": [request], "kwargs": {}}, f"the request {wid!r}")
            now = time.time()
            record = WorkflowRecord(
                wid, workflow_name(fn), PENDING, inputs, None, None, runtime.executor.id,
                now, now, version, None,
            )  # fmt: skip
            if store.create_workflow(record):
                return Start(Claim(record, True, [], None), request)
            continue
        recorded = _recorded_request(record)
        if record.name != name or recorded is None or fingerprint(recorded) != fingerprint(request):
            return Answer(mismatch(request["key"]))
        if record.status in FINISHED_STATUSES:
            return Answer(replayed(finished_response(record)))
        claim = store.claim_workflow(wid, runtime.executor, version)
        if claim is None:
            continue
        if claim.workflow.status in FINISHED_STATUSES:
            return Answer(replayed(finished_response(claim.workflow)))
        if claim.claimed:
            return Start(claim, recorded)
        return Busy()
    return Busy()


def _recorded_request(record: WorkflowRecord) -> Request | None:
    try:
        values = get_runtime().codec.decode(record.inputs)
        request = values["args"][0]
    except Exception:  # not a request workflow's inputs: another use of the id
        return None
    return request if isinstance(request, dict) and "method" in request else None


def mismatch(key: str) -> Response:
    """The 422 for a key used before with another request."""
    return error_response(
        422,
        "idempotency_error",
        f"Keys for idempotent requests can only be used with the same method, path, query "
        f"and body as the first request. The Idempotency-Key {key!r} was used with another "
        "request; use a new key for a new request.",
    )


def in_flight(key: str) -> Response:
    """The 409 for a key whose first request is still running."""
    return error_response(
        409,
        "idempotency_error",
        f"A request with the Idempotency-Key {key!r} is still being processed; retry later.",
        **{"retry-after": "1"},
    )


def finished_response(record: WorkflowRecord) -> Response:
    """The response a finished request workflow gives again."""
    if record.status == SUCCEEDED:
        response = get_runtime().codec.decode(record.output or "null")
        if isinstance(response, dict) and response.get("body") is not None:
            return response
        reason = response.get("unrecorded") if isinstance(response, dict) else None
        return error_response(
            500,
            "idempotency_error",
            "The request with this Idempotency-Key was executed, but its response was not "
            f"recorded ({reason or 'unknown reason'}), so it cannot be sent again.",
        )
    if record.status == FAILED:
        return {
            "status": 500,
            "headers": [["content-type", "text/plain; charset=utf-8"]],
            "body": b"Internal Server Error",
        }
    return error_response(
        409, "idempotency_error", "The request with this Idempotency-Key was cancelled."
    )
