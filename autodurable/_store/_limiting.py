"""What limits on APIs need from a backend: the records and the `LimitStore` protocol.

A permit is one row of ``limit_permits`` per (step attempt, limit): held from
when it is taken until it is returned (the SQL and the rule are in `_limit_sql`).
Invariants every backend keeps (tests/store/test_store_limits.py checks them on
every backend):
- `take_permits` is atomic across processes and machines: all of a request's
  permits are taken in one transaction that serialises takers of the same
  limits, or none is; so a limit's concurrency (permits held at once) and rate
  (units taken in any window of its period) hold whatever the number of takers.
- A permit held by an executor that is not alive (by the taker's `Liveness`:
  at once on its own host, after its lease elsewhere) is returned by the next
  taker that finds the limit full; it still counts in the rate window, since
  its call was made.
- A request whose units alone exceed a rate's count is let through when that
  window is empty (it could never pass otherwise), and only then.
- Rows stay while their workflow does (they are how long each step waited):
  `delete_workflows` deletes them with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._records import Record

if TYPE_CHECKING:
    from ._protocol import Liveness


class LimitSpec(Record, frozen=True):
    """One limit a step attempt must fit in. None means no limit of that kind."""

    key: str  # as configured: "openai.*", "stripe.Charge.create"
    concurrency: int | None = None  # permits held at once, by every process together
    rate_count: int | None = None  # units taken per `rate_period` seconds
    rate_period: float | None = None
    units: float = 1.0  # what this attempt counts for in the rate (tokens, say)


class PermitRequest(Record, frozen=True):
    """The permits one step attempt asks for, one per limit it matches."""

    permit_id: str
    executor_id: str
    workflow_id: str
    step: str  # the step's position ("3"), or its path in concurrent work ("3.1")
    step_name: str
    limits: tuple[LimitSpec, ...]
    waited: float = 0.0  # seconds waited before this try: recorded with the permits


class Grant(Record, frozen=True):
    """The outcome of one try: taken, or when to try again (None: at a release)."""

    granted: bool
    retry_at: float | None = None


class LimitWait(Record, frozen=True):
    """What one step attempt waited for: how `workflows show` explains a slow step."""

    step: str
    step_name: str
    key: str
    waited: float
    acquired_at: float


class LimitStore(Protocol):
    """The limits side of a store."""

    def take_permits(self, request: PermitRequest, liveness: Liveness) -> Grant:
        """Take every permit of `request` if all its limits have room, else none."""

    def return_permits(self, permit_id: str) -> None:
        """Return the permits taken under `permit_id` (the rate window keeps counting them)."""

    def limit_waits(self, workflow_id: str) -> list[LimitWait]:
        """The permits the workflow's steps took, in the order they were taken."""
