"""Executing a step: replay from history, or run with retries and timeouts and record.

Invariants:
- A step's position is taken when it is *called* (also for ``async def`` steps,
  before the coroutine starts), so ``asyncio.gather`` of steps numbers them in
  call order, deterministically. In work that workflow code runs concurrently
  (a branch, see `_concurrency`) positions count within the branch, and the
  step is recorded with the branch's path; a step submitted to a pool or a
  thread takes its position at submission.
- On replay a recorded success returns the decoded value and a recorded failure
  raises the decoded exception, without running the function; a different
  recorded name at the same position raises `NondeterminismError`, and so does
  a call of a same-named function from another module, or whose arguments
  differ from the recorded call's: a step's record holds ``"<module
  digest>:<argument digest>"`` (`_watch.digest` of their `arguments_shape`,
  taken when the step is called, before it can change them), and a replay
  compares it with the call's. Rows without a digest (recorded before it was
  kept) replay without the check; a step recorded ``unrecorded`` runs again
  anyway, so it is not checked either.
- The shape is taken only in workflow code; the digest is computed only when a
  record is written or compared, never on a call that does neither.
- The first execution of a step costs one store write and no read; its common
  case (a sync step's first attempt, in a run with nothing to replay, without a
  timeout) takes a path of its own in `call_step` that does what the general
  one does, in the same order, without its bookkeeping object. Failed
  attempts that will be retried are recorded too (status ``retrying``, with
  the time the next attempt is due), so the attempt count and the backoff
  survive a crash: a resumed step waits for the rest of its backoff (at most
  the policy's longest wait, whatever the wall clock did meanwhile).
- With limits on APIs configured (`_limits`), each attempt of a step that calls
  a matching API takes its permits just before it runs and returns them when
  it ends; such calls take the general path.
- A test may watch every attempt's boundaries, before its body and after it
  but before its record, and stop the run there (`_faults`); such calls take
  the general path too, and so do all steps of a runtime with telemetry on
  (`_telemetry`: a span per attempt that runs, current in its body; an event
  per replayed step): off, the fast path's one test of `steps_watched`
  covers both limits and telemetry.
- A step called inside a step runs plainly. A step called outside any workflow
  runs with its retries and timeout but records nothing.
- A step called in a process forked from workflow code (its run's `Run.pid`
  is not this process's) runs plainly, outside any run: it takes no position
  and writes nothing, so a child never writes into its parent's workflow; a
  warning says so once per step name and process.
- Every step write is a boundary: the status it returns tells a cancelled
  workflow to stop there (the step is recorded first), and a workflow whose
  deadline passed is cancelled there; a failed attempt is not retried then.
- A result the codec cannot encode fails the step with `EncodeError`, unless
  its options say ``unrecordable="rerun"``: then the step is recorded as
  ``unrecorded`` and runs again whenever the workflow is replayed.
- ``BaseException``s that are not ``Exception``s (KeyboardInterrupt, task
  cancellation, our control signals) pass through unrecorded.
- Sync timeouts (`_step_timeouts`) run the attempt on a helper thread; on
  timeout the attempt is abandoned (the thread cannot be killed and may still
  finish in the background, its result never recorded), recorded as failed with
  `StepTimeoutError`, and retried with the same idempotency key, once the
  abandoned attempt has ended (at once with ``overlap=True``); at exit the
  process waits for it, within bounds (`_abandoned`).
"""

from __future__ import annotations

import binascii
import functools
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import EncodeError, NondeterminismError, StepTimeoutError
from .._store import FAILED, PENDING, RETRYING, SUCCEEDED, UNRECORDED, StepRecord
from . import _context, _faults, _timebase
from ._async_writes import record_result
from ._async_writes import running as _running_steps
from ._boundary import check_boundary, interrupted
from ._context import (
    CODE_VAR,
    RUN_VAR,
    STEP_VAR,
    Run,
    current_run,
    current_step,
    enter_step,
    exit_step,
    forked_call,
    forked_call_async,
    warn_forked,
)
from ._options import CallOptions, Retry
from ._report import warn_once, warn_unrecordable
from ._watch import arguments_shape, digest

if TYPE_CHECKING:
    from ._limits import StepLimits
    from ._telemetry import StepTrace, Telemetry


