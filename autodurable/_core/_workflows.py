"""Executing a workflow: start it, resume it, or return its recorded outcome.

Invariants:
- A workflow called from workflow code runs inline: its steps continue the
  caller's sequence. Called from inside a step, it runs plainly.
- Running a workflow installs (once per process) the patches of `_concurrency`,
  so that work its code starts in threads, pools and tasks is recorded.
- A top-level call records the inputs and status before the body runs (one
  write), and the outcome when it returns (one write). A resumed workflow's
  history is loaded in the same transaction that claims it.
- A workflow id that finished returns its recorded output, or raises its
  recorded exception, without running anything. One that is unfinished and
  not owned by a live executor is resumed; one that a live executor (this
  process included) is running is waited for, never run twice, and adopted
  if that executor dies while we wait.
- Waiting is woken by the store when it can notify (PostgreSQL LISTEN/NOTIFY),
  with a bounded wait as a safety net; otherwise it polls with backoff. A
  waiter subscribes before its last look at the state, so no change is missed.
- Only an exception from the user's code marks a workflow failed. Our own
  errors (codec, store), control signals and interruptions leave it pending
  and released, so that running it again resumes it.
- A cancelled workflow stays cancelled: its run stops with `WorkflowCancelled`
  (releasing it), nothing recorded afterwards overwrites the cancellation,
  and calling it again raises the recorded `WorkflowCancelled` until it is
  resumed. A workflow whose deadline passed before it was resumed is
  cancelled instead of run.
- With telemetry on (`_telemetry`), each execution (a first run or a resume,
  in this process or another) has a span, started before its record is
  written or once it is claimed, current in the body, ended when the call
  ends; a call that runs nothing (a recorded outcome) has none.
- Every new workflow records its version (`_version`) and, with a
  ``workflow_timeout``, its deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import (
    AutodurableError,
    EncodeError,
    Interrupted,
    OwnershipLost,
    WorkflowCancelled,
    WorkflowNotFound,
)
from .._light import uuid4_hex
from .._records import Record
from .._store import (
    CANCELLED,
    FAILED,
    FINISHED_STATUSES,
    PENDING,
    SUCCEEDED,
    Claim,
    WorkflowRecord,
)
from . import _concurrency, _faults, _timebase
from ._app_versions import version_for
from ._async_writes import running_async_workflow, settle, settle_async
from ._boundary import expire, recorded_cancellation
from ._context import (
    Run,
    current_run,
    current_step,
    enter_run,
    exit_run,
    running_unrecorded,
    split_history,
)

# FinishLater and finishing_later moved to `_finish_later`; importers still find them here.
from ._finish_later import _FINISH_LATER
from ._finish_later import FinishLater as FinishLater
from ._finish_later import finishing_later as finishing_later
from ._inputs import check_same_inputs, unrecordable_input
from ._options import CallOptions, call_options_scope, current_call_options
from ._report import first_time, logger, unrecordable_inputs, warn_once
from ._runtime import Runtime, get_runtime
from ._waiting import wait_for, wait_for_async

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ._telemetry import WorkflowTrace

T = TypeVar("T")


class _NotRecorded:
    """What `open` returns for a call whose inputs cannot be recorded: it runs plainly."""


class _Busy(Record, frozen=True):
    """What `_open` returns when a live executor runs the workflow.

    `owner_here`: that executor is on this host, so its death shows at once in
    the process table (no lease to wait out) and a waiter looks often.
    """

    owner_here: bool


_NOT_RECORDED = _NotRecorded()
# A claim the caller already holds (recovery adopted the workflow, `start`
# recorded it, a fork made it ours), handed to the worker call that runs it.
_HANDED: contextvars.ContextVar[Claim | None] = contextvars.ContextVar(
    "autodurable_handed_claim", default=None
)
UNRECORDED_RESULT = '{"~":"unrecorded"}'  # the codec refuses to decode it, with a reason


class _Finished:
    """A workflow that already has an outcome."""

    def __init__(self, runtime: Runtime, record: WorkflowRecord) -> None:
        self.runtime = runtime
        self.record = record


def outcome(runtime: Runtime, record: WorkflowRecord) -> Any:
    """The recorded result of a finished workflow, or raise its recorded exception."""
    if record.status == SUCCEEDED:
        return runtime.codec.decode(record.output or "null")
    if record.status == CANCELLED and not record.error:
        raise WorkflowCancelled(record.workflow_id)
    raise runtime.codec.decode_error(record.error or "{}")


def call_workflow(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    recorded_args: tuple[Any, ...],
    rerun: bool = False,
    timeout: float | None = None,
) -> Any:
    """Call a sync workflow in the current context.

    With `rerun`, a workflow whose inputs cannot be recorded runs plainly
    (unrecorded) instead of failing, and an unrecordable result is recorded as
    such. `timeout` is the decorator's ``workflow_timeout`` (a per-call one wins).
    """
    if current_run() is not None or current_step() is not None:
        return fn(*args, **kwargs)
    call = _TopLevelCall(fn, name, recorded_args, kwargs, rerun, timeout)
    running = call.join()
    if running is not None:
        return running.result()  # another thread of this process runs it
    with call:
        opened = call.open()
        if isinstance(opened, _NotRecorded):
            with running_unrecorded(name):
                return call.done(fn(*args, **kwargs))
        if opened is None:  # a live executor runs it: wait, or adopt it if that one dies
            opened = wait_for(call.runtime, call.workflow_id, call.open, busy=call)  # type: ignore[assignment]
        if isinstance(opened, _Finished):
            return call.done(outcome(call.runtime, opened.record))
        run = _opened_run(opened)
        with call.running(run):
            result = fn(*args, **kwargs)
        return call.done(call.succeeded(run, result))


def call_workflow_async(
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    recorded_args: tuple[Any, ...],
    rerun: bool = False,
    timeout: float | None = None,
) -> Awaitable[Any]:
    """Call an async workflow: identity and options are taken now, the body runs when awaited."""
    if current_run() is not None or current_step() is not None:
        return fn(*args, **kwargs)
    call = _TopLevelCall(fn, name, recorded_args, kwargs, rerun, timeout)
    return _run_async(fn, args, kwargs, call)


async def _run_async(
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    call: _TopLevelCall,
) -> Any:
    running = call.join()
    if running is not None:
        import asyncio  # running on a loop: imported

        return await asyncio.wrap_future(running)
    with call:
        opened = call.open()
        if isinstance(opened, _NotRecorded):
            with running_unrecorded(call.name):
                return call.done(await fn(*args, **kwargs))
        if opened is None:  # a live executor runs it: wait, or adopt it if that one dies
            opened = await wait_for_async(call.runtime, call.workflow_id, call.open, call)
        if isinstance(opened, _Finished):
            return call.done(outcome(call.runtime, opened.record))
        run = _opened_run(opened)
        with call.running(run), running_async_workflow():
            try:
                result = await fn(*args, **kwargs)
            finally:  # before the run ends, its steps' records the loop still writes
                await settle_async(run.workflow_id)
        return call.done(call.succeeded(run, result))


class _TopLevelCall:
    """One top-level call of a workflow: its id, its slot in this process, its records.

    Created when the workflow is called (so an async workflow takes its id and
    options then); used as a context manager around the execution, which
    publishes the outcome to other threads of this process waiting on the id.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        recorded_args: tuple[Any, ...],
        kwargs: dict[str, Any],
        rerun: bool,
        timeout: float | None,
    ) -> None:
        self.runtime = get_runtime()
        self.fn = fn
        self.name = name
        self.rerun = rerun
        self.workflow_id, self.body_options, call_timeout = _identity()
        self.timeout = call_timeout or timeout
        self.values: dict[str, Any] = {"args": list(recorded_args), "kwargs": kwargs}
        self._inputs: str | None = None
        # Made when a second call of the id waits for this one (concurrent.futures, and
        # the logging it imports, cost every sync program 5 ms at start).
        self._future: Future[Any] | None = None
        self._result: Any = None
        self.owner_here = False  # the live executor running it is on this host (see _Busy)
        telemetry = self.runtime.telemetry  # None unless telemetry is on
        self.trace = telemetry.workflow(self.workflow_id, name, fn) if telemetry else None
        self._run: Run | None = None  # the execution, if this call runs it

    def join(self) -> Future[Any] | None:
        """Take the id's slot in this process; or return the future of the call holding it."""
        with self.runtime._lock:
            running: _TopLevelCall | None = self.runtime.active.get(self.workflow_id)
            if running is None:
                self.runtime.active[self.workflow_id] = self
                return None
            # Under the lock the holder leaves its slot by: it completes this future.
            if running._future is None:
                import concurrent.futures

                running._future = concurrent.futures.Future()
            return running._future

    def __enter__(self) -> _TopLevelCall:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        with self.runtime._lock:
            if self.runtime.active.get(self.workflow_id) is self:
                del self.runtime.active[self.workflow_id]
            waiting = self._future
        if self.trace is not None:
            self.trace.end(self._run, exc)
        if waiting is None:
            return
        if exc is None:
            waiting.set_result(self._result)
        else:
            waiting.set_exception(exc)

    def done(self, result: Any) -> Any:
        """Keep the result for waiting threads and return it."""
        self._result = result
        return result

    def open(self) -> Run | _Finished | _NotRecorded | None:
        """Start or claim the workflow (see `_open`); `_NOT_RECORDED` if it cannot be."""
        if self._inputs is None:
            try:
                self._inputs = self.runtime.codec.encode(
                    self.values, f"the inputs of workflow {self.name!r}"
                )
            except EncodeError:
                if not self.rerun:
                    raise
                if first_time(self.name):  # once per workflow: which input, and the fix
                    where = unrecordable_input(self.runtime, self.fn, self.values)
                    logger().warning("%s", unrecordable_inputs(self.name, *where))
                return _NOT_RECORDED
        version = version_for(self.runtime.settings, self.fn)
        opened = _open(
            self.runtime,
            self.workflow_id,
            self.name,
            self._inputs,
            self.values,
            version,
            self.timeout,
            self.trace,
        )
        if isinstance(opened, _Busy):
            self.owner_here = opened.owner_here
            return None
        return opened

    @contextlib.contextmanager
    def running(self, run: Run) -> Iterator[None]:
        """Execute the body as `run`; record a failure (or release) if it raises."""
        if not _concurrency.installed:
            _concurrency.install()  # work the body starts concurrently takes its context
        token = enter_run(run)
        self._run, trace = run, self.trace
        if trace is not None:
            trace.enter()  # its span is current in the body: steps are its children
        try:
            with call_options_scope(self.body_options):
                yield
        except BaseException as exc:
            settle(run.workflow_id)  # records its async steps handed to a writer
            instead = _finish_failed(run, exc)
            if instead is not None:
                raise instead from None
            raise
        finally:
            if trace is not None:
                trace.leave()
            exit_run(token)

    def succeeded(self, run: Run, result: Any) -> Any:
        """Record the result; returns it (saying so when recorded steps were left over)."""
        runtime = self.runtime
        settle(run.workflow_id)  # records its async steps handed to a writer
        _report_steps_left(run, self.name)
        try:
            output = runtime.codec.encode(result, f"the result of workflow {self.name!r}")
        except EncodeError as exc:
            if not self.rerun:
                runtime.store.release_workflow(run.workflow_id, run.executor_id)
                raise
            warn_once(f"{self.name}:result", f"autodurable: {exc}; it is not recorded")
            output = UNRECORDED_RESULT
        later = _FINISH_LATER.get()
        if later is not None and later.workflow_id == run.workflow_id:

            def finish() -> str:
                return runtime.store.finish_workflow(
                    run.workflow_id, run.executor_id, SUCCEEDED, output, None
                )

            later.hold(finish)  # a cancellation meanwhile: it stays cancelled
            return result
        status = runtime.store.finish_workflow(
            run.workflow_id, run.executor_id, SUCCEEDED, output, None
        )
        if status == CANCELLED:  # cancelled after its last step: it stays cancelled
            runtime.store.release_workflow(run.workflow_id, run.executor_id)
            raise recorded_cancellation(run)
        return result


