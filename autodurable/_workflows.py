"""Executing a workflow: start it, resume it, or return its recorded outcome.

Invariants:
- A workflow called from workflow code runs inline: its steps continue the
  caller's sequence. Called from inside a step, it runs plainly.
- A top-level call records the inputs and status before the body runs (one
  write), and the outcome when it returns (one write). A resumed workflow's
  history is loaded in the same transaction that claims it.
- A workflow id that finished returns its recorded output, or raises its
  recorded exception, without running anything. One that is unfinished and
  not owned by a live executor is resumed; one that a live executor (this
  process included) is running is waited for, never run twice, and adopted
  if that executor dies while we wait.
- Only an exception from the user's code marks a workflow failed. Our own
  errors (codec, store), control signals and interruptions leave it pending
  and released, so that running it again resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from ._context import Run, current_run, current_step, enter_run, exit_run
from ._errors import AutodurableError, OwnershipLost, WorkflowNotFound
from ._options import Options, call_options_scope, current_call_options
from ._runtime import Runtime, get_runtime
from ._store import FAILED, FINISHED_STATUSES, PENDING, SUCCEEDED, WorkflowRecord

log = logging.getLogger("autodurable")
_FIRST_POLL, _LAST_POLL = 0.01, 0.5  # seconds between looks at a workflow run elsewhere


class _Finished:
    """A workflow that already has an outcome."""

    def __init__(self, runtime: Runtime, record: WorkflowRecord) -> None:
        self.runtime = runtime
        self.record = record


def outcome(runtime: Runtime, record: WorkflowRecord) -> Any:
    """The recorded result of a finished workflow, or raise its recorded exception."""
    if record.status == SUCCEEDED:
        return runtime.codec.decode(record.output or "null")
    raise runtime.codec.decode_error(record.error or "{}")


def call_workflow(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    recorded_args: tuple[Any, ...],
) -> Any:
    """Call a sync workflow in the current context."""
    if current_run() is not None or current_step() is not None:
        return fn(*args, **kwargs)
    runtime = get_runtime()
    workflow_id, body_options = _identity()
    future, mine = _own_in_process(runtime, workflow_id)
    if not mine:
        return future.result()  # another thread of this process runs it: wait
    try:
        values = {"args": list(recorded_args), "kwargs": kwargs}
        inputs = _inputs(runtime, name, values)
        opened = _open(runtime, workflow_id, name, inputs, values)
        delay = _FIRST_POLL
        while opened is None:  # a live executor runs it: wait, or adopt it if that one dies
            time.sleep(delay)
            delay = min(delay * 2, _LAST_POLL)
            opened = _open(runtime, workflow_id, name, inputs, values)
        if isinstance(opened, Run):
            token = enter_run(opened)
            try:
                with call_options_scope(body_options):
                    result = fn(*args, **kwargs)
            except BaseException as exc:
                _finish_failed(opened, exc)
                raise
            finally:
                exit_run(token)
            _finish_succeeded(opened, name, result)
        else:
            result = outcome(runtime, opened.record)
    except BaseException as exc:
        _done_in_process(runtime, workflow_id, future, error=exc)
        raise
    _done_in_process(runtime, workflow_id, future, result=result)
    return result


def call_workflow_async(
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    recorded_args: tuple[Any, ...],
) -> Awaitable[Any]:
    """Call an async workflow: identity and options are taken now, the body runs when awaited."""
    if current_run() is not None or current_step() is not None:
        return fn(*args, **kwargs)
    workflow_id, body_options = _identity()
    return _run_async(fn, args, kwargs, name, recorded_args, workflow_id, body_options)


async def _run_async(
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    recorded_args: tuple[Any, ...],
    workflow_id: str,
    body_options: Options | None,
) -> Any:
    runtime = get_runtime()
    future, mine = _own_in_process(runtime, workflow_id)
    if not mine:
        return await asyncio.wrap_future(future)
    try:
        values = {"args": list(recorded_args), "kwargs": kwargs}
        inputs = _inputs(runtime, name, values)
        opened = _open(runtime, workflow_id, name, inputs, values)
        delay = _FIRST_POLL
        while opened is None:  # a live executor runs it: wait, or adopt it if that one dies
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_POLL)
            opened = _open(runtime, workflow_id, name, inputs, values)
        if isinstance(opened, Run):
            token = enter_run(opened)
            try:
                with call_options_scope(body_options):
                    result = await fn(*args, **kwargs)
            except BaseException as exc:
                _finish_failed(opened, exc)
                raise
            finally:
                exit_run(token)
            _finish_succeeded(opened, name, result)
        else:
            result = outcome(runtime, opened.record)
    except BaseException as exc:
        _done_in_process(runtime, workflow_id, future, error=exc)
        raise
    _done_in_process(runtime, workflow_id, future, result=result)
    return result


def wait_for_outcome(runtime: Runtime, workflow_id: str, timeout: float | None = None) -> Any:
    """Poll the store until the workflow finishes; return or raise its outcome."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = _FIRST_POLL
    while True:
        record = runtime.store.get_workflow(workflow_id)
        if record is None:
            raise WorkflowNotFound(f"no workflow with id {workflow_id!r} in {runtime.store.url}")
        if record.status in FINISHED_STATUSES:
            return outcome(runtime, record)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout}s")
        time.sleep(delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _LAST_POLL)