class StepCall:
    """The bookkeeping of one step call: position, attempts, recording."""

    __slots__ = (
        "abandoned",
        "attempt",
        "due",
        "module",
        "name",
        "opts",
        "place",
        "position",
        "run",
        "shape",
        "started",
        "timeout",
    )

    def __init__(
        self,
        run: Run | None,
        name: str,
        opts: CallOptions,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        module: str = "",
    ) -> None:
        self.run = run
        self.module = module  # of the step function: a same-named one elsewhere is another step
        self.name = name
        self.opts = opts  # the rest of them matter only when an attempt fails
        self.timeout = opts.timeout
        self.attempt = 0
        self.started = 0.0
        self.due: float | None = None  # a resumed retry: when its next attempt was due
        # The attempt that timed out and may still run (a sync step's helper thread).
        self.abandoned: threading.Event | None = None
        if run is None:
            self.position = 0
            self.place: int | str = 0
            self.shape: Any = None
        else:
            # What the digest of its arguments is made of, taken before the call
            # (which may change them); the digest itself only when it is needed.
            self.shape = arguments_shape(args, kwargs or {})
            self.position = position = run.take_position()
            # Its position, or in concurrent work its path ("3.1"): what the step
            # sees as current_step(), and what its idempotency key is made of.
            self.place = run.place(position) if run.branch else position

    @property
    def policy(self) -> Retry:
        """The retry policy of the call."""
        return self.opts.retry_policy

    def replay(self) -> tuple[bool, Any]:
        """(True, value) when the step is recorded as done; raises a recorded failure."""
        run = self.run
        if run is None:
            return False, None
        recorded = run.recorded(self.position, self.name)
        if recorded is None:
            return False, None
        if recorded.arguments is not None and recorded.status != UNRECORDED:
            self._check_identity(run, recorded)
        codec = run.runtime.codec
        if recorded.status in (SUCCEEDED, FAILED):
            run.replayed += 1
            if run.runtime.telemetry is not None:
                run.runtime.telemetry.replayed(run, self.place, self.name, recorded.status)
            if recorded.status == FAILED:
                raise codec.decode_error(recorded.error or "{}")
            return True, codec.decode(recorded.output or "null")
        if recorded.status == UNRECORDED:
            self.run = None  # it ran, but only running it again gives its result
            return False, None
        self.attempt = recorded.attempts  # retrying: continue the attempt count
        if recorded.status == RETRYING and recorded.output:
            self.due = float(json.loads(recorded.output))
        return False, None

    def identity(self) -> str:
        """What the record keeps to recognise this call on replay: ``"<module>:<arguments>"``,
        the digests of the step function's module and of the call's arguments."""
        return f"{_module_digest(self.module)}:{digest(self.shape)}"

    @classmethod
    def after_first_attempt(
        cls,
        run: Run,
        name: str,
        opts: CallOptions,
        module: str,
        shape: Any,
        position: int,
        started: float,
    ) -> StepCall:
        """The bookkeeping of a call whose first attempt `call_step` ran on its fast path
        (position taken, shape kept): what a failed attempt and its retries need."""
        call = cls.__new__(cls)
        call.run, call.module, call.name, call.opts = run, module, name, opts
        call.timeout = opts.timeout
        call.attempt, call.started, call.due, call.abandoned = 1, started, None, None
        call.shape, call.position = shape, position
        call.place = run.place(position)
        return call

    def _check_identity(self, run: Run, recorded: StepRecord) -> None:
        """Refuse to replay a record made by a function of this name in another module,
        or called with other arguments (rows from before the module was kept: arguments
        only)."""
        assert recorded.arguments is not None
        module, _, arguments = recorded.arguments.rpartition(":")
        here = _module_digest(self.module)
        # A script's functions live in "__main__" when it runs and in its own name when
        # imported (a replay, a worker): a record of either side matches the other.
        if module and here and module != here and _MAIN not in (module, here):
            raise NondeterminismError(
                run.workflow_id, self.place, recorded.name, self.name, module=self.module
            )
        current = digest(self.shape)
        if arguments != current:
            raise NondeterminismError(
                run.workflow_id,
                self.place,
                recorded.name,
                self.name,
                arguments=(arguments, current),
            )

    def wait_before_resuming(self) -> float:
        """Seconds left of the backoff a retrying step was in when its process died.

        Measured against the recorded due time, and never more than the policy's
        longest wait (a wall clock set back must not stretch it).
        """
        if self.due is None:
            return 0.0
        policy = self.policy
        longest = policy.max_interval * (1 + policy.jitter)
        return max(0.0, min(self.due - _timebase.clock.time(), longest))

    def begin(self) -> None:
        """Start the next attempt (after the abandoned one, if any, has ended)."""
        abandoned = self.abandoned
        if abandoned is not None and not abandoned.is_set() and not self.opts.overlap:
            warn_once(
                ("overlap", self.name),
                f"autodurable: step {self.name!r} timed out; its retry waits for the "
                "abandoned attempt to end, so that the two never run at once "
                "(overlap=True on the step retries at once)",
            )
            abandoned.wait()
        self.abandoned = None
        self.attempt += 1
        self.started = time.time()

    def succeeded(self, result: Any) -> None:
        """Record the result (durable before returning)."""
        run = self.run
        if run is not None:
            _record_result(run, self.result_row(result))

    def result_row(self, result: Any) -> StepRecord:
        """The record `succeeded` writes (also for a writer of its own, `_async_writes`,
        which then calls `recorded` with the status the write returned)."""
        assert self.run is not None
        return _result_row(
            self.run, self.position, self.name, self.opts, result, self.attempt, self.started,
            _module_digest(self.module), self.shape,
        )  # fmt: skip

    def recorded(self, workflow_status: str) -> None:
        """What `succeeded` does once its record is written: stop at a boundary."""
        run = self.run
        if run is not None and (workflow_status != PENDING or run.deadline is not None):
            check_boundary(run, workflow_status)

    def failed(self, exc: Exception) -> float | None:
        """Record a failed attempt; the delay before the next one, or None if final."""
        retry = self.policy.should_retry(exc, self.attempt)
        delay = self.policy.delay(self.attempt) if retry else None
        run = self.run
        if run is not None:
            workflow_status = run.runtime.store.record_step(
                run.workflow_id,
                run.executor_id,
                StepRecord(
                    self.position,
                    self.name,
                    RETRYING if retry else FAILED,
                    # A retry records when its next attempt is due, so that a resumed
                    # workflow waits for the rest of the backoff instead of at once.
                    None if delay is None else json.dumps(_timebase.clock.time() + delay),
                    run.runtime.codec.encode_error(exc),
                    self.attempt,
                    self.started,
                    time.time(),
                    branch=run.branch,
                    arguments=self.identity(),
                ),
            )
            if workflow_status != PENDING or run.deadline is not None:
                check_boundary(run, workflow_status)
        return delay

    def timed_out(self) -> StepTimeoutError:
        """The error recorded for an attempt that exceeded its timeout."""
        return StepTimeoutError(
            f"step {self.name!r} attempt {self.attempt} exceeded its timeout of "
            f"{self.timeout}s and was abandoned"
        )


