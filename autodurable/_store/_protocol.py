"""The `Store` protocol: everything the runtime asks of a database.

Invariants every backend keeps (tests/store/test_store_conformance.py checks them on
every backend):
- `record_step` is one statement round trip and is durable when it returns; it
  is fenced: it writes only while the caller's executor owns the workflow, and
  raises `OwnershipLost` otherwise. A step written before a claim is in the
  history the claim returns; one attempted after it is refused.
- `claim_workflow` is atomic: of two executors claiming the same unfinished
  workflow, at most one gets it, and it receives the whole step history in the
  same call; a claim that does not take the workflow (finished, or a live
  owner's) reads no history.
- Liveness: an owner on this host is alive while its process runs (the
  `Liveness` object decides); an owner on another host while its heartbeat,
  measured by the store's clock, is younger than the lease.
- Driver exceptions never leave a backend: they become `StoreError` with a
  message that says what to do.
- Timestamps are seconds since the epoch (float), as `time.time()` returns.
- A step is identified by its branch and its position in that branch ("" and
  1, 2, 3 ... for the workflow's own steps); `list_steps` and claims return
  every branch. Forking keeps the branches started before the fork's step.
- A step write also returns the workflow's status, so a cancellation is seen
  at the next step boundary without a read of its own. Cancelling keeps the
  owner (its fence still holds); a cancelled workflow is never claimed, and
  is pending again only through `reopen_workflow`.
- Consuming a message and recording the step that received it are one
  transaction, fenced by ownership: a message is consumed exactly once, by
  the owner. Messages are kept after they are consumed (their idempotency
  keys keep deduplicating) until their workflow is deleted.
- Appending to a stream and recording the step that wrote it are one
  transaction, fenced by ownership (`_stream_sql`); forking, rewinding and
  deleting a workflow copy, cut and delete its stream values with its steps.
- Cancelling, releasing, reopening, sending a message, setting an event and
  writing to a stream wake the subscribers of the workflow (and, for releases
  and reopens, the subscribers of None, the adopters).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from .._records import Record, fields_of
from ._large import LargeValueStore
from ._limiting import LimitStore
from ._queueing import QueueStore
from ._streams import StreamStore

PENDING = "pending"
POSTGRES_SCHEMES = ("postgresql", "postgres")  # the URL schemes of a PostgreSQL store
POSTGRES_EXTRA = (
    "PostgreSQL support needs the psycopg driver and its pool: pip install 'autodurable[postgres]'"
)
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"  # a workflow stopped by an operator or its deadline; resumable
RETRYING = "retrying"  # a step whose attempts so far failed; more will follow
UNRECORDED = "unrecorded"  # a step that ran but whose result could not be recorded
WAITING = "waiting"  # a recv step waiting for a message; its output is its deadline
TIMED_OUT = "timed_out"  # a recv step whose deadline passed without a message
ENQUEUED = "enqueued"  # a workflow waiting in a queue for a worker
DELAYED = "delayed"  # a workflow waiting in a queue until its delay has passed
# Ended workflows are never claimed or run; `reopen_workflow` makes failed and
# cancelled ones pending again.
ENDED_STATUSES = (SUCCEEDED, FAILED, CANCELLED)  # the finished ones, in the order shown
FINISHED_STATUSES = frozenset(ENDED_STATUSES)
QUEUED_STATUSES = (ENQUEUED, DELAYED)  # only a worker's dequeue makes them pending
WORKFLOW_STATUSES = (ENQUEUED, DELAYED, PENDING, SUCCEEDED, FAILED, CANCELLED)
# The statuses above, as a type for the public API.
WorkflowStatus = Literal["enqueued", "delayed", "pending", "succeeded", "failed", "cancelled"]
WorkflowStatus.__doc__ = (
    "A workflow's status: enqueued or delayed (waiting in a queue for a worker), pending "
    "(running, or waiting to run), succeeded, failed, or cancelled (by an operator or its "
    "deadline; resumable)."
)
DEFAULT_TOPIC = ""  # the topic column's value for messages sent without a topic


class StepRecord(Record):
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
    # Where it was called: "" in the workflow's own code, else the branch's path
    # ("3": the work the workflow started at its position 3; "3.2": the work
    # that branch started at its position 2). `position` counts within it.
    branch: str = ""
    # The digest of the arguments it was called with (`_watch.digest` of their
    # `arguments_shape`); None in rows recorded before it was kept, and for the
    # steps that take none of the program's (receives, events).
    arguments: str | None = None

    def outcome(self) -> tuple[Any, ...]:
        """The values a step write sets, in column order: all but the writer, the branch
        and the arguments' digest (which writes that have it give after the branch)."""
        return (
            self.position,
            self.name,
            self.status,
            self.output,
            self.error,
            self.attempts,
            self.started_at,
            self.finished_at,
        )


