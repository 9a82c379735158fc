"""Light state shared by the web middleware and its automatic installation.

Invariants:
- Imports only the standard library (the hook's bootstrap imports it through
  `_auto`).
- `APPS` maps a label to the application recovery calls for the requests
  recorded under that label; registering a label again replaces it (the
  same program registers the same labels, see `_auto`). Applications
  registered automatically are held weakly: a test suite creating thousands
  keeps none of them alive.
- `IN_REQUEST` is true while a keyed request's application runs, so that a
  nested application (a mounted sub-application, a second middleware) passes
  the request through.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

HEADER = "idempotency-key"
_ASGI_HEADER = HEADER.encode("latin-1")
_WSGI_HEADER = "HTTP_IDEMPOTENCY_KEY"
RECOVERY_WAIT = 10.0  # seconds recovery waits for a server to load its application
DEFAULT_MAX_BODY = 1024 * 1024  # bytes of a response body recorded whole, at most

# True while a keyed request's application runs: nested applications pass through.
IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "autodurable_in_request", default=False
)


def _alive() -> bool:
    return True


class App(NamedTuple):
    """An application registered for recovery: what a request workflow calls.

    A named tuple, not a dataclass: this module is imported by every process
    under the hook, and dataclasses (with inspect) cost more than the rest of it.
    """

    call: Callable[..., Any]  # the application, below the middleware
    protocol: str  # "asgi" | "wsgi"
    max_body: int = DEFAULT_MAX_BODY
    alive: Callable[[], bool] = _alive  # False once an auto-registered app is gone


APPS: dict[str, App] = {}


def register_app(label: str, app: App) -> None:
    """Make `app` the application that recovery calls for requests recorded as `label`."""
    APPS[label] = app


def wait_for_app(label: str, protocol: str, timeout: float = RECOVERY_WAIT) -> App | None:
    """The application registered as `label` for `protocol`, waiting up to `timeout`
    seconds for it (recovery may start before the server has loaded it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = APPS.get(label)
        if found is not None and found.protocol == protocol and found.alive():
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def asgi_key(scope: Mapping[str, Any]) -> bytes | None:
    """The raw ``Idempotency-Key`` of an ASGI HTTP scope, or None."""
    for name, value in scope.get("headers") or ():
        if name.lower() == _ASGI_HEADER:
            return bytes(value)
    return None


def wsgi_key(environ: Mapping[str, Any]) -> str | None:
    """The ``Idempotency-Key`` of a WSGI environ, or None."""
    value = environ.get(_WSGI_HEADER)
    return value if isinstance(value, str) else None
