"""PostgreSQL URLs: what libpq gets, and autodurable's own options in the query string.

Invariants:
- ``schema``, ``pool_size`` and ``retry_seconds`` are ours and removed before
  the rest goes to libpq; the schema is a plain identifier (it is written
  into SQL text), the numbers are checked, each with a `ConfigError` naming
  the value and the fix.
- The password never appears in what is shown (`PostgresURL.masked`).
- Needs no driver: parsing works without psycopg installed.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .._errors import ConfigError
from .._records import Record
from ._protocol import POSTGRES_SCHEMES

_OUR_OPTIONS = ("schema", "pool_size", "retry_seconds")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresURL(Record, frozen=True):
    """A parsed ``postgresql://`` URL: what libpq gets, and our own options."""

    conninfo: str
    masked: str
    schema: str
    pool_size: int
    retry_seconds: float


def parse_postgres_url(url: str) -> PostgresURL:
    """Split a PostgreSQL URL into the libpq part and autodurable's options."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ConfigError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in _OUR_OPTIONS}
    rest = [(key, value) for key, value in query if key not in _OUR_OPTIONS]
    masked_netloc = parts.netloc
    if parts.password is not None:
        masked_netloc = masked_netloc.replace(f":{parts.password}@", ":***@", 1)
    masked = urlunsplit((parts.scheme, masked_netloc, parts.path, parts.query, ""))
    schema = ours.get("schema", "autodurable")
    if not _IDENTIFIER.match(schema):
        raise ConfigError(
            f"schema={schema!r} in {masked!r} is not a plain identifier: use letters, digits "
            "and underscores (at most 63), starting with a letter or underscore"
        )
    pool_size = _number(ours, "pool_size", "16", masked, int, 1)
    retry_seconds = _number(ours, "retry_seconds", "300", masked, float, 0)
    # libpq decodes %20 but not "+": spaces (as in options=-c x=y) must stay %20.
    query_text = urlencode(rest, quote_via=quote)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, query_text, ""))
    return PostgresURL(conninfo, masked, schema, int(pool_size), float(retry_seconds))


def _number(
    options: dict[str, str], key: str, default: str, url: str, kind: type, minimum: float
) -> float:
    text = options.get(key, default)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ConfigError(f"{key}={text!r} in {url!r} must be a number >= {minimum}")
    return float(value)
