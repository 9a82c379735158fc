"""State stores: one backend per module behind the `Store` protocol.

`open_store(url)` picks the backend from the URL scheme. Importing this package
imports no database driver that the chosen backend does not need.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .._errors import ConfigError
from ._protocol import (
    FAILED,
    FINISHED_STATUSES,
    PENDING,
    RETRYING,
    SUCCEEDED,
    UNRECORDED,
    Claim,
    ExecutorRecord,
    StepRecord,
    Store,
    WorkflowRecord,
)

__all__ = [
    "FAILED",
    "FINISHED_STATUSES",
    "PENDING",
    "RETRYING",
    "SUCCEEDED",
    "UNRECORDED",
    "Claim",
    "ExecutorRecord",
    "StepRecord",
    "Store",
    "WorkflowRecord",
    "check_url",
    "open_store",
]


def check_url(url: str) -> None:
    """Raise `ConfigError` unless `url` names a store this version supports."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from ._sqlite import parse_sqlite_url

        parse_sqlite_url(url)
        return
    raise ConfigError(
        f"unsupported database URL {url!r}: autodurable supports sqlite:///path/to/file.db"
    )


def open_store(url: str) -> Store:
    """Open the store a database URL names (``sqlite:///path``)."""
    check_url(url)
    from ._sqlite import SQLiteStore

    return SQLiteStore(url)
