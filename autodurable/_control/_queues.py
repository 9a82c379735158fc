"""Queues: workflows started by whichever worker has room, within limits that hold
across every process and machine.

Invariants:
- `Queue.enqueue` is durable before it returns: the workflow is recorded
  waiting (``enqueued``, or ``delayed`` until its delay has passed), unowned,
  with its inputs; a worker's dequeue (`_serve`) makes it pending and runs it
  exactly once per id, with the usual recovery afterwards.
- A queue's limits are stored when it is declared here (before its first
  enqueue or serve), so workers of every process apply the same ones.
- Called from workflow code, an enqueue's workflow id is recorded as a step
  (`new_child_id`): a replay enqueues nothing new and gets the same handle.
- `Queue.enqueue_many` writes its whole batch in one transaction, all or
  nothing, with the outcomes that enqueuing its items one after the other would
  have had (see `_queue_batch`).
- With a dedup id, a second enqueue while the first waits or runs returns the
  first one's handle (``if_duplicate="return"``) or raises `DuplicateWorkflow`
  naming it (``"reject"``); nothing is inserted either way.
- With telemetry on, an enqueued workflow records the caller's trace context,
  so that the span of the worker that runs it continues the caller's trace.
- Bad arguments (a malformed rate, a negative limit, a function that is not a
  workflow) raise `AutodurableError` or `TypeError` naming the fix before
  anything is written.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Literal, TypeVar, overload

from .._core._app_versions import version_for
from .._core._config import QueueSettings
from .._core._decorators import kind_of, workflow_name
from .._core._runtime import Runtime, get_runtime
from .._errors import AutodurableError, EncodeError
from .._rates import parse_rate
from .._records import replace
from .._store import ENQUEUED, Placement, QueueSpec, WorkflowRecord
from ._handle import WorkflowHandle, start
from ._launch import new_child_id

R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")

_declared: dict[str, Queue] = {}  # name -> the queue declared in this process
_lock = threading.Lock()


class DuplicateWorkflow(AutodurableError):
    """An enqueue with a dedup id that a waiting or running workflow of the queue holds."""

    def __init__(self, queue: str, dedup_id: str, holder: str, in_batch: bool = False) -> None:
        if in_batch:  # an earlier item of the same batch, which was not enqueued either
            super().__init__(
                f"two items of the batch have dedup id {dedup_id!r} (queue {queue!r}); "
                "nothing was enqueued. Give each item its own dedup id, or enqueue with "
                "if_duplicate='return' to give the later items the first one's handle"
            )
        else:
            super().__init__(
                f"queue {queue!r} already has workflow {holder!r} waiting or running with "
                f"dedup id {dedup_id!r}; nothing was enqueued. Wait for it "
                f"(autodurable.get_workflow({holder!r}).result()), or enqueue with "
                "if_duplicate='return' to get its handle instead"
            )
        self.queue = queue
        self.dedup_id = dedup_id
        self.holder = holder


def _limit(value: int | None, what: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise AutodurableError(f"{what} must be a whole number >= 1 (or None), not {value!r}")
    return value


class Queue:
    """A named queue of workflows, served by every process that calls
    ``autodurable.recover(watch=True)`` (or runs ``autodurable worker``).

    ``concurrency``: at most this many of its workflows run at once, in all
    workers together; ``worker_concurrency``: at most this many on one worker
    process; ``rate``: at most so many started per period (``"60/min"``,
    ``"25/s"``), in all workers together; ``partitioned=True``: these limits
    apply per partition key (per tenant, per user) given at enqueue.
    """

    def __init__(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        rate: str | None = None,
        partitioned: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise AutodurableError(
                f"queue name {name!r} must be 1-200 letters, digits and _ . : - characters"
            )
        rate_limit, period = parse_rate(rate) if rate is not None else (None, None)
        self.name = name
        self.spec = QueueSpec(
            name,
            _limit(concurrency, "concurrency"),
            _limit(worker_concurrency, "worker_concurrency"),
            rate_limit,
            period,
            bool(partitioned),
        )
        self._stored_in: object | None = None  # the store the spec was written to
        with _lock:
            _declared[name] = self

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    def declare(self) -> None:
        """Store this queue's limits (done before the first enqueue; idempotent).

        Limits set in ``[tool.autodurable.queues.NAME]`` override the code's.
        """
        runtime = get_runtime()
        if self._stored_in is not runtime.store:
            self.spec = configured_spec(self.spec, runtime.settings.queues.get(self.name))
            runtime.store.define_queue(self.spec)
            self._stored_in = runtime.store

    @overload
    def enqueue(
        self,
        fn: Callable[..., Coroutine[Any, Any, R]],
        /,
        *args: Any,
        workflow_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        delay: float | None = None,
        partition_key: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    @overload
    def enqueue(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        workflow_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        delay: float | None = None,
        partition_key: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    def enqueue(
        self,
        fn: Any,
        /,
        *args: Any,
        workflow_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        delay: float | None = None,
        partition_key: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Record workflow ``fn(*args, **kwargs)`` waiting in this queue; its handle.

        Durable when it returns. ``workflow_id`` (default: a fresh one),
        ``priority`` (lower first; default 0), ``dedup_id`` (at most one
        workflow of the queue with it waits or runs at a time: a second
        enqueue returns the first one's handle, or raises `DuplicateWorkflow`
        with ``if_duplicate="reject"``), ``delay`` (seconds before it may
        start), ``partition_key`` (required on a partitioned queue). These
        keywords are the queue's; a workflow argument with one of their names
        goes through `placed` (``queue.placed(...).enqueue(fn, priority=3)``).
        """
        placement = {
            "workflow_id": workflow_id,
            "priority": priority,
            "dedup_id": dedup_id,
            "if_duplicate": if_duplicate,
            "delay": delay,
            "partition_key": partition_key,
        }
        _check_no_clash(fn, placement)
        return self.placed(
            workflow_id=workflow_id,
            priority=priority,
            dedup_id=dedup_id,
            if_duplicate=if_duplicate,
            delay=delay,
            partition_key=partition_key,
        ).enqueue(fn, *args, **kwargs)

    async def enqueue_async(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """`enqueue` for ``async`` code: the same arguments, without blocking the event loop
        while the enqueue is written."""
        return await asyncio.to_thread(functools.partial(self.enqueue, fn, *args, **kwargs))

    @overload
    def enqueue_many(
        self,
        fn: Callable[..., Coroutine[Any, Any, R]],
        args_list: Iterable[tuple[Any, ...]],
        /,
        *,
        workflow_ids: Sequence[str | None] | None = None,
        dedup_ids: Sequence[str | None] | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        priority: int = 0,
        delay: float | None = None,
        partition_key: str | None = None,
    ) -> list[WorkflowHandle[R]]: ...
    @overload
    def enqueue_many(
        self,
        fn: Callable[..., R],
        args_list: Iterable[tuple[Any, ...]],
        /,
        *,
        workflow_ids: Sequence[str | None] | None = None,
        dedup_ids: Sequence[str | None] | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        priority: int = 0,
        delay: float | None = None,
        partition_key: str | None = None,
    ) -> list[WorkflowHandle[R]]: ...
    def enqueue_many(
        self,
        fn: Any,
        args_list: Iterable[tuple[Any, ...]],
        /,
        *,
        workflow_ids: Sequence[str | None] | None = None,
        dedup_ids: Sequence[str | None] | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        priority: int = 0,
        delay: float | None = None,
        partition_key: str | None = None,
    ) -> list[WorkflowHandle[Any]]:
        """Record one workflow ``fn(...)`` per item of `args_list`, waiting in this queue,
        in one transaction; their handles, in order.

        Each item is a tuple of positional arguments (``(x,)`` for one), or an
        ``(args, kwargs)`` pair: a 2-tuple of a tuple and a dict. Durable when it
        returns, all or nothing: one commit and one wake-up of the workers for the
        whole batch. ``workflow_ids`` and ``dedup_ids``: one per item (None for a
        fresh id, or no dedup id); ``priority``, ``delay`` and ``partition_key``
        apply to every item. Equal priorities start in the order given.
        Duplicates behave as if the items were enqueued one after the other with
        `enqueue`: an item whose dedup id a waiting or running workflow holds, or
        an earlier item of the batch, gets that one's handle
        (``if_duplicate="return"``); with ``"reject"`` it raises `DuplicateWorkflow`
        and nothing of the batch is enqueued.
        """
        from ._queue_batch import batch_entries, calls_of, child_ids, per_item

        if kind_of(fn) != "workflow":
            raise TypeError(
                f"enqueue_many() takes a function decorated with @autodurable.workflow, not {fn!r}"
            )
        placed = PlacedQueue(self, None, priority, None, if_duplicate, delay, partition_key)
        calls = calls_of(args_list)
        given = per_item(workflow_ids, len(calls), "workflow_ids")
        dedups = per_item(dedup_ids, len(calls), "dedup_ids")
        if not calls:
            return []
        runtime = get_runtime()
        placement = Placement(self.name, priority, None, partition_key)
        fresh = iter(child_ids(fn, given.count(None)))
        ids = [workflow_id or next(fresh) for workflow_id in given]
        entries = batch_entries(runtime, fn, calls, ids, dedups, placement, placed.delay)
        if runtime.telemetry is not None:  # the workers' spans continue the caller's trace
            traced = runtime.telemetry.trace_context()
            entries = [(replace(r, trace_context=traced), p) for r, p in entries]
        reject = if_duplicate == "reject"
        outcomes = runtime.store.enqueue_workflows(entries, reject_duplicates=reject)
        for index, (workflow_id, dedup_id, first) in enumerate(
            zip(ids, dedups, outcomes, strict=True)
        ):
            if reject and dedup_id is not None and first not in (None, workflow_id):
                raise DuplicateWorkflow(self.name, dedup_id, str(first), first in ids[:index])
        return [
            WorkflowHandle(first or workflow_id)
            for workflow_id, first in zip(ids, outcomes, strict=True)
        ]

    async def enqueue_many_async(
        self,
        fn: Callable[..., Any],
        args_list: Iterable[tuple[Any, ...]],
        /,
        *,
        workflow_ids: Sequence[str | None] | None = None,
        dedup_ids: Sequence[str | None] | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        priority: int = 0,
        delay: float | None = None,
        partition_key: str | None = None,
    ) -> list[WorkflowHandle[Any]]:
        """`enqueue_many` for ``async`` code: the same arguments, without blocking the
        event loop while the batch is written."""
        call = functools.partial(
            self.enqueue_many,
            fn,
            list(args_list),  # read in the caller's thread, as a generator expects
            workflow_ids=workflow_ids,
            dedup_ids=dedup_ids,
            if_duplicate=if_duplicate,
            priority=priority,
            delay=delay,
            partition_key=partition_key,
        )
        return await asyncio.to_thread(call)

    def placed(
        self,
        *,
        workflow_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        delay: float | None = None,
        partition_key: str | None = None,
    ) -> PlacedQueue:
        """Where and how the next enqueue waits: its id, priority (lower first), dedup
        id, delay in seconds, partition key (required on a partitioned queue)."""
        return PlacedQueue(
            self, workflow_id, priority, dedup_id, if_duplicate, delay, partition_key
        )


class PlacedQueue:
    """A queue with the placement of one enqueue (see `Queue.placed`)."""

    def __init__(
        self,
        queue: Queue,
        workflow_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        if_duplicate: Literal["return", "reject"] = "return",
        delay: float | None = None,
        partition_key: str | None = None,
        debounce: bool = False,
    ) -> None:
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise AutodurableError(f"priority must be a whole number, not {priority!r}")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            raise AutodurableError(f"delay must be seconds >= 0, not {delay!r}")
        if if_duplicate not in ("return", "reject"):
            raise AutodurableError(
                f"if_duplicate must be 'return' or 'reject', not {if_duplicate!r}"
            )
        queue.declare()  # its limits as configured (partitioned or not) before it is used
        if queue.spec.partitioned and partition_key is None:
            raise AutodurableError(
                f"queue {queue.name!r} is partitioned: give each enqueue a partition_key "
                "(the tenant or user its limits apply to)"
            )
        for what, text in (("workflow_id", workflow_id), ("dedup_id", dedup_id)):
            if text is not None and (not isinstance(text, str) or not text):
                raise AutodurableError(f"{what} must be a non-empty string, not {text!r}")
        self.queue = queue
        self.workflow_id = workflow_id
        self.priority = priority
        self.dedup_id = dedup_id
        self.if_duplicate = if_duplicate
        self.delay = delay
        self.partition_key = partition_key
        self.debounce = debounce

    def enqueue(self, fn: Any, /, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Record workflow ``fn(*args, **kwargs)`` waiting in the queue (every keyword is
        the workflow's); its handle."""
        if kind_of(fn) != "workflow":
            raise TypeError(
                f"enqueue() takes a function decorated with @autodurable.workflow, not {fn!r}"
            )
        runtime = get_runtime()
        name = workflow_name(fn)
        inputs = {"args": list(args), "kwargs": kwargs}
        try:
            encoded = runtime.codec.encode(inputs, f"the inputs of workflow {name!r}")
        except EncodeError as exc:
            raise AutodurableError(
                f"{exc}. An enqueued workflow runs in another process: pass it plain data"
            ) from None
        workflow_id = self.workflow_id or new_child_id(fn)
        now = time.time()
        version = version_for(runtime.settings, fn.__wrapped__)
        timeout = getattr(fn, "_self_autodurable_timeout", None)
        record = WorkflowRecord(
            workflow_id, name, ENQUEUED, encoded, None, None, None, now, now, version,
            now + timeout if timeout else None,
            trace_context=_trace_context(runtime),
        )  # fmt: skip
        placement = Placement(
            self.queue.name,
            self.priority,
            self.dedup_id,
            self.partition_key,
            None if not self.delay else now + self.delay,
            self.debounce,
        )
        first = runtime.store.enqueue_workflow(record, placement)
        if first is not None and first != workflow_id and self.if_duplicate == "reject":
            assert self.dedup_id is not None
            raise DuplicateWorkflow(self.queue.name, self.dedup_id, first)
        return WorkflowHandle(first or workflow_id)


_DEFAULTS = {"priority": 0, "if_duplicate": "return"}


def _trace_context(runtime: Runtime) -> str | None:
    """The caller's trace context, recorded for the worker's span (telemetry on only)."""
    return runtime.telemetry.trace_context() if runtime.telemetry is not None else None


def _check_no_clash(fn: Any, placement: dict[str, Any]) -> None:
    """Refuse a placement keyword that `fn` also takes: which one was meant is unclear."""
    given = [name for name, value in placement.items() if value != _DEFAULTS.get(name)]
    if not given:
        return  # the usual call: no signature to read (a tenth of an enqueue's time)
    try:
        parameters = inspect.signature(getattr(fn, "__wrapped__", fn)).parameters
    except (TypeError, ValueError):
        return
    for name in given:
        if name in parameters:
            raise TypeError(
                f"{name}= is both a parameter of {workflow_name(fn)} and a placement keyword "
                f"of Queue.enqueue; pass the queue's through queue.placed({name}=...) and the "
                f"workflow's to its enqueue: queue.placed(...).enqueue(fn, {name}=...)"
            )


def map_workflows(
    fn: Callable[[Any], R], items: Iterable[Any], *, queue: Queue | None = None
) -> list[R]:
    """Run workflow ``fn(item)`` for every item and return their results in order.

    Fan-out and fan-in: each item becomes a workflow of its own, enqueued on
    `queue` (started by its workers, within its limits) or, without one,
    started here in the background. Called from workflow code, the children's
    ids are recorded, so after a crash finished children are not started again
    (their results are read from the store) and a dead worker's unfinished
    children are run by another. The first child that failed raises its error,
    once all have ended.
    """
    if queue is None:
        handles = [start(fn, item) for item in items]
    else:  # one batch: one transaction, and the children's ids recorded as one step
        handles = queue.enqueue_many(fn, [(item,) for item in items])
    outcomes: list[tuple[bool, Any]] = []
    for handle in handles:
        try:
            outcomes.append((True, handle.result()))
        except Exception as exc:  # every child ends before the first failure is raised
            outcomes.append((False, exc))
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


_DEBOUNCE_QUEUE = "autodurable.debounce"


def debounce(
    key: str,
    period: float,
    fn: Callable[..., R],
    /,
    *args: Any,
    queue: Queue | None = None,
    **kwargs: Any,
) -> WorkflowHandle[R]:
    """Run workflow ``fn(*args, **kwargs)`` once, `period` seconds after the last call
    with the same `key`, with the arguments of that last call.

    A burst of calls (a user typing, a sensor chattering) makes one run: each
    call within the period replaces the waiting run's arguments and moves its
    start to `period` seconds from now; all return the same handle. A call
    after the run started begins the next burst. The runs wait in `queue` (a
    queue of their own, without limits, by default) and are started by its
    workers (``recover(watch=True)`` or ``autodurable worker``).
    """
    if not isinstance(key, str) or not key:
        raise AutodurableError(f"a debounce key must be a non-empty string, not {key!r}")
    if not isinstance(period, int | float) or isinstance(period, bool) or period <= 0:
        raise AutodurableError(f"a debounce period must be seconds > 0, not {period!r}")
    with _lock:
        default = _declared.get(_DEBOUNCE_QUEUE)
    target = queue or default or Queue(_DEBOUNCE_QUEUE)
    placed = PlacedQueue(target, dedup_id=key, delay=period, debounce=True)
    return placed.enqueue(fn, *args, **kwargs)


def configured_spec(spec: QueueSpec, configured: QueueSettings | None) -> QueueSpec:
    """`spec` with the limits that the configuration sets for its queue."""
    if configured is None:
        return spec
    changes: dict[str, Any] = {
        key: value
        for key, value in configured.as_dict().items()
        if key != "rate"
        if value is not None
    }
    if configured.rate is not None:
        changes["rate_limit"], changes["rate_period"] = parse_rate(configured.rate)
    return replace(spec, **changes)


def declared_queues() -> list[Queue]:
    """The queues declared in this process, and those only the configuration declares."""
    configured = get_runtime().settings.queues
    with _lock:
        missing = [name for name in configured if name not in _declared]
    for name in missing:
        Queue(name)
    with _lock:
        return list(_declared.values())
