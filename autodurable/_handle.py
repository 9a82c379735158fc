"""Handles: start a workflow in the background and follow it by id.

Invariants:
- `start` returns once the workflow is recorded (pending, with its inputs,
  owned by this process's executor) and submitted to a worker thread: if the
  process dies before a worker runs it, another executor adopts it. The
  handle's id is fixed before that (from ``options(workflow_id=...)`` or a
  fresh one), so it can be stored and used from another process.
- Called from workflow code, `start` records the child's id as a step, so a
  replay refers to the same child instead of starting another.
- `WorkflowHandle.result()` waits in-process when this process runs the
  workflow, and otherwise waits for the store (woken by it where it can notify).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from concurrent.futures import Future
from typing import Any

from ._context import current_run, current_step
from ._decorators import kind_of
from ._errors import EncodeError, WorkflowNotFound
from ._options import EMPTY, Options, _OptionsScope, call_options_scope, current_call_options
from ._runtime import get_runtime
from ._steps import call_step
from ._store import PENDING, Claim, WorkflowRecord
from ._workflows import wait_for_outcome


class WorkflowHandle:
    """A reference to a workflow by id: its status and, when it ends, its result."""

    def __init__(self, workflow_id: str, future: Future[Any] | None = None) -> None:
        self.workflow_id = workflow_id
        self._future = future

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the workflow to finish; return its result or raise its exception."""
        if self._future is not None:
            return self._future.result(timeout)
        return wait_for_outcome(get_runtime(), self.workflow_id, timeout)

    async def result_async(self, timeout: float | None = None) -> Any:
        """`result` for async code: waits without blocking the event loop."""
        if self._future is not None:
            return await asyncio.wait_for(asyncio.wrap_future(self._future), timeout)
        return await asyncio.to_thread(wait_for_outcome, get_runtime(), self.workflow_id, timeout)

    def status(self) -> str:
        """"pending", "succeeded" or "failed"."""
        return self._record().status

    def _record(self) -> WorkflowRecord:
        runtime = get_runtime()
        record = runtime.store.get_workflow(self.workflow_id)
        if record is None:
            raise WorkflowNotFound(
                f"no workflow with id {self.workflow_id!r} in {runtime.store.url}"
            )
        return record


def start(fn: Any, /, *args: Any, **kwargs: Any) -> WorkflowHandle:
    """Start a workflow in the background and return its handle at once.

    ``start(checkout, cart)`` gets a fresh id; ``start(options(checkout,
    workflow_id="order-42"), cart)`` a chosen one. Starting an id that exists
    returns a handle to that workflow (resuming it if nobody runs it).
    """
    target, scoped = (fn._fn, fn._opts) if isinstance(fn, _OptionsScope) else (fn, None)
    if kind_of(target) != "workflow":
        raise TypeError(f"start() takes a function decorated with @workflow, not {target!r}")
    outer = current_call_options()
    opts = (outer or EMPTY).merged(scoped)
    workflow_id = opts.workflow_id or _new_child_id(target)
    opts = opts.merged(Options(workflow_id=workflow_id))
    _record_before_start(target, workflow_id, args, kwargs)

    def run() -> Any:
        # Worker threads start with an empty context: this is a top-level call.
        with call_options_scope(opts):
            result = target(*args, **kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return result

    return WorkflowHandle(workflow_id, get_runtime().submit(run))


def _record_before_start(
    target: Any, workflow_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Record the workflow as pending and ours, so that it survives this process dying.

    The worker then runs it from this record (handed over as a claim, without
    another round trip). An id that exists already is left to the worker, which
    resumes it, waits for it or returns its outcome; inputs that cannot be
    recorded are left to the worker too, which reports them as a call would.
    """
    runtime = get_runtime()
    name = target._self_autodurable_name
    values = {"args": list(args), "kwargs": kwargs}
    try:
        inputs = runtime.codec.encode(values, f"the inputs of workflow {name!r}")
    except EncodeError:
        return
    executor = runtime.executor
    now = time.time()
    record = WorkflowRecord(workflow_id, name, PENDING, inputs, None, None, executor.id, now, now)
    if runtime.store.create_workflow(record):
        runtime.adopted[workflow_id] = Claim(record, True, [], None)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _new_child_id(target: Any) -> str:
    fresh = uuid.uuid4().hex
    if current_run() is None or current_step() is not None:
        return fresh
    name = f"autodurable.start:{getattr(target, '_self_autodurable_name', target.__qualname__)}"
    recorded: str = call_step(lambda: fresh, (), {}, name, EMPTY)
    return recorded


def get_workflow(workflow_id: str) -> WorkflowHandle:
    """A handle to an existing workflow; raises `WorkflowNotFound` if there is none."""
    handle = WorkflowHandle(workflow_id)
    handle._record()
    return handle