def _report_steps_left(run: Run, name: str) -> None:
    """Log when the workflow returns before replaying all that was recorded for it.

    The code now takes another path than the recorded run (a fix, or a read that
    was not a step and now gives another answer): the steps left over are not
    run again and their effects stay done; the record keeps them.
    """
    left = sorted(position for position in run.history if position > run.position)
    if not left:
        return
    first = run.history[left[0]]
    if _faults.observer is not None:  # a replay check: the code returned too early
        _faults.observer("left", run.workflow_id, run.place(left[0]), first.name)
    logger().warning(
        "autodurable: workflow %s (%s) returned after %d step(s), but %d more were recorded "
        "when it ran before (from step %s, %r): the code took another path this time. "
        "Those steps are not run again (their effects stay done); see them with "
        "`autodurable workflows steps %s`",
        run.workflow_id, name, run.position, len(left), run.place(left[0]), first.name,
        run.workflow_id,
    )  # fmt: skip


def _opened_run(opened: object) -> Run:
    """The run a top-level call opened: after any wait it is neither unrecorded (that
    is decided before) nor missing (the wait has no time limit)."""
    if not isinstance(opened, Run):
        raise AssertionError(f"opening a workflow gave {opened!r}")
    return opened


def wait_for_outcome(runtime: Runtime, workflow_id: str, timeout: float | None = None) -> Any:
    """Wait until the workflow finishes (woken by the store, or polling); its outcome."""
    record = wait_for(runtime, workflow_id, _finished(runtime, workflow_id), timeout=timeout)
    return _outcome_within(runtime, workflow_id, record, timeout)


