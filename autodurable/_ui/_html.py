"""HTML building blocks of the dashboard: escaping, values, times, the page shell.

Invariants:
- Every value that comes from the store (ids, names, inputs, outputs, errors,
  tracebacks, messages) reaches the page only through `e` (or a helper that
  calls it): HTML-escaped, quotes included, so it is text in an element or an
  attribute and never markup. Pages also carry a Content-Security-Policy that
  allows no inline script, so even a missed escape could not run code.
- Values are the recorded JSON as the operations API parses it; nothing here
  decodes the application's types, imports or evaluates anything.
- Redaction happens before truncation and before anything is rendered: a
  redacted field's value never reaches the page, in part or whole.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import html
import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

REDACTED = "••• redacted •••"
STATUS_ORDER = ("enqueued", "delayed", "pending", "succeeded", "failed", "cancelled")


def e(value: object) -> str:
    """`value` as text, HTML-escaped for an element or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def url(path: str, **params: object) -> str:
    """`path` with the non-empty `params` as its query string, escaped for an attribute."""
    query = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return e(path + ("?" + urlencode(query) if query else ""))


def badge(status: str) -> str:
    """A coloured status label (the colours are the stylesheet's, one per status)."""
    return f'<span class="badge s-{e(status)}">{e(status)}</span>'


# -- times ------------------------------------------------------------------------------


def when(stamp: float | None) -> str:
    """A time as local date and time to the second ("-" for none)."""
    if stamp is None:
        return "-"
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def ago(stamp: float | None, now: float | None = None) -> str:
    """How long ago `stamp` was, roughly ("12 s ago", "3 h ago")."""
    if stamp is None:
        return ""
    seconds = (now if now is not None else time.time()) - stamp
    return f"{span(abs(seconds))} {'ago' if seconds >= 0 else 'from now'}"


def span(seconds: float | None) -> str:
    """A duration for people: 0.25 s, 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.3g} s" if seconds >= 0.001 else "0 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def time_cell(stamp: float | None, now: float | None = None) -> str:
    """A table cell's time: the date, with how long ago as its tooltip."""
    return f'<time title="{e(ago(stamp, now))}">{e(when(stamp))}</time>'


# -- values -----------------------------------------------------------------------------


class Redactor:
    """Replaces the values of fields whose name matches one of the patterns.

    Patterns are matched case-insensitively against dict keys at any depth, as
    shell globs (``password``, ``*token*``, ``api_?ey``).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip().lower() for p in patterns if p.strip())

    def hides(self, key: str) -> bool:
        """Whether a field called `key` is redacted."""
        lowered = key.lower()
        return any(fnmatch.fnmatchcase(lowered, p) for p in self.patterns)

    def __call__(self, value: Any) -> Any:
        """`value` with every matching field's value replaced by a marker."""
        if not self.patterns:
            return value
        return self._walk(value, 0)

    def _walk(self, value: Any, depth: int) -> Any:
        if depth > 200:  # recorded JSON is bounded by the codec; this guards the recursion
            return value
        if isinstance(value, dict):
            return {
                k: REDACTED if self.hides(str(k)) else self._walk(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, depth + 1) for v in value]
        return value


def pretty(value: Any) -> str:
    """A parsed JSON value as indented JSON text (a plain string stays as it is)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):  # not JSON after all: shown as text
        return str(value)


def one_line(value: Any, width: int) -> str:
    """A parsed value as compact JSON on one line, cut at `width` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def cut(text: str, width: int) -> str:
    """`text` on one line, cut at `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def value_block(value: Any, redact: Redactor, limit: int, *, empty: str = "none") -> str:
    """A value as a preformatted block, redacted, cut at `limit` characters with a note."""
    if value is None:
        return f'<p class="muted">{e(empty)}</p>'
    text = pretty(redact(value))
    note = ""
    if len(text) > limit:
        note = (
            f'<p class="note">Truncated: showing {limit:,} of {len(text):,} characters. '
            "The whole value: <code>autodurable workflows show ID --json</code>.</p>"
        )
        text = text[:limit]
    return f'<pre class="value">{e(text)}</pre>{note}'


# -- the page shell ---------------------------------------------------------------------

NAV = (("/", "Workflows"), ("/queues", "Queues"), ("/schedules", "Schedules"))


def page(
    title: str,
    body: str,
    *,
    active: str = "/",
    where: str = "",
    read_only: bool = False,
    refresh: float = 0.0,
) -> str:
    """A whole HTML document: the header, the navigation, `body` (already HTML).

    `refresh` > 0 makes the script poll the page's live regions every that many seconds.
    """
    links = "".join(
        f'<a href="{e(path)}"{" class=active" if path == active else ""}>{e(label)}</a>'
        for path, label in NAV
    )
    mode = '<span class="pill ro">read-only</span>' if read_only else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · autodurable</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">'
        '<script src="/static/app.js" defer></script>'
        f'</head><body data-refresh="{refresh:g}">'
        f'<header><a class="brand" href="/">autodurable</a><nav>{links}</nav>'
        f'<span class="where" title="state database">{e(where)}</span>{mode}'
        '<label class="live-toggle"><input type="checkbox" id="live" checked> live</label>'
        f"</header><main>{body}</main></body></html>"
    )


def live(region_id: str, source: str, inner: str) -> str:
    """A region the script refreshes from `source` (a URL, escaped) while live is on."""
    return f'<div class="live" id="{e(region_id)}" data-src="{source}">{inner}</div>'


def message_page(title: str, text: str, *, status_hint: str = "") -> str:
    """A small page that says one thing (errors, refusals)."""
    hint = f'<p class="muted">{e(status_hint)}</p>' if status_hint else ""
    return page(
        title,
        f'<section class="card narrow"><h1>{e(title)}</h1><p>{e(text)}</p>{hint}'
        '<p><a href="/">Back to the workflows</a></p></section>',
    )
