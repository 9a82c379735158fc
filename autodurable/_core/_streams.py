"""Durable streams: a workflow's progress (or an agent's tokens) for readers anywhere.

`write_stream(key, value)` in workflow code appends a value to the workflow's
stream `key`; `read_stream(workflow_id, key)` anywhere yields its values in
order, following it live until it is closed. `close_stream(key)` closes one
early; every stream of a workflow is closed once the workflow ends (succeeded,
failed or cancelled): readers tell it from the workflow's status, so nothing is
written at the end, and a stream of a cancelled workflow that is resumed (or a
workflow that is rewound) takes values again.

Invariants:
- Writing and closing are steps of the code that calls them (the workflow's
  own, or work it runs concurrently), whose position they take: the value and
  the step are stored in one transaction of the store, fenced by ownership,
  so each value is stored exactly once; a replay writes nothing again.
- Values go through the codec, as step results do; reading decodes them with
  the codec's rules (it imports nothing new).
- Nothing is written for a workflow that is no longer pending: the write stops
  it at that boundary (`WorkflowCancelled`), as a step would.
- Writing to a closed stream raises `AutodurableError` and records nothing, so
  a replay raises it again at the same place.
- A reader reads the workflow's status before the stream's rows, and values
  are written before the workflow ends, so a reader that sees the workflow
  ended has every value. Reading the same stream again gives the same values.
- Readers wait for the store's wake-ups (NOTIFY on PostgreSQL, this process's
  writes on SQLite) and otherwise look again on a backoff (at most every half
  second where nothing notifies): never a tight loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .._errors import AutodurableError, WorkflowNotFound
from .._store import FINISHED_STATUSES, PENDING, SUCCEEDED, StepRecord
from .._store._streams import StreamItem
from ._boundary import check_boundary
from ._context import Run, refuse_forked, workflow_code
from ._runtime import Runtime, get_runtime
from ._waiting import wait_for

_BATCH = 500  # rows read per look
_ASYNC_SLICE = 1.0  # seconds an async reader's thread waits before it hands back
_ENDED: list[StreamItem] = []  # a look's answer when the stream has ended


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise AutodurableError(f"a stream key must be a non-empty string, not {key!r}")


def _in_workflow(what: str) -> Run:
    run = workflow_code()
    if run is None:
        raise AutodurableError(
            f"{what} writes to a stream of the running workflow, recorded once: call it in "
            "workflow code (a function decorated with @autodurable.workflow), not inside a "
            "step or outside workflows. To publish from elsewhere, start a workflow that "
            "writes the stream"
        )
    refuse_forked(what, run)
    return run


def _write(run: Run, key: str, value: str | None, name: str) -> None:
    """Append `value` (None: close) to stream `key` as the next step of `run`'s code."""
    position = run.take_position()
    recorded = run.recorded(position, name)
    if recorded is not None and recorded.status == SUCCEEDED:
        run.replayed += 1  # written when this step was first run: not again
        return
    now = time.time()
    step = StepRecord(position, name, SUCCEEDED, "null", None, 1, now, now, branch=run.branch)
    written = run.runtime.store.write_stream(run.workflow_id, run.executor_id, key, value, step)
    if written.status != PENDING or run.deadline is not None:
        check_boundary(run, written.status)
    if written.closed:
        raise AutodurableError(
            f"stream {key!r} of workflow {run.workflow_id!r} is closed (close_stream was "
            "called before): nothing more can be written to it; write to another key"
        )


def write_stream(key: str, value: Any) -> None:
    """In workflow code: append `value` to this workflow's stream `key`.

    The write is a step: the value is stored with its record, once; a replay
    after a crash does not write it again. `value` is anything the codec
    records (as step results). Readers anywhere get the values in order with
    `read_stream`. Outside workflow code (in a step, or in plain code) it raises
    `AutodurableError`: nothing there could be recorded once. Writing to a
    stream closed by `close_stream` raises `AutodurableError` too.
    """
    _check_key(key)
    run = _in_workflow("write_stream()")
    encoded = run.runtime.codec.encode(value, f"the value written to stream {key!r}")
    _write(run, key, encoded, f"autodurable.write_stream:{key}")


def close_stream(key: str) -> None:
    """In workflow code: close this workflow's stream `key`, before the workflow ends.

    Readers following it stop after its last value. Every stream of a
    workflow is closed when the workflow ends anyway; closing one early tells
    readers it is complete while the workflow goes on. Closing is a step
    (recorded once); closing a closed stream does nothing more.
    """
    _check_key(key)
    _write(_in_workflow("close_stream()"), key, None, f"autodurable.close_stream:{key}")


# -- reading ------------------------------------------------------------------------------