class WorkflowRecord(Record):
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
    # The version of the code that started it (None: any version may run it).
    app_version: str | None = None
    deadline: float | None = None  # when it is cancelled if it has not ended
    forked_from: str | None = None  # the workflow it was forked from
    forked_at_step: int | None = None  # the first step it ran anew
    # OpenTelemetry trace context (JSON: the starter's W3C carrier, the span of the
    # latest execution); None unless telemetry is on (see autodurable._core._otel).
    trace_context: str | None = None

    def values(self) -> tuple[Any, ...]:
        """The values of the row, in the order of the columns (every backend's order)."""
        return (
            self.workflow_id,
            self.name,
            self.status,
            self.inputs,
            self.output,
            self.error,
            self.executor_id,
            self.created_at,
            self.updated_at,
            self.app_version,
            self.deadline,
            self.forked_from,
            self.forked_at_step,
            self.trace_context,
        )


class MessageRecord(Record):
    """One message sent to a workflow (kept after it is consumed)."""

    message_id: int  # increasing in the order messages are stored
    workflow_id: str
    topic: str  # DEFAULT_TOPIC for messages sent without one
    payload: str  # the message, encoded by the codec
    idempotency_key: str | None
    sent_at: float
    consumed_at: float | None
    # The position of the recv step that consumed it (in its branch, for a recv in
    # work the workflow runs concurrently: the step row with this message as output).
    consumed_at_step: int | None


class Received(Record, frozen=True):
    """The outcome of one `Store.receive_message` look."""

    status: str  # the workflow's status: anything but pending means stop, nothing was done
    payload: str | None = None  # the message consumed (and recorded as the step's output)
    timed_out: bool = False  # no message before the deadline: recorded as timed out


class ExecutorRecord(Record):
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

    @classmethod
    def from_row(cls, row: Sequence[Any], heartbeat_age: float | None) -> ExecutorRecord:
        """An executor from its columns (`EXECUTOR_COLUMNS`, in order) and its age."""
        executor_id, hostname, pid, process_started, started_at, heartbeat_at = row[:6]
        return cls(
            executor_id, hostname, pid, process_started, started_at, heartbeat_at, heartbeat_age
        )


class Claim(Record):
    """The outcome of `claim_workflow`."""

    workflow: WorkflowRecord
    claimed: bool
    steps: list[StepRecord]
    owner: ExecutorRecord | None