def _module_of(fn: Any) -> str:
    """The module a step function was defined in ("" when it has none, as a partial)."""
    module = getattr(fn, "__module__", None)
    return module if type(module) is str else ""


@functools.lru_cache(maxsize=1024)
def _module_digest(module: str) -> str:
    """A short digest of a module name ("" for none): kept in each step's record."""
    return f"{binascii.crc32(module.encode('utf-8', 'backslashreplace')):08x}" if module else ""


_MAIN = _module_digest("__main__")


@functools.lru_cache(maxsize=1024)
def _result_of(name: str) -> str:
    """How an error names a step's result (made once per name: every step needs it)."""
    return f"the result of step {name!r}"


def _record_result(run: Run, step: StepRecord) -> None:
    """Write a step's record (durable before returning); stop at a boundary it reports."""
    runtime = run.runtime
    store = runtime._store  # open: the run's workflow is in it (the property is a call)
    if store is None:
        store = runtime.store
    workflow_status = store.record_step(run.workflow_id, run.executor_id, step)
    if workflow_status != PENDING or run.deadline is not None:
        check_boundary(run, workflow_status)


def _result_row(
    run: Run,
    position: int,
    name: str,
    opts: CallOptions,
    result: Any,
    attempt: int,
    started: float,
    module_digest: str,
    shape: Any,
) -> StepRecord:
    """The record of a step's result, or of its being unrecordable (positional: every
    step's record is built here, so no keyword parsing)."""
    runtime = run.runtime
    status = SUCCEEDED
    try:
        output: str | None = runtime.codec.encode(result, _result_of(name))
    except EncodeError as exc:
        if opts.unrecordable != "rerun":
            raise
        status, output = UNRECORDED, None
        warn_unrecordable(name, exc)
    # Positional: every step is recorded here, so no keyword parsing. The identity
    # is `StepCall.identity`, from the module's digest already at hand.
    return StepRecord(
        position, name, status, output, None, attempt, started, time.time(), None,
        run.branch, f"{module_digest}:{digest(shape)}",
    )  # fmt: skip


