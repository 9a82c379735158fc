"""Who may see the dashboard and act through it: token, Host check, CSRF, headers.

Invariants:
- With a token, every request carries it (``Authorization: Bearer T``, or the
  cookie set when a page is first opened with ``?token=T``); anything else
  gets 401 and no data. Tokens are compared in constant time, and the cookie
  holds a digest of the token, never the token.
- Served on loopback, a request must name a loopback host (``Host:
  127.0.0.1:8080``, ``localhost``): a page of another site that made its own
  name point at 127.0.0.1 (DNS rebinding) gets 403.
- Nothing changes state on a GET. A change is a POST that carries this
  server's CSRF token (in the confirmation form) and, when the browser says
  where it comes from (``Origin``), comes from this dashboard's own pages.
- Every response carries a Content-Security-Policy allowing this origin only,
  no inline script, and no framing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._html import message_page
from ._options import LOOPBACK_NAMES, UiOptions, is_loopback

COOKIE = "autodurable_ui"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _digest(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class Guard:
    """ASGI middleware enforcing the token and Host rules, adding the security headers."""

    def __init__(self, app: ASGIApp, options: UiOptions, secret: str) -> None:
        self.app = app
        self.options = options
        self.cookie_value = _digest(options.token, "cookie") if options.token else ""
        self.csrf = _digest(secret, "csrf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if not self._host_allowed(headers.get("host", "")):
            await _respond(
                send_secured,
                403,
                "Wrong host",
                "This dashboard answers to 127.0.0.1 and localhost only (it listens on loopback).",
            )
            return
        if self.options.token:
            verdict = self._token_verdict(scope, headers)
            if verdict == "redirect":
                await self._set_cookie_and_redirect(scope, send_secured)
                return
            if verdict != "ok":
                await _respond(
                    send_secured,
                    401,
                    "Token needed",
                    "This dashboard needs its "
                    "token: open it once with ?token=YOUR_TOKEN, or send "
                    "Authorization: Bearer YOUR_TOKEN.",
                )
                return
        await self.app(scope, receive, send_secured)

    def _host_allowed(self, host_header: str) -> bool:
        if not self.options.loopback:
            return True  # beyond loopback the token guards every request
        host = urlsplit(f"//{host_header}").hostname or ""
        return (
            host.lower() in LOOPBACK_NAMES
            or is_loopback(host)
            or host == self.options.host.strip("[]").lower()
        )

    def _token_verdict(self, scope: Scope, headers: dict[str, str]) -> str:
        token = self.options.token or ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), token.encode()
        ):
            return "ok"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query and hmac.compare_digest(query["token"].encode(), token.encode()):
            return "redirect" if scope["method"] in ("GET", "HEAD") else "ok"
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is just no cookie
            return "no"
        morsel = cookies.get(COOKIE)
        if morsel is not None and hmac.compare_digest(
            morsel.value.encode(), self.cookie_value.encode()
        ):
            return "ok"
        return "no"

    async def _set_cookie_and_redirect(self, scope: Scope, send: Send) -> None:
        """Keep the token in a cookie and take it out of the address bar (and history)."""
        query = [
            (k, v)
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            if k != "token"
        ]
        target = scope.get("path", "/") + ("?" + urlencode(query) if query else "")
        cookie = f"{COOKIE}={self.cookie_value}; Path=/; HttpOnly; SameSite=Strict"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", target.encode("latin-1")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    # -- CSRF ---------------------------------------------------------------------------

    def csrf_ok(self, form_token: str | None, headers: dict[str, str]) -> bool:
        """Whether a POST carries this server's CSRF token and, if it says, our origin."""
        if not form_token or not hmac.compare_digest(form_token.encode(), self.csrf.encode()):
            return False
        origin = headers.get("origin")
        if origin and origin != "null":
            return (urlsplit(origin).netloc or "").lower() == headers.get("host", "").lower()
        return True


async def _respond(send: Send, status: int, title: str, text: str) -> None:
    body = message_page(title, text).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def new_secret() -> str:
    """A fresh secret for this server's CSRF tokens (a restart invalidates old forms)."""
    return secrets.token_urlsafe(32)