async def wait_for_outcome_async(
    runtime: Runtime, workflow_id: str, timeout: float | None = None
) -> Any:
    """`wait_for_outcome` on the event loop, holding no thread while it waits."""
    finished = _finished(runtime, workflow_id)
    record = await wait_for_async(runtime, workflow_id, finished, timeout=timeout)
    return _outcome_within(runtime, workflow_id, record, timeout)


def _finished(runtime: Runtime, workflow_id: str) -> Callable[[], WorkflowRecord | None]:
    def finished() -> WorkflowRecord | None:
        record = runtime.store.get_workflow(workflow_id)
        if record is None:
            raise WorkflowNotFound(f"no workflow with id {workflow_id!r} in {runtime.store.url}")
        return record if record.status in FINISHED_STATUSES else None

    return finished


def _outcome_within(
    runtime: Runtime, workflow_id: str, record: WorkflowRecord | None, timeout: float | None
) -> Any:
    if record is None:
        raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout}s")
    return outcome(runtime, record)


# -- helpers ------------------------------------------------------------------


_OWN_FIELDS = frozenset({"workflow_id", "workflow_timeout"})


def _identity() -> tuple[str, CallOptions | None, float | None]:
    """The id for a top-level call, the per-call options its body sees, and its timeout.

    A ``workflow_id`` and a ``workflow_timeout`` in the per-call options are this
    workflow's only: the body sees the same options without them, so nested
    starts get ids (and deadlines) of their own.
    """
    opts = current_call_options()
    if opts is None or not (opts.fields_set & _OWN_FIELDS):
        return uuid4_hex(), opts, None
    rest = opts.fields_set - _OWN_FIELDS
    body = CallOptions.trusted({field: getattr(opts, field) for field in rest}, rest)
    workflow_id = opts.workflow_id or uuid4_hex()
    return workflow_id, body if rest else None, opts.workflow_timeout


