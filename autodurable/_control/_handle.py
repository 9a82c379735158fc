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
import inspect
import json
import logging
import time
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .._core._app_versions import version_for
from .._core._context import current_run, current_step
from .._core._decorators import kind_of, workflow_name
from .._core._options import EMPTY, Options, _OptionsScope, call_options_scope, current_call_options
from .._core._runtime import get_runtime
from .._core._steps import call_step
from .._core._workflows import wait_for_outcome
from .._errors import AutodurableError, EncodeError, WorkflowNotFound
from .._store import PENDING, Claim, WorkflowRecord

if TYPE_CHECKING:
    from ._operations import StepInfo, WorkflowInfo

log = logging.getLogger("autodurable")


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
        """"pending", "succeeded", "failed" or "cancelled"."""
        return self._record().status

    def info(self) -> WorkflowInfo:
        """Everything recorded about the workflow: inputs, status, output or error, times."""
        from ._operations import workflow_info

        return workflow_info(self.workflow_id)

    def steps(self) -> list[StepInfo]:
        """The workflow's recorded steps, in order."""
        from ._operations import workflow_steps

        return workflow_steps(self.workflow_id)

    def cancel(self, reason: str | None = None) -> bool:
        """Cancel the workflow; True when this call cancelled it.

        A running workflow stops at its next step boundary (the step it is in
        finishes and is recorded), one waiting in `recv` or `sleep` at once;
        its callers get `WorkflowCancelled`. The cancellation is recorded, with
        `reason`, and lasts until `resume`. A workflow that has ended is left
        as it is (False).
        """
        from ._operations import cancel

        changed, _ = cancel(self.workflow_id, reason)
        return changed

    def resume(self, *, any_version: bool = False) -> WorkflowHandle:
        """Continue a cancelled or failed workflow; a handle that follows it.

        It becomes pending again: recorded steps are replayed, a step that
        failed runs again, its deadline is dropped. It runs here, in the
        background, when its code is importable in this process; otherwise an
        executor with its code picks it up (``recover(watch=True)``). With
        `any_version`, code of any version may run it.
        """
        from ._operations import resume

        resume(self.workflow_id, any_version=any_version)
        return _run_here_if_possible(self.workflow_id)

    def fork(self, from_step: int, *, workflow_id: str | None = None) -> WorkflowHandle:
        """A new workflow that reuses the recorded results of the steps before `from_step`.

        It has the same inputs and runs the code as it is now from step
        `from_step` on (fix a bug, then fork from the step that hit it). It
        runs here in the background when the code is importable here, else on
        an executor that has it. `workflow_id` names it (default:
        ``"<id>-fork-<random>"``).
        """
        from .._core._options import options
        from ._operations import fork

        runtime = get_runtime()
        here = _code_here(runtime, self.workflow_id)
        version = version_for(runtime.settings, here) if here is not None else None
        _, info = fork(
            self.workflow_id,
            from_step,
            new_id=workflow_id,
            app_version=version,
            here=here is not None,
        )
        if here is None:
            return WorkflowHandle(info.workflow_id)
        inputs = runtime.codec.decode(json.dumps(info.inputs))  # claimed by fork(here=True)
        return start(
            options(here, workflow_id=info.workflow_id), *inputs["args"], **inputs["kwargs"]
        )

    def delete(self, force: bool = False) -> None:
        """Delete the workflow with its steps, messages and events.

        A pending workflow only with `force` (cancel it first).
        """
        from ._operations import delete

        delete(self.workflow_id, force)

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
    timeout = opts.workflow_timeout or target._self_autodurable_timeout
    _record_before_start(target, workflow_id, args, kwargs, timeout)

    def run() -> Any:
        # Worker threads start with an empty context: this is a top-level call.
        with call_options_scope(opts):
            result = target(*args, **kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return result

    return WorkflowHandle(workflow_id, get_runtime().submit(run))


def _record_before_start(
    target: Any,
    workflow_id: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> None:
    """Record the workflow as pending and ours, so that it survives this process dying.

    The worker then runs it from this record (handed over as a claim, without
    another round trip). An id that exists already is left to the worker, which
    resumes it, waits for it or returns its outcome; inputs that cannot be
    recorded are left to the worker too, which reports them as a call would.
    """
    runtime = get_runtime()
    name = workflow_name(target)
    values = {"args": list(args), "kwargs": kwargs}
    try:
        inputs = runtime.codec.encode(values, f"the inputs of workflow {name!r}")
    except EncodeError:
        return
    executor = runtime.executor
    now = time.time()
    version = version_for(runtime.settings, target.__wrapped__)
    deadline = now + timeout if timeout else None
    record = WorkflowRecord(
        workflow_id, name, PENDING, inputs, None, None, executor.id, now, now, version, deadline
    )
    if runtime.store.create_workflow(record):
        runtime.adopted[workflow_id] = Claim(record, True, [], None)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _new_child_id(target: Any) -> str:
    fresh = uuid.uuid4().hex
    if current_run() is None or current_step() is not None:
        return fresh
    name = f"autodurable.start:{workflow_name(target)}"
    recorded: str = call_step(lambda: fresh, (), {}, name, EMPTY)
    return recorded


def _code_here(runtime: Any, workflow_id: str) -> Any:
    """The function of a workflow when it can be run here (importable), else None."""
    from ._operations import RUN_PREFIX
    from ._recovery import find_workflow

    record = runtime.store.get_workflow(workflow_id)
    if record is None or record.name.startswith(RUN_PREFIX):
        return None
    try:
        return find_workflow(record.name)
    except LookupError:
        return None


def _run_here_if_possible(workflow_id: str) -> WorkflowHandle:
    """Run a pending workflow here when its code is importable; a handle either way."""
    from ._operations import run_here

    runtime = get_runtime()
    if _code_here(runtime, workflow_id) is None:
        log.info("autodurable: %s is left for an executor that has its code", workflow_id)
        return WorkflowHandle(workflow_id)
    try:
        return run_here(runtime, workflow_id)  # type: ignore[no-any-return]
    except (LookupError, AutodurableError) as exc:
        log.info("autodurable: %s is not run here: %s", workflow_id, exc)
        return WorkflowHandle(workflow_id)


def get_workflow(workflow_id: str) -> WorkflowHandle:
    """A handle to an existing workflow; raises `WorkflowNotFound` if there is none."""
    handle = WorkflowHandle(workflow_id)
    handle._record()
    return handle