# -- helpers ------------------------------------------------------------------


def _identity() -> tuple[str, Options | None]:
    """The id for a top-level call, and the per-call options its body sees.

    A ``workflow_id`` in the per-call options names this workflow only: the body
    sees the same options without it, so nested starts get ids of their own.
    """
    opts = current_call_options()
    if opts is None or opts.workflow_id is None:
        return uuid.uuid4().hex, opts
    rest = opts.model_fields_set - {"workflow_id"}
    body = Options.model_construct(
        _fields_set=rest, **{field: getattr(opts, field) for field in rest}
    )
    return opts.workflow_id, body if rest else None


def _own_in_process(runtime: Runtime, workflow_id: str) -> tuple[Future[Any], bool]:
    """(future, True) if this call now runs `workflow_id`; (running one's future, False) if not."""
    with runtime._lock:
        running = runtime.active.get(workflow_id)
        if running is not None:
            return running, False
        mine: Future[Any] = Future()
        runtime.active[workflow_id] = mine
        return mine, True


def _done_in_process(
    runtime: Runtime,
    workflow_id: str,
    future: Future[Any],
    result: Any = None,
    error: BaseException | None = None,
) -> None:
    with runtime._lock:
        if runtime.active.get(workflow_id) is future:
            del runtime.active[workflow_id]
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _inputs(runtime: Runtime, name: str, values: dict[str, Any]) -> str:
    return runtime.codec.encode(values, f"the inputs of workflow {name!r}")


def _check_same_inputs(
    runtime: Runtime, record: WorkflowRecord, inputs: str, values: dict[str, Any]
) -> None:
    """Refuse to continue a workflow id with other inputs than it was started with."""
    if record.inputs == inputs:
        return
    try:
        if runtime.codec.decode(record.inputs) == values:
            return  # equal values, encoded differently (set order, say)
    except Exception:  # undecodable or uncomparable: the encodings decide
        pass
    raise AutodurableError(
        f"workflow id {record.workflow_id!r} was started with other inputs "
        f"({_short(record.inputs)}) than this call ({_short(inputs)}). A workflow id names "
        "one run: use a new id for new inputs."
    )


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _open(
    runtime: Runtime, workflow_id: str, name: str, inputs: str, values: dict[str, Any]
) -> Run | _Finished | None:
    """Start or claim `workflow_id`: a Run to execute, a finished record, or None (busy)."""
    executor = runtime.executor
    store = runtime.store
    now = time.time()
    record = WorkflowRecord(workflow_id, name, PENDING, inputs, None, None, executor.id, now, now)
    if store.create_workflow(record):
        return Run(workflow_id, runtime, {}, executor.id)
    claim = store.claim_workflow(workflow_id, executor.id, executor.alive)
    if claim is None:  # deleted in between: start it anew
        return _open(runtime, workflow_id, name, inputs, values)
    if claim.workflow.name != name:
        raise AutodurableError(
            f"workflow id {workflow_id!r} belongs to workflow {claim.workflow.name}, but this "
            f"call is to {name}. Use a different workflow id."
        )
    _check_same_inputs(runtime, claim.workflow, inputs, values)
    if claim.workflow.status in FINISHED_STATUSES:
        return _Finished(runtime, claim.workflow)
    if not claim.claimed:
        return None
    history = {step.position: step for step in claim.steps}
    log.debug("autodurable: resuming workflow %s with %d recorded steps", workflow_id, len(history))
    return Run(workflow_id, runtime, history, executor.id)


def _finish_failed(run: Run, exc: BaseException) -> None:
    store = run.runtime.store
    try:
        if isinstance(exc, Exception) and not isinstance(exc, AutodurableError):
            store.finish_workflow(
                run.workflow_id, run.executor_id, FAILED, None, run.runtime.codec.encode_error(exc)
            )
        elif not isinstance(exc, OwnershipLost):
            store.release_workflow(run.workflow_id, run.executor_id)
    except (AutodurableError, OwnershipLost) as store_exc:
        log.warning("autodurable: could not record the end of %s: %s", run.workflow_id, store_exc)


def _finish_succeeded(run: Run, name: str, result: Any) -> None:
    runtime = run.runtime
    try:
        output = runtime.codec.encode(result, f"the result of workflow {name!r}")
    except AutodurableError:
        runtime.store.release_workflow(run.workflow_id, run.executor_id)
        raise
    runtime.store.finish_workflow(run.workflow_id, run.executor_id, SUCCEEDED, output, None)