class WorkflowFilter(Record, frozen=True):
    """Which workflows an operator's listing or batch action is about (`find_workflows`).

    Every field given narrows the selection; None means any. `statuses`: one of
    them; `name`: the exact name; `name_like`: a SQL LIKE pattern on the name
    with ``\\`` as escape character; `created_after` / `created_before`: bounds
    on the creation time (inclusive / exclusive); `app_version`: the recorded
    version, exactly; `error_type`: the recorded exception's type, matched
    against its ``"module:qualname"``, its ``"module.qualname"`` or its
    qualname alone (``"ValueError"`` matches ``"builtins:ValueError"``);
    `queue_name`: the queue it was enqueued on.
    """

    statuses: tuple[str, ...] | None = None
    name: str | None = None
    name_like: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    app_version: str | None = None
    error_type: str | None = None
    queue_name: str | None = None

    @classmethod
    def listing(
        cls,
        status: str | Collection[str] | None = None,
        name: str | None = None,
        name_like: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> WorkflowFilter:
        """The filter of `OperatorStore.list_workflows`'s arguments."""
        statuses = None
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
        return cls(statuses, name, name_like, created_after, created_before)

    def conditions(self, mark: str, error_match: str) -> tuple[list[str], list[Any]]:
        """The SQL conditions (to join with AND) and their parameters, in order.

        `mark` is the backend's placeholder; `error_match` its condition on the
        recorded error's type, with three placeholders for `error_type` (the
        JSON functions differ between dialects).
        """
        conditions: list[str] = []
        params: list[Any] = []
        if self.statuses is not None:  # none at all matches nothing
            marks = ", ".join([mark] * len(self.statuses)) or "NULL"
            conditions.append(f"status IN ({marks})")
            params += self.statuses
        for condition, value in (
            (f"name = {mark}", self.name),
            (f"name LIKE {mark} ESCAPE '\\'", self.name_like),
            (f"created_at >= {mark}", self.created_after),
            (f"created_at < {mark}", self.created_before),
            (f"app_version = {mark}", self.app_version),
            (f"queue_name = {mark}", self.queue_name),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        if self.error_type is not None:
            conditions.append(error_match)
            params += [self.error_type] * 3
        return conditions, params


def _columns(record: type, *, but: tuple[str, ...] = ()) -> str:
    return ", ".join(name for name in fields_of(record) if name not in but)


# The columns of each table, in the order of its record's fields: a row read with
# them makes the record by position (``WorkflowRecord(*row)``).
WORKFLOW_COLUMNS = _columns(WorkflowRecord)
STEP_COLUMNS = _columns(StepRecord)
MESSAGE_COLUMNS = _columns(MessageRecord)
EXECUTOR_COLUMNS = _columns(ExecutorRecord, but=("heartbeat_age",))


T = TypeVar("T")


class Outcome(Generic[T]):
    """A record's result, or the exception its write raised."""

    __slots__ = ("error", "value")

    def __init__(self, value: T | None = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    def get(self) -> T:
        """The value, or the write's exception raised again."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


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

    async def wait_async(self, timeout: float) -> bool:
        """`wait` on the running event loop, holding no thread while it waits."""

    def took_release(self) -> bool:
        """Whether a release woke this subscription (to any workflow: for None) since the
        last call, as opposed to an enqueue only; reading it resets it."""

    def wake(self, released: bool = True) -> None:
        """Wake its waiter from this process (`released`: as a release would)."""

    def close(self) -> None:
        """Stop receiving wake-ups."""

    def __enter__(self) -> Subscription: ...

    def __exit__(self, *exc: object) -> None: ...


class RunStore(Protocol):
    """What executing workflows needs from a backend (the core, recovery, the launcher)."""

    url: str  # for messages: a password in it is masked
    # True when subscriptions are woken by the database; False when waiting
    # means polling (the caller then keeps its poll interval short).
    notifies: bool
    # True when step records written by several threads at once share a commit
    # (`_group_commit`): worth handing a write to another thread to let it. A store
    # may also write the records of an event loop's async steps on the loop itself:
    # ``async def record_steps_async(writes)``, `record_steps` awaited (PostgreSQL,
    # `_postgres_async`); the core looks for it.
    shares_commits: bool

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

    def claim_workflow(
        self, workflow_id: str, executor: Liveness, app_version: str | None = None
    ) -> Claim | None:
        """Take ownership of a pending workflow unless a live executor holds it.

        Returns None when the workflow does not exist. Only a claimed workflow's
        claim carries its step history (a finished one's caller needs only its
        record, however many steps it has). A claimed workflow without a
        version gets `app_version`.
        """

    def adoptable_workflows(
        self, executor: Liveness, limit: int
    ) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows `executor` may adopt, oldest first: unowned, or whose owner is dead.

        A read: adopting one is a `claim_workflow`, which may still lose a race.
        """

    def record_step(self, workflow_id: str, executor_id: str, step: StepRecord) -> str:
        """Insert or replace one step's outcome (one round trip, fenced).

        Returns the workflow's status as of the write: `CANCELLED` tells the
        executor to stop at this step boundary (the step is recorded).
        """

    def record_steps(self, writes: Sequence[tuple[str, str, StepRecord]]) -> list[Outcome[str]]:
        """Several `record_step` writes (workflow id, executor id, record) in one
        transaction where they can share one: each write's own outcome (its
        status, or the error its write alone raised), a failing row failing no other.
        """

    def finish_workflow(
        self,
        workflow_id: str,
        executor_id: str,
        status: str,
        output: str | None,
        error: str | None,
    ) -> str:
        """Record a pending workflow's final status (fenced); returns the status it has after.

        That is `status`, or `CANCELLED` when it was cancelled before (nothing
        is written then). Raises `OwnershipLost` when the executor does not own it.
        """

    def release_workflow(self, workflow_id: str, executor_id: str) -> None:
        """Give up ownership of a pending or cancelled workflow (others may adopt a pending one)."""

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow's row, or None."""

    def set_trace_context(self, workflow_id: str, executor_id: str, trace_context: str) -> None:
        """Replace the trace context of a workflow `executor_id` owns (telemetry only;
        nothing is written for one it does not own)."""

    def cancel_workflow(self, workflow_id: str, error: str) -> str | None:
        """Mark a pending workflow cancelled, with `error` (the encoded reason) as its error.

        The owner is kept: a running executor learns of it from its next step
        write, finishes nothing and stops. Wakes the workflow's subscribers.
        Returns the status after (unchanged when it had ended already), or
        None when there is no such workflow.
        """

    def send_message(
        self,
        workflow_id: str,
        topic: str,
        payload: str,
        idempotency_key: str | None,
        sent_at: float,
    ) -> bool:
        """Store a message for `workflow_id` (which need not exist yet); wakes its subscribers.

        False when a message with the same idempotency key was stored for that
        workflow before (nothing is changed).
        """

    def receive_message(
        self,
        workflow_id: str,
        executor_id: str,
        position: int,
        name: str,
        topic: str,
        deadline: float,
        first: bool,
        branch: str = "",
        now: float | None = None,
    ) -> Received:
        """One look for a message on `topic`, as the recv step at `position` of `branch`.

        One transaction. `branch` is "" for a recv in the workflow's own code,
        else the path of the work it runs concurrently (`StepRecord.branch`).

        Fenced (raises `OwnershipLost` when the executor does not own the
        workflow); does nothing when the workflow is not pending. Otherwise the
        oldest unconsumed message is consumed and recorded as the step's
        output; with none, when `deadline` has passed the step is recorded as
        `TIMED_OUT` (`now` is the time to judge it by: by default this
        machine's; the runtime passes its clock's), and on the `first` look it
        is recorded as `WAITING` with
        the deadline as its output, so that a resumed run waits only for the
        rest.
        """

    def set_event(
        self, workflow_id: str, executor_id: str, key: str, value: str, step: StepRecord
    ) -> str:
        """Set the workflow's event `key` and record `step` (in its branch): one fenced transaction.

        Wakes the workflow's subscribers; returns its status, as `record_step` does.
        """

    def get_event(self, workflow_id: str, key: str) -> str | None:
        """The value of a workflow's event, or None when it is not set."""

    def subscribe(self, workflow_id: str | None = None) -> Subscription:
        """Wake-ups about `workflow_id` (finished, released, cancelled, a message, an event).

        With None: when any workflow is released or reopened (for adopters).
        Subscribe, then check the state, then wait: a change between the check
        and the wait still wakes the waiter (where the store notifies; stores
        that do not may still wake waiters of the same process).
        """

    def close(self) -> None:
        """Release the connection(s)."""


class OperatorStore(Protocol):
    """What operating stored workflows needs (operations, the CLI, and tests that inspect)."""

    def list_workflows(
        self,
        status: str | Collection[str] | None = None,
        limit: int = 100,
        name: str | None = None,
        *,
        name_like: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        offset: int = 0,
    ) -> list[WorkflowRecord]:
        """Workflows, newest first (then by id), filtered by every argument given.

        `status`: one status or several; `name`: the exact name; `name_like`: a
        SQL LIKE pattern on the name with ``\\`` as escape character;
        `created_after` / `created_before`: bounds on the creation time
        (inclusive / exclusive); `offset` rows are skipped, then `limit` returned.
        """

    def find_workflows(
        self, where: WorkflowFilter, limit: int, offset: int = 0
    ) -> list[WorkflowRecord]:
        """Workflows that match `where`, newest first (then by id): `offset` rows are
        skipped, then `limit` returned. Parameterised SQL on every backend; a recorded
        error that is not a JSON object matches no `error_type`."""

    def reopen_workflow(
        self, workflow_id: str, *, app_version: str | None = None, unpin: bool = False
    ) -> int | None:
        """Make a failed or cancelled workflow pending and unowned again; wakes the adopters.

        Its output, error and deadline are cleared. The step that failed last
        (if the last recorded step of the workflow's own code failed) is
        removed, so a resumed run executes it again; earlier steps stay.
        `app_version` replaces its version, and `unpin` clears it (any version
        may run it); otherwise it is kept. Returns the number of recorded steps
        kept, or None when the workflow is neither failed nor cancelled (nothing
        is changed).
        """

    def fork_workflow(
        self, source_id: str, record: WorkflowRecord, from_position: int
    ) -> int | None:
        """Create `record` with copies of `source_id`'s steps before `from_position`.

        Those are its own steps before that position and the steps of the
        branches it started before it (whose path begins with a smaller number).

        One transaction; the copies keep their outcomes, attempts, times and
        executors. Wakes the adopters when `record` is unowned. Returns the
        number of steps copied, or None when `record.workflow_id` exists already
        (nothing is changed).
        """

    def delete_workflows(self, workflow_ids: Sequence[str]) -> int:
        """Delete workflows with their steps, messages, events and streams; returns how many
        existed."""

    def rewind_workflow(self, workflow_id: str, to_position: int) -> int | None:
        """Make an ended workflow pending and unowned again from its step `to_position`.

        Its own steps from that position on, and the steps of the branches it
        started there or later, are deleted; the others stay. Its output, error
        and deadline are cleared, its version kept; the adopters are woken.
        Returns the number of steps kept, or None when the workflow is not ended
        (nothing is changed).
        """

    def set_workflow_version(
        self, workflow_id: str, app_version: str, expected: str | None
    ) -> bool:
        """Record `app_version` on a pending (or queued) workflow whose version is still
        `expected`; whether it was changed."""

    def ended_workflows(self, before: float, statuses: Collection[str], limit: int) -> list[str]:
        """Ids of workflows in `statuses` last updated before `before`, oldest first."""

    def delete_orphan_messages(self, before: float) -> int:
        """Delete messages sent before `before` to workflow ids that do not exist; how many."""

    def list_steps(self, workflow_id: str) -> list[StepRecord]:
        """A workflow's steps in order: by the position in the workflow's own code where
        each was called or its branch was started, then by branch and position."""

    def unfinished_workflows(self) -> list[tuple[WorkflowRecord, ExecutorRecord | None]]:
        """Pending workflows with their owning executor's row (None if unowned or gone)."""

    def get_executor(self, executor_id: str) -> ExecutorRecord | None:
        """One executor's row (with its heartbeat age), or None."""

    # -- messages and events ---------------------------------------------------------

    def list_messages(self, workflow_id: str) -> list[MessageRecord]:
        """The messages sent to a workflow, consumed or not, in the order they were stored."""

    def list_events(self, workflow_id: str) -> dict[str, str]:
        """Every event a workflow has set, by key."""


class Store(
    RunStore, OperatorStore, QueueStore, LimitStore, StreamStore, LargeValueStore, Protocol
):
    """What a state backend provides: both sides. One implementation per module."""
