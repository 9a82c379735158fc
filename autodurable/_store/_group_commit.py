"""Group commit: step records written at the same moment by several threads share
one transaction (one commit on SQLite, one round trip and one WAL flush on
PostgreSQL).

The first writer to arrive leads: it writes its own record alone, exactly as
without this module (a workflow running alone pays nothing more). Writers that
arrive while a leader writes queue up; when the leader is done it hands the
lead to the first of them, who writes the whole queue in one batch
(`write_batch`), and so on. Each writer returns only when its own record is
written: durable before its workflow goes on.

Invariants:
- A record is written by exactly one call of `write_one` or `write_batch`,
  and its writer gets that call's outcome (the workflow's status, or the
  exception) for it alone: `write_batch` returns one outcome per record, and
  a failing record does not fail the others (the stores write a batch's
  records by the same fenced statements as one record, and write any record
  the batch could not settle again on its own).
- A leader never waits for anyone: it takes what is queued when it starts.
- Global mutable state: the queue and the lead, guarded by one lock per store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .._errors import OwnershipLost
from ._protocol import Outcome, StepRecord

R = TypeVar("R")  # what a writer hands in: one record's write
T = TypeVar("T")  # its outcome
# What the stores' step writers hand in: (workflow id, executor id, the step's record).
StepWrite = tuple[str, str, StepRecord]
__all__ = ["GroupCommit", "Outcome", "StepWrite", "settle_the_rest"]


class _Waiter(Generic[R, T]):
    __slots__ = ("leads", "outcome", "ready", "request")

    def __init__(self, request: R) -> None:
        self.request = request
        self.outcome: Outcome[T] | None = None
        self.ready = threading.Event()
        self.leads = False  # handed the lead instead of an outcome


class GroupCommit(Generic[R, T]):
    """Writes of one store: alone when nobody else writes, in batches when many do."""

    def __init__(
        self,
        write_one: Callable[[R], T],
        write_batch: Callable[[Sequence[R]], list[Outcome[T]]],
    ) -> None:
        self._write_one = write_one
        self._write_batch = write_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter[R, T]] = []
        self._leading = False

    def write(self, request: R) -> T:
        """Write `request` (alone or in a batch); its outcome, once it is durable."""
        with self._lock:
            if not self._leading:
                self._leading = True
                alone = True
            else:
                waiter: _Waiter[R, T] = _Waiter(request)
                self._queue.append(waiter)
                alone = False
        if alone:
            try:
                return self._write_one(request)
            finally:
                self._hand_over()
        waiter.ready.wait()
        if not waiter.leads:
            assert waiter.outcome is not None
            return waiter.outcome.get()
        with self._lock:
            batch, self._queue = self._queue, []
        outcomes = self._settled(batch)  # never raises: an error is its writers' outcome
        for other, outcome in zip(batch, outcomes, strict=True):
            other.outcome = outcome
            if other is not waiter:
                other.ready.set()
        self._hand_over()
        assert waiter.outcome is not None  # the leader is in its own batch
        return waiter.outcome.get()

    def _settled(self, batch: list[_Waiter[R, T]]) -> list[Outcome[T]]:
        """One outcome per waiter of `batch`, whatever happens (an error is theirs)."""
        requests = [waiter.request for waiter in batch]
        try:
            if len(requests) == 1:
                return [Outcome(self._write_one(requests[0]))]
            outcomes = self._write_batch(requests)
        except BaseException as exc:  # every writer of the batch gets it
            return [Outcome(error=exc) for _ in batch]
        if len(outcomes) != len(batch):  # pragma: no cover - a store's bug, said plainly
            error = RuntimeError(f"a batch of {len(batch)} writes gave {len(outcomes)} outcomes")
            return [Outcome(error=error) for _ in batch]
        return outcomes

    def _hand_over(self) -> None:
        """Give the lead to the first writer waiting, or give it up."""
        with self._lock:
            if self._queue:
                following = self._queue[0]
                following.leads = True
                following.ready.set()
            else:
                self._leading = False


def settle_the_rest(
    batch: Sequence[R], settled: Sequence[T | None], alone: Callable[..., T]
) -> list[Outcome[T]]:
    """The outcome of each request of a batch: what the shared write settled for it, or
    (None) its write again on its own, ``alone(*request)``, whose error is its writer's
    alone (`OwnershipLost` included)."""
    outcomes: list[Outcome[T]] = []
    for request, value in zip(batch, settled, strict=True):
        if value is not None:
            outcomes.append(Outcome(value))
            continue
        try:
            outcomes.append(Outcome(alone(*request)))  # type: ignore[misc]
        except (Exception, OwnershipLost) as exc:  # that writer's, not the batch's
            outcomes.append(Outcome(error=exc))
    return outcomes
