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
- The operations on a handle (`info`, `steps`, `cancel`, `resume`, `fork`,
  `delete`) act on the store by id, so any process can use them; `resume` and
  `fork` also run the workflow here when its code is importable here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from .._core._app_versions import version_for
from .._core._decorators import kind_of
from .._core._options import EMPTY, CallOptions, _OptionsScope, current_call_options
from .._core._runtime import get_runtime
from .._core._workflows import wait_for_outcome, wait_for_outcome_async
from .._errors import AutodurableError, WorkflowNotFound
from .._store import WorkflowRecord, WorkflowStatus
from ._info import StepInfo, WorkflowInfo
from ._launch import new_child_id, record_before_start, submit
from ._operations import (
    cancel,
    delete,
    fork,
    fork_here,
    resume,
    run_here,
    workflow_info,
    workflow_steps,
)
from ._registry import code_here

log = logging.getLogger("autodurable")


R = TypeVar("R")
P = ParamSpec("P")


class WorkflowHandle(Generic[R]):
    """A reference to a workflow by id: its status and, when it ends, its result.

    Generic in the workflow's result: ``start(checkout, cart)`` of a workflow
    returning ``Receipt`` gives a ``WorkflowHandle[Receipt]``.
    """

    def __init__(self, workflow_id: str, future: Future[Any] | None = None) -> None:
        self.workflow_id = workflow_id
        self._future = future

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    def result(self, timeout: float | None = None) -> R:
        """Wait for the workflow to finish; return its result or raise its exception."""
        if self._future is not None:
            result: R = self._future.result(timeout)
            return result
        outcome: R = wait_for_outcome(get_runtime(), self.workflow_id, timeout)
        return outcome

    async def result_async(self, timeout: float | None = None) -> R:
        """`result` for async code: waits without blocking the event loop."""
        if self._future is not None:
            result: R = await asyncio.wait_for(asyncio.wrap_future(self._future), timeout)
            return result
        outcome: R = await wait_for_outcome_async(get_runtime(), self.workflow_id, timeout)
        return outcome

    def status(self) -> WorkflowStatus:
        """ "pending", "succeeded", "failed" or "cancelled"."""
        return cast(WorkflowStatus, self._record().status)  # the store keeps only these

    def info(self) -> WorkflowInfo:
        """Everything recorded about the workflow: inputs, status, output or error, times."""
        return workflow_info(self.workflow_id)

    def steps(self) -> list[StepInfo]:
        """The workflow's recorded steps, in order."""
        return workflow_steps(self.workflow_id)

    def cancel(self, reason: str | None = None) -> bool:
        """Cancel the workflow; True when this call cancelled it.

        A running workflow stops at its next step boundary (the step it is in
        finishes and is recorded), one waiting in `recv` or `sleep` at once;
        its callers get `WorkflowCancelled`. The cancellation is recorded, with
        `reason`, and lasts until `resume`. A workflow that has ended is left
        as it is (False).
        """
        changed, _ = cancel(self.workflow_id, reason)
        return changed

    def resume(self, *, any_version: bool = False) -> WorkflowHandle[R]:
        """Continue a cancelled or failed workflow; a handle that follows it.

        It becomes pending again: recorded steps are replayed, a step that
        failed runs again, its deadline is dropped. It runs here, in the
        background, when its code is importable in this process; otherwise an
        executor with its code picks it up (``recover(watch=True)``). With
        `any_version`, code of any version may run it.
        """
        resume(self.workflow_id, any_version=any_version)
        return _run_here_if_possible(self.workflow_id)

    def fork(self, from_step: int, *, workflow_id: str | None = None) -> WorkflowHandle[R]:
        """A new workflow that reuses the recorded results of the steps before `from_step`.

        It has the same inputs and runs the code as it is now from step
        `from_step` on (fix a bug, then fork from the step that hit it). It
        runs here in the background when the code is importable here, else on
        an executor that has it. `workflow_id` names it (default:
        ``"<id>-fork-<random>"``).
        """
        runtime = get_runtime()
        here = code_here(runtime.store.get_workflow(self.workflow_id))
        if here is None:
            _, info = fork(self.workflow_id, from_step, new_id=workflow_id)
            return WorkflowHandle(info.workflow_id)
        version = version_for(runtime.settings, here)
        _, info, future = fork_here(
            self.workflow_id, from_step, here, new_id=workflow_id, app_version=version
        )
        return WorkflowHandle(info.workflow_id, future)

    def delete(self, force: bool = False) -> None:
        """Delete the workflow with its steps, messages and events.

        A pending workflow only with `force` (cancel it first).
        """
        delete(self.workflow_id, force)

    def _record(self) -> WorkflowRecord:
        runtime = get_runtime()
        record = runtime.store.get_workflow(self.workflow_id)
        if record is None:
            raise WorkflowNotFound(
                f"no workflow with id {self.workflow_id!r} in {runtime.store.url}"
            )
        return record


@overload
def start(  # an async workflow's handle gives what it awaits
    fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
) -> WorkflowHandle[R]: ...
@overload
def start(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]: ...
def start(fn: Any, /, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
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
    workflow_id = opts.workflow_id or new_child_id(target)
    opts = opts.merged(CallOptions(workflow_id=workflow_id))
    timeout = opts.workflow_timeout or getattr(target, "_self_autodurable_timeout", None)
    claim = record_before_start(target, workflow_id, args, kwargs, timeout)
    return WorkflowHandle(workflow_id, submit(target, opts, args, kwargs, claim))


def _run_here_if_possible(workflow_id: str) -> WorkflowHandle[Any]:
    """Run a pending workflow here when its code is importable; a handle either way."""
    runtime = get_runtime()
    if code_here(runtime.store.get_workflow(workflow_id)) is None:
        log.info("autodurable: %s is left for an executor that has its code", workflow_id)
        return WorkflowHandle(workflow_id)
    try:
        return WorkflowHandle(workflow_id, run_here(runtime, workflow_id))
    except (LookupError, AutodurableError) as exc:
        log.info("autodurable: %s is not run here: %s", workflow_id, exc)
        return WorkflowHandle(workflow_id)


def get_workflow(workflow_id: str) -> WorkflowHandle[Any]:
    """A handle to an existing workflow; raises `WorkflowNotFound` if there is none."""
    handle: WorkflowHandle[Any] = WorkflowHandle(workflow_id)
    handle._record()
    return handle