@contextlib.contextmanager
def handed_over(claim: Claim | None, *, registered: bool = False) -> Iterator[None]:
    """Run the block with `claim` handed to the first call of its workflow.

    That call then runs the workflow from the claim (its record and history)
    instead of creating or claiming it again, unless another call of the same
    workflow ran in this process since the claim was registered: the claim is stale
    then, and the call opens the workflow from the store. A claim made in another
    thread is `registered` there, when it was made (`hand_over_later`); one made in
    this thread is registered here.
    """
    if not registered:
        hand_over_later(claim)
    token = _HANDED.set(claim)
    try:
        yield
    finally:
        _HANDED.reset(token)


def hand_over_later(claim: Claim | None) -> None:
    """Register `claim`, in the thread that made it, for a call that another thread
    makes later (`handed_over` there). Registered claims of a workflow are all taken
    by the first call of it that runs: a later call with one of them would run the
    workflow again from a record that the first run has moved past."""
    if claim is None:
        return
    runtime = get_runtime()
    with runtime._lock:
        claims = runtime.handed.setdefault(claim.workflow.workflow_id, [])
        if not any(other is claim for other in claims):
            claims.append(claim)


def _take_handed_claim(runtime: Runtime, workflow_id: str) -> Claim | None:
    """The claim handed over for `workflow_id`, once, if no other call of it ran since
    the claim was registered; None otherwise (the workflow is opened from the store).

    Called by every call that runs the workflow (it holds the workflow's slot in this
    process, `_TopLevelCall.join`), with a claim or without: either way its run makes
    every claim registered before it stale.
    """
    with runtime._lock:
        registered = runtime.handed.pop(workflow_id, None) if runtime.handed else None
    claim = _HANDED.get()
    if claim is None or claim.workflow.workflow_id != workflow_id:
        return None
    _HANDED.set(None)  # its child workflows start or claim their own
    return claim if registered and any(other is claim for other in registered) else None


