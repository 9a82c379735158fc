"""State stores: one backend per module behind the `Store` protocol.

`open_store(url)` picks the backend from the URL scheme: ``sqlite:///path`` or
``postgresql://...``. Importing this package imports no database driver that
the chosen backend does not need; a PostgreSQL URL without the driver installed
is refused at once with the command that installs it.
"""

from __future__ import annotations

import importlib.util
from urllib.parse import urlsplit

from .._errors import ConfigError
from ._limiting import Grant, LimitSpec, LimitStore, LimitWait, PermitRequest
from ._protocol import (
    CANCELLED,
    DEFAULT_TOPIC,
    DELAYED,
    ENDED_STATUSES,
    ENQUEUED,
    FAILED,
    FINISHED_STATUSES,
    PENDING,
    POSTGRES_EXTRA,
    POSTGRES_SCHEMES,
    QUEUED_STATUSES,
    RETRYING,
    SUCCEEDED,
    TIMED_OUT,
    UNRECORDED,
    WAITING,
    WORKFLOW_STATUSES,
    Claim,
    ExecutorRecord,
    Liveness,
    MessageRecord,
    OperatorStore,
    Received,
    RunStore,
    StepRecord,
    Store,
    Subscription,
    WorkflowFilter,
    WorkflowRecord,
    WorkflowStatus,
)
from ._queueing import Dequeued, Placement, QueueSpec, QueueStats, QueueStore, ScheduleRecord

__all__ = [
    "CANCELLED",
    "DEFAULT_TOPIC",
    "DELAYED",
    "ENDED_STATUSES",
    "ENQUEUED",
    "FAILED",
    "FINISHED_STATUSES",
    "PENDING",
    "QUEUED_STATUSES",
    "RETRYING",
    "SUCCEEDED",
    "TIMED_OUT",
    "UNRECORDED",
    "WAITING",
    "WORKFLOW_STATUSES",
    "Claim",
    "Dequeued",
    "ExecutorRecord",
    "Grant",
    "LimitSpec",
    "LimitStore",
    "LimitWait",
    "Liveness",
    "MessageRecord",
    "OperatorStore",
    "PermitRequest",
    "Placement",
    "QueueSpec",
    "QueueStats",
    "QueueStore",
    "Received",
    "RunStore",
    "ScheduleRecord",
    "StepRecord",
    "Store",
    "Subscription",
    "WorkflowFilter",
    "WorkflowRecord",
    "WorkflowStatus",
    "check_url",
    "open_store",
]


def check_url(url: str) -> None:
    """Raise `ConfigError` unless `url` names a store this installation supports."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from ._sqlite import parse_sqlite_url

        parse_sqlite_url(url)
        return
    if scheme in POSTGRES_SCHEMES:
        missing = [name for name in ("psycopg", "psycopg_pool") if not _importable(name)]
        if missing:
            raise ConfigError(f"{POSTGRES_EXTRA} ({', '.join(missing)} not installed)")
        from ._postgres_url import parse_postgres_url

        parse_postgres_url(url)
        return
    raise ConfigError(
        f"unsupported database URL {url!r}: autodurable supports sqlite:///path/to/file.db "
        "and postgresql://user:password@host:port/dbname"
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # a module set to None in sys.modules: treated as missing
        return False


def open_store(url: str) -> Store:
    """Open the store a database URL names (``sqlite:///path`` or ``postgresql://...``)."""
    check_url(url)
    if urlsplit(url).scheme in POSTGRES_SCHEMES:
        from ._postgres import PostgresStore

        return PostgresStore(url)
    from ._sqlite import SQLiteStore

    return SQLiteStore(url)