def call_step(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    opts: CallOptions,
) -> Any:
    """Call a sync step in the current context."""
    # The path every step takes: kept to few calls, since a step of a workflow on a
    # local database costs only a few microseconds more than this. Its common case,
    # the first attempt of a step in a run with nothing to replay and no timeout, runs
    # here without a `StepCall`; anything else (and a failed first attempt) takes the
    # general path below, which does the same in the same order.
    if STEP_VAR.get() is not None:
        return fn(*args, **kwargs)
    run = RUN_VAR.get()
    if (
        run is None
        or run.history
        or opts.timeout is not None
        or run.pid != _context.pid
        or run.runtime.steps_watched  # limits on APIs, or telemetry
        or _faults.observer is not None
    ):
        return _call_step(fn, args, kwargs, name, opts, run)
    module = getattr(fn, "__module__", None)  # `_module_of`
    if type(module) is not str:
        module = ""
    shape = arguments_shape(args, kwargs)  # before the call, which may change them
    position = run.take_position()
    branch = run.branch
    place = f"{branch}.{position}" if branch else position  # `Run.place`
    if run.runtime.stopping.is_set():
        raise interrupted(run)  # the process is exiting: no new step starts
    started = time.time()
    retry: StepCall | None = None
    token, code_token = STEP_VAR.set(place), CODE_VAR.set(None)
    try:
        result = fn(*args, **kwargs) if kwargs else fn(*args)
    except Exception as exc:
        retry = StepCall.after_first_attempt(run, name, opts, module, shape, position, started)
        delay = retry.failed(exc)
        if delay is None:
            raise
        _timebase.clock.sleep(delay)
    finally:
        CODE_VAR.reset(code_token)
        STEP_VAR.reset(token)
    if retry is not None:
        return _attempts(retry, fn, args, kwargs)
    _record_result(
        run,
        _result_row(run, position, name, opts, result, 1, started, _module_digest(module), shape),
    )
    return result


def _call_step(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    opts: CallOptions,
    run: Run | None,
) -> Any:
    """`call_step`'s general path: outside a run, in a forked child, on replay, with a
    timeout."""
    if run is not None and run.pid != _context.pid:  # a forked child's: not ours to record
        warn_forked("step", name, run)
        return forked_call(fn, args, kwargs)
    call = StepCall(run, name, opts, args, kwargs, _module_of(fn))
    if call.run is not None and call.run.history:  # a fresh run has nothing to replay
        done, value = call.replay()
        if done:
            return value
        if call.due is not None:
            _timebase.clock.sleep(call.wait_before_resuming())
    if run is not None and run.runtime.stopping.is_set():
        raise interrupted(run)  # the process is exiting: no new step starts
    return _attempts(call, fn, args, kwargs)


def _limits_of(call: StepCall, fn: Callable[..., Any]) -> StepLimits | None:
    """The limits on the APIs a step's `fn` calls (`_limits`, loaded only when limits
    are configured); None without any."""
    run = call.run
    limiter = run.runtime.limiter if run is not None else None
    if limiter is None or run is None:
        return None
    return limiter.step_limits(run, fn, call.name)


