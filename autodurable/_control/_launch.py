"""Handing workflows to this process's worker threads.

Invariants:
- `submit` is the one place a workflow is handed to a worker thread. A claim
  the caller already holds (recovery adopted the workflow, `start` recorded
  it, a fork made it ours) travels with that call (`handed_over`), never
  through state shared with other calls.
- `record_before_start` records a new workflow as pending and owned by this
  process before a worker runs it: if the process dies first, another
  executor adopts it.
- Called from workflow code, a child's id is recorded as a step
  (`new_child_id`), so that a replay refers to the same child.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Any

from .._core._app_versions import version_for
from .._core._context import workflow_code
from .._core._decorators import workflow_name
from .._core._options import EMPTY, CallOptions, call_options_scope
from .._core._runtime import Runtime, get_runtime
from .._core._steps import call_step
from .._core._workflows import hand_over_later, handed_over
from .._errors import EncodeError
from .._store import PENDING, Claim, WorkflowRecord


def submit(
    target: Any,
    opts: CallOptions,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    claim: Claim | None = None,
) -> Future[Any]:
    """Run ``target(*args, **kwargs)`` as a top-level call on a worker thread."""

    hand_over_later(claim)  # now: a call of the same id may run before this thread starts

    def run() -> Any:
        with handed_over(claim, registered=True):
            # Worker threads start with an empty context: this is a top-level call.
            with call_options_scope(opts):
                result = target(*args, **kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
        return result

    return get_runtime().submit(run)


def submit_claimed(
    runtime: Runtime, fn: Any, claim: Claim, inputs: dict[str, Any] | None = None
) -> Future[Any]:
    """Run the workflow of a claim this process holds, with its recorded `inputs`
    (decoded here unless the caller has them already)."""
    if inputs is None:
        inputs = runtime.codec.decode(claim.workflow.inputs)
    opts = CallOptions(workflow_id=claim.workflow.workflow_id)
    return submit(fn, opts, tuple(inputs["args"]), inputs["kwargs"], claim)


def record_before_start(
    target: Any,
    workflow_id: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> Claim | None:
    """Record the workflow as pending and ours; the claim to hand to its worker.

    An id that exists already is left to the worker (None), which resumes it,
    waits for it or returns its outcome; inputs that cannot be recorded are
    left to the worker too, which reports them as a call would.
    """
    runtime = get_runtime()
    name = workflow_name(target)
    values = {"args": list(args), "kwargs": kwargs}
    try:
        inputs = runtime.codec.encode(values, f"the inputs of workflow {name!r}")
    except EncodeError:
        return None
    now = time.time()
    version = version_for(runtime.settings, target.__wrapped__)
    deadline = now + timeout if timeout else None
    # A worker thread starts from an empty context: with telemetry on, the record
    # carries the caller's trace context to the workflow's span.
    traced = runtime.telemetry.trace_context() if runtime.telemetry is not None else None
    record = WorkflowRecord(
        workflow_id, name, PENDING, inputs, None, None, runtime.executor.id, now, now,
        version, deadline, trace_context=traced,
    )  # fmt: skip
    return Claim(record, True, [], None) if runtime.store.create_workflow(record) else None


def new_child_id(target: Any) -> str:
    """A fresh workflow id; recorded as a step when called from workflow code."""
    fresh = uuid.uuid4().hex
    if workflow_code() is None:
        return fresh
    name = f"autodurable.start:{workflow_name(target)}"
    recorded: str = call_step(lambda: fresh, (), {}, name, EMPTY)
    return recorded


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
