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
    "Claim",
    "ExecutorRecord",
    "StepRecord",
    "Store",
    "WorkflowRecord",
    "open_store",
]


def open_store(url: str) -> Store:
    """Open the store a database URL names (``sqlite:///path``)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from ._sqlite import SQLiteStore

        return SQLiteStore(url)
    raise ConfigError(
        f"unsupported database URL {url!r}: autodurable supports sqlite:///path/to/file.db"
    )
