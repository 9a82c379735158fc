"""Messages and events: workflows that wait for people and webhooks, and tell them things.

`send` puts a message in a workflow's mailbox (from anywhere: another
process, a webhook handler, ``autodurable send``); `recv` in the workflow
takes the oldest message of a topic, waiting for one up to a timeout.
`set_event` in a workflow publishes a value under a key; `get_event`
anywhere reads it, waiting until it is set.

Invariants:
- A message is kept until a `recv` consumes it, even when it was sent before
  the workflow waited for it, or before the workflow existed. Messages of one
  topic are received in the order they were stored.
- Consuming a message and recording it as the result of the `recv` step are
  one transaction of the store, fenced by ownership: each message is
  received exactly once, and a replay returns the recorded message.
- A message sent twice with the same idempotency key to the same workflow is
  stored once. In workflow code `send` is a step (sent once per workflow,
  not again on replay) whose key defaults to ``"{workflow_id}:{place}"``.
- `recv` and `set_event` are steps of the code that calls them: the workflow's
  own code, or work it runs concurrently (a branch, see `_concurrency`), whose
  position they take and whose branch they are recorded in. Concurrent
  receives on one topic take its messages in the order they look; which one
  gets which is recorded, and replayed.
- With telemetry on, a `recv` that waits is an event of the workflow's span,
  and so is its end (received or timed out).
- `recv` records its deadline at its first look (a ``waiting`` step), so a
  restart while it waits waits only for the rest; a timeout is recorded too
  (``timed_out``) and replays as None.
- Waiting is woken by the store (NOTIFY on PostgreSQL; on SQLite by this
  process, and otherwise by a look at most every second): never a tight loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._errors import AutodurableError
from .._store import (
    DEFAULT_TOPIC,
    FAILED,
    PENDING,
    SUCCEEDED,
    TIMED_OUT,
    WAITING,
    StepRecord,
    Store,
)
from . import _context, _timebase
from ._boundary import check_boundary, recorded_cancellation, wait_in_run, wait_in_run_async
from ._clocks import idempotency_key as _idempotency_key
from ._context import Run, refuse_forked, warn_forked, workflow_code
from ._options import EMPTY
from ._runtime import Runtime, get_runtime
from ._steps import call_step, call_step_async
from ._waiting import wait_for, wait_for_async

_NOT_SET = object()
_ENDED = object()


def _check_topic(topic: str | None) -> str:
    if topic is None:
        return DEFAULT_TOPIC
    if not isinstance(topic, str) or not topic:
        raise AutodurableError(
            f"topic must be a non-empty string, or None for the default topic; got {topic!r}"
        )
    return topic


def _check_id(workflow_id: str) -> None:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise AutodurableError(f"workflow_id must be a non-empty string, not {workflow_id!r}")


def _check_timeout(timeout: float | None, what: str) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise AutodurableError(f"{what}: timeout must be a number of seconds >= 0, not {timeout!r}")


# -- send ----------------------------------------------------------------------------------


def send(
    workflow_id: str,
    message: Any,
    topic: str | None = None,
    idempotency_key: str | None = None,
) -> bool:
    """Send `message` to workflow `workflow_id`, for a `recv` on `topic` there.

    Works from anywhere. The workflow need not be waiting, or even exist yet:
    messages are kept until received. With an `idempotency_key`, sending the
    same key to the same workflow again stores nothing (returns False), so a
    retried webhook delivers once. In workflow code the send is a step (done
    once, replayed after) keyed ``"{workflow_id}:{place}"`` by default (the
    step's position, or ``"P.k"`` in work the workflow runs concurrently).
    `message` is anything the codec records (not None, which `recv` returns
    on timeout). Returns True when the message was stored.
    """
    _check_id(workflow_id)
    topic_key = _check_topic(topic)
    if message is None:
        raise AutodurableError(
            "a message cannot be None: recv() returns None when it times out. Send a value "
            "such as {'approved': False} instead"
        )
    key = idempotency_key
    if key is not None and (not isinstance(key, str) or not key):
        raise AutodurableError(f"idempotency_key must be a non-empty string, not {key!r}")
    runtime = get_runtime()
    payload = runtime.codec.encode(message, f"the message to workflow {workflow_id!r}")
    run = workflow_code()
    if run is not None and run.pid != _context.pid:  # a forked child's: not ours to record
        warn_forked("send to", workflow_id, run)
        run = None
    if run is None:
        return runtime.store.send_message(
            workflow_id, topic_key, payload, idempotency_key, time.time()
        )

    def send_once() -> bool:
        return runtime.store.send_message(
            workflow_id, topic_key, payload, idempotency_key or _idempotency_key(), time.time()
        )

    sent: bool = call_step(send_once, (), {}, "autodurable.send", EMPTY)
    return sent


# -- recv --------------------------------------------------------------------------------


@dataclass
class _Waiting:
    """One recv call: its place in the workflow and its deadline."""

    run: Run
    position: int
    name: str
    topic: str
    deadline: float
    recorded_wait: bool  # its deadline is recorded already (a resumed wait)


def _prepare(topic: str | None, timeout: float) -> _Waiting | tuple[Any]:
    """Take the recv's position; its recorded outcome as (value,), or what to wait for."""
    topic_key = _check_topic(topic)
    _check_timeout(timeout, "recv()")
    run = workflow_code()
    if run is None:
        raise AutodurableError(
            "recv() waits for messages sent to the running workflow: call it in workflow "
            "code (a function decorated with @autodurable.workflow), not inside a step or "
            "outside workflows"
        )
    refuse_forked("recv()", run)
    position = run.take_position()
    name = f"autodurable.recv:{topic}" if topic else "autodurable.recv"
    recorded = run.recorded(position, name)
    deadline = _timebase.clock.time() + timeout
    if recorded is not None:
        if recorded.status in (SUCCEEDED, TIMED_OUT):
            run.replayed += 1
            if run.runtime.telemetry is not None:  # an event of the workflow's span
                run.runtime.telemetry.replayed(run, run.place(position), name, recorded.status)
            if recorded.status == TIMED_OUT:
                return (None,)
            return (run.runtime.codec.decode(recorded.output or "null"),)
        if recorded.status == WAITING and recorded.output:
            recorded_deadline = float(json.loads(recorded.output))
            return _Waiting(run, position, name, topic_key, recorded_deadline, True)
    return _Waiting(run, position, name, topic_key, deadline, False)


def _wait(waiting: _Waiting) -> Any:
    about = _wait_begins(waiting)
    (payload,) = wait_in_run(waiting.run, waiting.deadline, _look(waiting))
    return _wait_ends(waiting, about, payload)


async def _wait_async(waiting: _Waiting) -> Any:
    about = _wait_begins(waiting)
    (payload,) = await wait_in_run_async(waiting.run, waiting.deadline, _look(waiting))
    return _wait_ends(waiting, about, payload)


def _look(waiting: _Waiting) -> Callable[[bool], tuple[Any] | None]:
    """One look for the message: takes it (recording it) if it is there."""
    run = waiting.run
    store = run.runtime.store

    def look(first: bool) -> tuple[Any] | None:
        received = store.receive_message(
            run.workflow_id,
            run.executor_id,
            waiting.position,
            waiting.name,
            waiting.topic,
            waiting.deadline,
            first and not waiting.recorded_wait,
            run.branch,
            now=_timebase.clock.time(),
        )
        if received.status != PENDING:
            raise recorded_cancellation(run)
        if received.payload is not None:
            return (received.payload,)
        if received.timed_out:
            return (None,)
        return None

    return look


def _wait_begins(waiting: _Waiting) -> dict[str, Any] | None:
    """With telemetry on, the wait is an event of the workflow's span: what it is about."""
    telemetry = waiting.run.runtime.telemetry
    if telemetry is None:
        return None
    about = {"autodurable.wait.kind": "recv", "autodurable.wait.topic": waiting.topic}
    telemetry.event("autodurable.wait", {**about, "autodurable.wait.until": waiting.deadline})
    return about


def _wait_ends(waiting: _Waiting, about: dict[str, Any] | None, payload: str | None) -> Any:
    run = waiting.run
    if about is not None and run.runtime.telemetry is not None:
        outcome = "timed out" if payload is None else "received"
        run.runtime.telemetry.event(
            "autodurable.wait.end", {**about, "autodurable.wait.outcome": outcome}
        )
    check_boundary(run, PENDING)  # a deadline that passed while the message came
    return None if payload is None else run.runtime.codec.decode(payload)


def recv(topic: str | None = None, timeout: float = 60.0) -> Any:
    """In workflow code: the next message sent to this workflow on `topic`, or None.

    Waits up to `timeout` seconds for one (the deadline is recorded, so a
    restart waits only for the rest) and returns None if none came; the
    outcome is recorded, so a replay returns the same message, or None,
    without waiting. Messages of a topic are received in the order they were
    sent, each exactly once. A cancellation, or the workflow's deadline,
    stops the wait with `WorkflowCancelled`. It may be called in work the
    workflow runs concurrently (threads, pools, asyncio tasks) too.
    """
    prepared = _prepare(topic, timeout)
    if isinstance(prepared, tuple):
        return prepared[0]
    return _wait(prepared)


def recv_async(topic: str | None = None, timeout: float = 60.0) -> Awaitable[Any]:
    """`recv` for ``async def`` workflows: waits without blocking the event loop.

    The recv takes its place in the workflow when called, as steps do.
    """
    prepared = _prepare(topic, timeout)
    if isinstance(prepared, tuple):
        return _done(prepared[0])
    return _wait_async(prepared)


async def _done(value: Any) -> Any:
    return value


# -- events ------------------------------------------------------------------------------


def set_event(key: str, value: Any) -> None:
    """In workflow code: publish `value` under `key`, for `get_event` callers anywhere.

    Setting a key again replaces its value. The event and the step that set it
    are recorded together, once: a replay does not set it again.
    """
    if not isinstance(key, str) or not key:
        raise AutodurableError(f"an event key must be a non-empty string, not {key!r}")
    run = workflow_code()
    if run is None:
        raise AutodurableError(
            "set_event() publishes a value of the running workflow: call it in workflow code "
            "(a function decorated with @autodurable.workflow), not inside a step or outside "
            "workflows"
        )
    refuse_forked("set_event()", run)
    position = run.take_position()
    name = f"autodurable.set_event:{key}"
    recorded = run.recorded(position, name)
    if recorded is not None and recorded.status == SUCCEEDED:
        run.replayed += 1
        return
    runtime = run.runtime
    encoded = runtime.codec.encode(value, f"the value of event {key!r}")
    now = time.time()
    step = StepRecord(position, name, SUCCEEDED, "null", None, 1, now, now, branch=run.branch)
    status = runtime.store.set_event(run.workflow_id, run.executor_id, key, encoded, step)
    if status != PENDING or run.deadline is not None:
        check_boundary(run, status)


def get_event(workflow_id: str, key: str, timeout: float | None = 60.0) -> Any:
    """The value workflow `workflow_id` published under `key`, waiting up to `timeout` s.

    Returns None when it is not set by then, or at once when the workflow has
    succeeded or failed without setting it. ``timeout=None`` waits as long as
    it takes. In workflow code the read is a step: a replay returns the same
    value.
    """
    _check_event_arguments(workflow_id, key, timeout)
    if workflow_code() is not None:
        value: Any = call_step(
            _wait_for_event, (workflow_id, key, timeout), {}, f"autodurable.get_event:{key}", EMPTY
        )
        return value
    return _wait_for_event(workflow_id, key, timeout)


def get_event_async(workflow_id: str, key: str, timeout: float | None = 60.0) -> Awaitable[Any]:
    """`get_event` for ``async def`` code: waits without blocking the event loop.

    In workflow code the read takes its place in the workflow when called, as
    steps do.
    """
    _check_event_arguments(workflow_id, key, timeout)
    if workflow_code() is not None:
        return call_step_async(
            _wait_for_event_async,
            (workflow_id, key, timeout),
            {},
            f"autodurable.get_event:{key}",
            EMPTY,
        )
    return _wait_for_event_async(workflow_id, key, timeout)


def _check_event_arguments(workflow_id: str, key: str, timeout: float | None) -> None:
    _check_id(workflow_id)
    if not isinstance(key, str) or not key:
        raise AutodurableError(f"an event key must be a non-empty string, not {key!r}")
    _check_timeout(timeout, "get_event()")


async def _wait_for_event_async(workflow_id: str, key: str, timeout: float | None) -> Any:
    runtime = get_runtime()
    look = _event_look(runtime.store, workflow_id, key)
    return _event_value(runtime, await wait_for_async(runtime, workflow_id, look, timeout=timeout))


def _wait_for_event(workflow_id: str, key: str, timeout: float | None) -> Any:
    runtime = get_runtime()
    look = _event_look(runtime.store, workflow_id, key)
    return _event_value(runtime, wait_for(runtime, workflow_id, look, timeout=timeout))


def _event_look(store: Store, workflow_id: str, key: str) -> Callable[[], Any]:
    def look() -> Any:
        found = store.get_event(workflow_id, key)
        if found is not None:
            return found
        record = store.get_workflow(workflow_id)
        if record is not None and record.status in (SUCCEEDED, FAILED):
            again = store.get_event(workflow_id, key)  # set just before it ended?
            return again if again is not None else _ENDED
        return None

    return look


def _event_value(runtime: Runtime, found: Any) -> Any:
    if found is None or found is _ENDED:
        return None
    return runtime.codec.decode(found)