def _open(
    runtime: Runtime,
    workflow_id: str,
    name: str,
    inputs: str,
    values: dict[str, Any],
    version: str | None = None,
    timeout: float | None = None,
    trace: WorkflowTrace | None = None,
) -> Run | _Finished | _Busy:
    """Start or claim `workflow_id`: a Run to execute, a finished record, or `_Busy`.

    With telemetry on, `trace` starts the execution's span and records its trace
    context: with the new record, or (continuing one) once it is claimed.
    """
    executor = runtime.executor
    store = runtime.store
    claim = _take_handed_claim(runtime, workflow_id)
    if claim is None:
        now = time.time()
        deadline = _timebase.clock.time() + timeout if timeout else None
        record = WorkflowRecord(
            workflow_id, name, PENDING, inputs, None, None, executor.id, now, now,
            version, deadline, trace_context=None if trace is None else trace.created(),
        )  # fmt: skip
        if store.create_workflow(record):
            return Run(workflow_id, runtime, {}, executor.id, deadline=deadline)
        claim = store.claim_workflow(workflow_id, executor, version)
    if claim is None:  # deleted in between: start it anew
        return _open(runtime, workflow_id, name, inputs, values, version, timeout, trace)
    if claim.workflow.name != name:
        raise AutodurableError(
            f"workflow id {workflow_id!r} belongs to workflow {claim.workflow.name}, but this "
            f"call is to {name}. Use a different workflow id."
        )
    check_same_inputs(runtime, claim.workflow, inputs, values)
    if claim.workflow.status in FINISHED_STATUSES:
        return _Finished(runtime, claim.workflow)
    if not claim.claimed:
        return _Busy(claim.owner is not None and claim.owner.hostname == executor.hostname)
    history, branches = split_history(claim.steps)
    if "logging" in sys.modules:  # else no handler is configured that would show it
        logger().debug(
            "autodurable: resuming workflow %s with %d recorded steps",
            workflow_id,
            len(claim.steps),
        )
    run = Run(
        workflow_id,
        runtime,
        history,
        executor.id,
        deadline=claim.workflow.deadline,
        branches=branches,
    )
    if run.deadline is not None and time.time() >= run.deadline:
        stop = expire(run)  # its deadline passed while nobody ran it
        store.release_workflow(workflow_id, executor.id)
        raise stop
    if trace is not None:
        trace.claimed(run, claim.workflow.trace_context)
    return run


def _say_left_pending(run: Run, exc: BaseException) -> None:
    """One line on stderr (through logging) when the process stops a workflow midway."""
    why = {
        Interrupted: "the process is exiting",
        KeyboardInterrupt: "interrupted (Ctrl-C)",
    }.get(type(exc), f"the program exits ({type(exc).__name__})")
    logger().warning(
        "autodurable: workflow %s stopped after %d step(s): %s. It is left pending and "
        "resumes where it stopped when run again (or by autodurable.recover())",
        run.workflow_id, run.position, why,
    )  # fmt: skip


def _finish_failed(run: Run, exc: BaseException) -> WorkflowCancelled | None:
    """Record how the run ended: failed, or released (cancelled, interrupted, our error).

    Returns the exception to raise instead of `exc` when the workflow turns
    out to have been cancelled before its failure could be recorded.
    """
    store = run.runtime.store
    own_cancellation = isinstance(exc, WorkflowCancelled) and exc.workflow_id == run.workflow_id
    try:
        if own_cancellation or isinstance(exc, OwnershipLost):
            if own_cancellation:
                store.release_workflow(run.workflow_id, run.executor_id)
            return None
        user_failure = isinstance(exc, Exception) and not isinstance(exc, AutodurableError)
        if user_failure or isinstance(exc, WorkflowCancelled):  # another workflow's: an outcome
            status = store.finish_workflow(
                run.workflow_id, run.executor_id, FAILED, None, run.runtime.codec.encode_error(exc)
            )
            if status == CANCELLED:
                store.release_workflow(run.workflow_id, run.executor_id)
                return recorded_cancellation(run)
        else:
            store.release_workflow(run.workflow_id, run.executor_id)
            if isinstance(exc, Interrupted | KeyboardInterrupt | SystemExit):
                _say_left_pending(run, exc)
    except (AutodurableError, OwnershipLost) as store_exc:
        logger().warning(
            "autodurable: could not record the end of %s: %s", run.workflow_id, store_exc
        )
    return None
