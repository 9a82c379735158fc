"""Enqueueing many workflows at once (`Queue.enqueue_many`): the records and their ids.

Invariants:
- A batch is written by one `enqueue_workflows` call of the store: one
  transaction, one commit, one notification, whatever its size; nothing of it
  is written when an input cannot be recorded or a duplicate is rejected.
- The items keep their order: each gets a creation time one microsecond after
  the previous one's, so that a worker takes equal priorities in the order
  given (a dequeue orders by priority, then creation time).
- Called from workflow code, the fresh ids of a batch are recorded as one step
  (``autodurable.enqueue_many:<workflow>``, whose argument is the count), so a
  replay enqueues nothing new and gets the same handles. A history recorded
  one child id at a time (``autodurable.start:<workflow>`` steps: `map` and
  loops of `enqueue` before batches existed) is replayed one id at a time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from .._core._app_versions import version_for
from .._core._context import current_run, workflow_code
from .._core._decorators import workflow_name
from .._core._options import EMPTY
from .._core._runtime import Runtime
from .._core._steps import call_step
from .._errors import AutodurableError, EncodeError
from .._store import ENQUEUED, Placement, WorkflowRecord
from ._launch import new_child_id

# Between the creation times of consecutive items of a batch: more than the
# resolution of a float of seconds since the epoch (2.4e-7 s), so the order holds.
TICK = 1e-6

Call = tuple[tuple[Any, ...], dict[str, Any]]


def calls_of(items: Iterable[Any]) -> list[Call]:
    """The (args, kwargs) of each item: a tuple of arguments, or an (args, kwargs) pair
    (a 2-tuple of a tuple and a dict)."""
    calls: list[Call] = []
    for index, item in enumerate(items):
        if not isinstance(item, tuple):
            raise TypeError(
                f"enqueue_many() takes an iterable of argument tuples or (args, kwargs) "
                f"pairs; item {index} is {item!r}: write ({item!r},) for one argument"
            )
        if len(item) == 2 and isinstance(item[0], tuple) and isinstance(item[1], dict):
            calls.append((item[0], item[1]))
        else:
            calls.append((item, {}))
    return calls


def per_item(values: Sequence[str | None] | None, count: int, what: str) -> list[str | None]:
    """`values` (one per item, each a non-empty string or None), or None for every item."""
    if values is None:
        return [None] * count
    listed = None if isinstance(values, str) else list(values)
    if listed is None or len(listed) != count:
        raise AutodurableError(
            f"{what} must be a sequence of one value per item ({count}), not {values!r}"
        )
    for value in listed:
        if value is not None and (not isinstance(value, str) or not value):
            raise AutodurableError(
                f"each of {what} must be a non-empty string or None, not {value!r}"
            )
    return listed


def child_ids(fn: Any, count: int) -> list[str]:
    """`count` fresh workflow ids; recorded as one step when called from workflow code."""
    fresh = [uuid.uuid4().hex for _ in range(count)]
    if count == 0 or workflow_code() is None:
        return fresh
    name = workflow_name(fn)
    run = current_run()
    if run is not None:
        upcoming = run.history.get(run.position + 1)
        if upcoming is not None and upcoming.name == f"autodurable.start:{name}":
            return [new_child_id(fn) for _ in range(count)]  # recorded one at a time
    recorded = call_step(lambda n: fresh, (count,), {}, f"autodurable.enqueue_many:{name}", EMPTY)
    if not isinstance(recorded, list) or len(recorded) != count:
        raise AutodurableError(
            f"the batch of {name!r} was recorded with another number of workflows "
            f"({recorded!r}); a workflow must enqueue the same batches on replay"
        )
    return [str(workflow_id) for workflow_id in recorded]


def batch_entries(
    runtime: Runtime,
    fn: Any,
    calls: list[Call],
    workflow_ids: list[str],
    dedup_ids: list[str | None],
    placement: Placement,
    delay: float | None,
) -> list[tuple[WorkflowRecord, Placement]]:
    """The records of a batch, waiting in `placement`'s queue (each with its dedup id),
    in order; the inputs are encoded before anything is written."""
    name = workflow_name(fn)
    inputs = []
    for index, (args, kwargs) in enumerate(calls):
        try:
            encoded = runtime.codec.encode(
                {"args": list(args), "kwargs": kwargs},
                f"the inputs of workflow {name!r} (item {index} of the batch)",
            )
        except EncodeError as exc:
            raise AutodurableError(
                f"{exc}. An enqueued workflow runs in another process: pass it plain data; "
                "nothing of the batch was enqueued"
            ) from None
        inputs.append(encoded)
    now = time.time()
    version = version_for(runtime.settings, fn.__wrapped__)
    timeout = getattr(fn, "_self_autodurable_timeout", None)
    entries = []
    for index, (encoded, workflow_id, dedup_id) in enumerate(
        zip(inputs, workflow_ids, dedup_ids, strict=True)
    ):
        created = now + index * TICK
        record = WorkflowRecord(
            workflow_id, name, ENQUEUED, encoded, None, None, None, created, created, version,
            created + timeout if timeout else None,
        )  # fmt: skip
        available = None if not delay else created + delay
        where = Placement(
            placement.queue, placement.priority, dedup_id, placement.partition_key, available
        )
        entries.append((record, where))
    return entries
