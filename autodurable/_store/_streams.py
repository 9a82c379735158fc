"""Durable streams: the records and the protocol a backend implements for them.

A stream is the values one workflow wrote under one key, numbered 0, 1, 2 ...
(``stream_offset``) in the order they were written; `_stream_sql` holds the
SQL of both backends and states the invariants of writing and reading them.
This module imports nothing of the store at run time, so `_protocol` can
build the `Store` protocol from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._records import Record

if TYPE_CHECKING:
    from ._protocol import StepRecord


class StreamItem(Record, frozen=True):
    """One row of a stream: a value, or the marker that closed it."""

    offset: int
    value: str | None  # the value encoded by the codec; None for the close marker
    created_at: float


class Written(Record, frozen=True):
    """The outcome of `StreamStore.write_stream`."""

    status: str  # the workflow's status; anything but pending: nothing was written
    closed: bool = False  # the stream was closed before: nothing was written


class StreamStore(Protocol):
    """What durable streams need from a backend."""

    def write_stream(
        self, workflow_id: str, executor_id: str, key: str, value: str | None, step: StepRecord
    ) -> Written:
        """Append `value` (None: the close marker) to stream `key` and record `step` (in its
        branch): one transaction, fenced by ownership (raises `OwnershipLost`).

        Nothing is written when the workflow is not pending, or the stream was
        closed before (`Written` says which); an append whose step is recorded
        already writes nothing again. Wakes the workflow's subscribers.
        """

    def read_stream(self, workflow_id: str, key: str, offset: int, limit: int) -> list[StreamItem]:
        """Up to `limit` rows of stream `key` from `offset` on, in order, and its close
        marker whatever its offset (so a reader past it still sees the stream closed)."""

    def list_streams(self, workflow_id: str) -> dict[str, int]:
        """The streams a workflow wrote, by key: how many values each holds."""
