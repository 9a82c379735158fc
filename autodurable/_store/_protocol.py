"""The `Store` protocol: everything the runtime asks of a database.

Invariants every backend keeps (tests/test_store_conformance.py checks them on
every backend):
- `record_step` is one statement round trip and is durable when it returns; it
  is fenced: it writes only while the caller's executor owns the workflow, and
  raises `OwnershipLost` otherwise. A step written before a claim is in the
  history the claim returns; one attempted after it is refused.
- `claim_workflow` is atomic: of two executors claiming the same unfinished
  workflow, at most one gets it, and it receives the whole step history in the
  same call.
- Liveness: an owner on this host is alive while its process runs (the
  `Liveness` object decides); an owner on another host while its heartbeat,
  measured by the store's clock, is younger than the lease.
- Driver exceptions never leave a backend: they become `StoreError` with a
  message that says what to do.
- Timestamps are seconds since the epoch (float), as `time.time()` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
RETRYING = "retrying"  # a step whose attempts so far failed; more will follow
UNRECORDED = "unrecorded"  # a step that ran but whose result could not be recorded
FINISHED_STATUSES = frozenset({SUCCEEDED, FAILED})


@dataclass(slots=True)
class StepRecord:
    """One row of the steps table: the outcome of one step of one workflow."""

    position: int
    name: str
    status: str
    output: str | None
    error: str | None
    attempts: int
    started_at: float
    finished_at: float | None
    executor_id: str | None = None  # who recorded it (filled when read)


@dataclass(slots=True)
class WorkflowRecord:
    """One row of the workflows table."""

    workflow_id: str
    name: str
    status: str
    inputs: str
    output: str | None
    error: str | None
    executor_id: str | None
    created_at: float
    updated_at: float


@dataclass(slots=True)
class ExecutorRecord:
    """A process that runs workflows; its liveness decides who may adopt its work."""

    executor_id: str
    hostname: str
    pid: int
    process_started: str | None
    started_at: float
    heartbeat_at: float
    # Seconds since the last heartbeat by the store's clock (filled when read), so
    # that leases do not depend on the clocks of two machines agreeing.
    heartbeat_age: float | None = None


@dataclass(slots=True)
class Claim:
    """The outcome of `claim_workflow`."""

    workflow: WorkflowRecord
    claimed: bool
    steps: list[StepRecord]
    owner: ExecutorRecord | None


class Liveness(Protocol):
    """The executor asking, and its rule for telling whether another one is alive."""

    @property
    def executor_id(self) -> str:
        """The id of the executor that claims or adopts."""

    @property
    def hostname(self) -> str:
        """Its host: owners on the same host are judged by their process, not the lease."""

    @property
    def lease_seconds(self) -> float:
        """How old a heartbeat of an owner on another host may be before it counts as dead."""

    def alive(self, executor: ExecutorRecord) -> bool:
        """Whether `executor` may still be running its workflows."""


class Subscription(Protocol):
    """Wake-ups about workflows; a context manager that unsubscribes on exit."""

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when woken by a change, False on timeout."""

    def close(self) -> None:
        """Stop receiving wake-ups."""

    def __enter__(self) -> Subscription: ...

    def __exit__(self, *exc: object) -> None: ...


class Store(Protocol):
    """What a state backend provides. One implementation per module."""

    url: str  # for messages: a password in it is masked
    # True when subscriptions are woken by the database; False when waiting
    # means polling (the caller then keeps its poll interval short).
    notifies: bool

    def register_executor(self, executor: ExecutorRecord) -> None:
        """Insert (or refresh) the row of a live executor; its heartbeat is now."""

    def heartbeat(self, executor_id: str) -> bool:
        """Renew an executor's lease, stamped with the store's clock.

        False when the executor's row is gone (deleted by hand, say): the
        executor must register again, or its workflows look orphaned.
        """

    def retire_executor(self, executor_id: str) -> None:
        """Release the executor's unfinished workflows and delete its row."""

    def create_workflow(self, record: WorkflowRecord) -> bool:
        """Insert a new workflow owned by `record.executor_id`; False if the id exists."""

    def claim_workflow(self, workflow_id: str, executor: Liveness) -> Claim | None:
        """Take ownership of an unfinished workflow unless a live executor holds it.

        Returns None when the workflow does not exist. When claimed (or when the
        workflow is finished) the claim carries the workflow's step history.
        """

    def adoptable_workflows(
        self, executor: Liveness, limit: int
    ) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows `executor` may adopt, oldest first: unowned, or whose owner is dead.

        A read: adopting one is a `claim_workflow`, which may still lose a race.
        """

    def record_step(self, workflow_id: str, executor_id: str, step: StepRecord) -> None:
        """Insert or replace one step's outcome (one round trip, fenced)."""

    def finish_workflow(
        self,
        workflow_id: str,
        executor_id: str,
        status: str,
        output: str | None,
        error: str | None,
    ) -> None:
        """Record a workflow's final status (fenced)."""

    def release_workflow(self, workflow_id: str, executor_id: str) -> None:
        """Give up ownership of an unfinished workflow so that others may adopt it."""

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow's row, or None."""

    def list_workflows(
        self, status: str | None = None, limit: int = 100, name: str | None = None
    ) -> list[WorkflowRecord]:
        """Workflows, newest first, optionally of one status and one name."""

    def reopen_workflow(self, workflow_id: str) -> int:
        """Make a failed workflow pending again, forgetting the failure that ended it.

        The step that failed last (if the last recorded step failed) is removed,
        so a resumed run executes it again; earlier steps stay. Returns the
        number of recorded steps kept.
        """

    def list_steps(self, workflow_id: str) -> list[StepRecord]:
        """A workflow's steps in order."""

    def unfinished_workflows(self) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows with their owning executor's row (None if unowned or gone)."""

    def subscribe(self, workflow_id: str | None = None) -> Subscription:
        """Wake-ups when `workflow_id` finishes or is released; with None, when any is released.

        Subscribe, then check the state, then wait: a change between the check
        and the wait still wakes the waiter.
        """

    def close(self) -> None:
        """Release the connection(s)."""