def _attempts(
    call: StepCall, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a sync step's attempts until one succeeds (recorded) or fails for good."""
    limits = _limits_of(call, fn)
    observer = _faults.observer if call.run is not None else None
    telemetry = call.run.runtime.telemetry if call.run is not None else None
    while True:
        call.begin()
        # Permits are taken before the attempt and returned when it ends: with a
        # timeout, by the thread that runs it, which may outlive the attempt.
        held = limits.acquire(call.place, args, kwargs) if limits is not None else None
        if observer is not None:
            _observe(observer, "before", call)
        traced = _traced(telemetry, call)
        token, code_token = STEP_VAR.set(call.place), CODE_VAR.set(None)
        try:
            if call.timeout is None:
                try:
                    result = fn(*args, **kwargs)
                finally:
                    if held is not None:
                        held.release()
            else:
                from ._step_timeouts import call_with_timeout  # loaded by the first timeout

                result = call_with_timeout(call, fn, args, kwargs, held)
        except Exception as exc:
            delay = call.failed(exc)
            if traced is not None:
                traced.failed(exc, delay)
            if delay is None:
                raise
            _timebase.clock.sleep(delay)
            continue
        except BaseException as exc:  # a control signal: the run stops here
            if traced is not None:
                traced.failed(exc, None)
            raise
        finally:
            CODE_VAR.reset(code_token)
            STEP_VAR.reset(token)
            if traced is not None:
                traced.leave()
        if observer is not None:
            _observe(observer, "after", call)
        call.succeeded(result)
        if traced is not None:
            traced.succeeded(result)
        if observer is not None:
            _observe(observer, "recorded", call)
        return result


def _traced(telemetry: Telemetry | None, call: StepCall) -> StepTrace | None:
    """The telemetry of the attempt that starts now (its span current in the body)."""
    if telemetry is None or call.run is None:
        return None
    return telemetry.step(call.run, call.place, call.name, call.attempt, call.module)


def _observe(observer: _faults.StepObserver, when: str, call: StepCall) -> None:
    """Tell a test's observer of a step boundary (see `_faults`); it may stop the run."""
    assert call.run is not None
    observer(when, call.run.workflow_id, call.place, call.name)


def call_step_async(
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    opts: CallOptions,
) -> Awaitable[Any]:
    """Call an async step: the position is taken now, the body runs when awaited."""
    if current_step() is not None:
        return fn(*args, **kwargs)
    run = current_run()
    if run is not None and run.pid != _context.pid:  # a forked child's: not ours to record
        warn_forked("step", name, run)
        return forked_call_async(fn, args, kwargs)
    call = StepCall(run, name, opts, args, kwargs, _module_of(fn))
    return _run_async_step(call, fn, args, kwargs)


async def _run_async_step(
    call: StepCall,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    done, value = call.replay()
    if done:
        return value
    if call.due is not None:
        await _timebase.clock.sleep_async(call.wait_before_resuming())
    if call.run is not None and call.run.runtime.stopping.is_set():
        raise interrupted(call.run)  # the process is exiting: no new step starts
    limits = _limits_of(call, fn)
    observer = _faults.observer if call.run is not None else None
    telemetry = call.run.runtime.telemetry if call.run is not None else None
    running = _running_steps
    running.steps = getattr(running, "steps", 0) + 1  # seen by this loop's other steps
    try:
        while True:
            call.begin()
            held = (
                await limits.acquire_async(call.place, args, kwargs) if limits is not None else None
            )
            if observer is not None:
                _observe(observer, "before", call)
            traced = _traced(telemetry, call)
            token = enter_step(call.place)
            try:
                if call.timeout is None:
                    result = await fn(*args, **kwargs)
                else:
                    from ._step_timeouts import await_with_timeout  # by the first timeout

                    result = await await_with_timeout(call, fn(*args, **kwargs))
            except Exception as exc:
                delay = call.failed(exc)
                if traced is not None:
                    traced.failed(exc, delay)
                if delay is None:
                    raise
                await _timebase.clock.sleep_async(delay)
                continue
            except BaseException as exc:  # a control signal or a cancelled task: stops here
                if traced is not None:
                    traced.failed(exc, None)
                raise
            finally:
                exit_step(token)
                if traced is not None:
                    traced.leave()
                if held is not None:  # cancelled at its timeout: the attempt has ended
                    held.release()
            if observer is not None:
                _observe(observer, "after", call)
            await record_result(call, result)
            if traced is not None:
                traced.succeeded(result)
            if observer is not None:
                _observe(observer, "recorded", call)
            return result
    finally:
        running.steps -= 1