def _check_read(workflow_id: str, key: str, offset: int) -> None:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise AutodurableError(f"workflow_id must be a non-empty string, not {workflow_id!r}")
    _check_key(key)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise AutodurableError(
            f"offset must be a whole number >= 0 (the offset of the first value to read), "
            f"not {offset!r}"
        )
    if workflow_code() is not None:
        raise AutodurableError(
            "read_stream() cannot be used in workflow code: what it reads depends on when it "
            "runs, and would not be replayed. Read the stream in a step, or outside workflows"
        )


class _Reader:
    """Where one reader is in one stream."""

    def __init__(self, runtime: Runtime, workflow_id: str, key: str, offset: int) -> None:
        self.runtime = runtime
        self.workflow_id = workflow_id
        self.key = key
        self.offset = offset
        self.ended = False

    def look(self) -> list[StreamItem] | None:
        """The rows from the reader's offset; `_ENDED` when there are none and the stream
        has ended; None when there are none yet."""
        store = self.runtime.store
        # The status first: a workflow seen ended wrote every value before it ended.
        record = store.get_workflow(self.workflow_id)
        if record is None:
            raise WorkflowNotFound(
                f"no workflow with id {self.workflow_id!r} in {store.url}: it has no stream "
                f"{self.key!r} to read"
            )
        rows = store.read_stream(self.workflow_id, self.key, self.offset, _BATCH)
        if rows:
            return rows
        return _ENDED if record.status in FINISHED_STATUSES else None

    def take(self, rows: list[StreamItem]) -> list[StreamItem]:
        """The values among `rows`; notes the end of the stream when it is among them."""
        values = []
        for item in rows:
            if item.value is None:  # the close marker
                self.ended = True
                break
            values.append(item)
            self.offset = item.offset + 1
        if rows is _ENDED:
            self.ended = True
        return values

    def next_batch(self, follow: bool, timeout: float | None) -> list[StreamItem] | None:
        """The next values (waiting for some when following, up to `timeout` seconds);
        None when the wait timed out."""
        if not follow:
            rows = self.look()
            found = _ENDED if rows is None else rows
        else:
            waited = wait_for(self.runtime, self.workflow_id, self.look, timeout=timeout)
            if waited is None:
                return None
            found = waited
        values = self.take(found)
        if not follow and found is not _ENDED and len(found) < _BATCH:
            self.ended = True  # read what there is now: that is all without following
        return values


def stream_items(
    workflow_id: str, key: str, offset: int = 0, *, follow: bool = True
) -> Iterator[StreamItem]:
    """`read_stream`'s rows as recorded (offset, encoded value): for tools that show the
    recorded JSON without decoding it (the command line)."""
    _check_read(workflow_id, key, offset)
    return _items(_Reader(get_runtime(), workflow_id, key, offset), follow)


def _items(reader: _Reader, follow: bool) -> Iterator[StreamItem]:
    while not reader.ended:
        yield from reader.next_batch(follow, None) or ()


def read_stream(
    workflow_id: str, key: str, offset: int = 0, *, follow: bool = True
) -> Iterator[Any]:
    """Yield the values of workflow `workflow_id`'s stream `key`, in order, from `offset`.

    `offset` is the offset of the first value to read: the first value
    written is at 0, the next at 1, and so on.
    Following (the default), it waits for new values as the workflow writes
    them and ends when the stream is closed (`close_stream`, or the workflow
    ended: succeeded, failed or cancelled); ``follow=False`` yields the values
    stored now and ends. Reading a stream again gives the same values. Raises
    `WorkflowNotFound` when there is no such workflow (when iteration starts).
    Use it outside workflow code (a web handler, a script) or in a step.
    """
    _check_read(workflow_id, key, offset)
    return _values(_Reader(get_runtime(), workflow_id, key, offset), follow)


def _values(reader: _Reader, follow: bool) -> Iterator[Any]:
    decode = reader.runtime.codec.decode
    for item in _items(reader, follow):
        yield decode(item.value or "null")


def read_stream_async(
    workflow_id: str, key: str, offset: int = 0, *, follow: bool = True
) -> AsyncIterator[Any]:
    """`read_stream` for ``async`` code: an async iterator that waits without blocking
    the event loop (``async for value in autodurable.read_stream_async(...)``)."""
    _check_read(workflow_id, key, offset)
    return _values_async(_Reader(get_runtime(), workflow_id, key, offset), follow)


async def _values_async(reader: _Reader, follow: bool) -> AsyncIterator[Any]:
    while not reader.ended:
        # The thread waits a bounded time, so a reader whose task is cancelled holds no
        # thread for longer than that.
        items = await asyncio.to_thread(reader.next_batch, follow, _ASYNC_SLICE)
        for item in items or ():
            yield reader.runtime.codec.decode(item.value or "null")
