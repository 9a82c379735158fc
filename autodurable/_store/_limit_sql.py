"""The SQL of limits on APIs, written once for both dialects, and the rule of
`LimitStore.take_permits` (see `_limiting` for the invariants)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._limiting import Grant, LimitWait, PermitRequest
from ._protocol import EXECUTOR_COLUMNS, ExecutorRecord

if TYPE_CHECKING:
    from ._protocol import Liveness

_PERMIT_COLUMNS = (
    "permit_id, limit_key, executor_id, workflow_id, step, step_name, units, waited, acquired_at"
)


class LimitSQL:
    """The statements of `LimitStore` for one dialect: `p` the placeholder, `t` the
    table prefix, `age` the expression of a heartbeat's age by the store's clock."""

    def __init__(self, p: str, t: str = "", age: str = "") -> None:
        permits, executors = f"{t}limit_permits", f"{t}executors"
        columns = ", ".join(f"e.{c}" for c in EXECUTOR_COLUMNS.split(", "))
        self.age_is_parameter = not age  # SQLite: this host's clock is the store's
        self.holders = (
            f"SELECT l.permit_id, l.executor_id, {columns}, {age or p} - e.heartbeat_at "
            f"FROM {permits} l LEFT JOIN {executors} e ON e.executor_id = l.executor_id "
            f"WHERE l.limit_key = {p} AND l.released_at IS NULL"
        )
        self.window = (
            f"SELECT coalesce(sum(units), 0), min(acquired_at) FROM {permits} "
            f"WHERE limit_key = {p} AND acquired_at > {p}"
        )
        marks = ", ".join([p] * len(_PERMIT_COLUMNS.split(", ")))
        self.insert = f"INSERT INTO {permits} ({_PERMIT_COLUMNS}) VALUES ({marks})"
        self.release = (
            f"UPDATE {permits} SET released_at = {p} WHERE permit_id = {p} AND released_at IS NULL"
        )
        self.release_dead = (
            f"UPDATE {permits} SET released_at = {p} WHERE permit_id = {p} "
            f"AND limit_key = {p} AND released_at IS NULL"
        )
        self.waits = (
            f"SELECT step, step_name, limit_key, waited, acquired_at FROM {permits} "
            f"WHERE workflow_id = {p} ORDER BY acquired_at, limit_key"
        )


def take(
    sql: LimitSQL,
    request: PermitRequest,
    liveness: Liveness,
    now: float,
    fetch: Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]],
    execute: Callable[[str, tuple[Any, ...]], object],
) -> Grant:
    """The rule of `take_permits`, for both backends: run inside the transaction that
    serialises takers of the request's limits; `fetch` returns a statement's rows,
    `execute` runs one."""
    retry_at: float | None = None
    full = False
    for spec in request.limits:
        if spec.concurrency is not None:
            held = 0
            params = (now, spec.key) if sql.age_is_parameter else (spec.key,)
            for row in fetch(sql.holders, params):
                permit_id, owner, executor = row[0], row[1], row[2:]
                if owner == liveness.executor_id or (
                    executor[0] is not None
                    and liveness.alive(ExecutorRecord.from_row(executor, executor[-1]))
                ):
                    held += 1
                else:  # its process died holding it: the limit has that room again
                    execute(sql.release_dead, (now, permit_id, spec.key))
            full = full or held >= spec.concurrency
        if spec.rate_count is not None and spec.rate_period is not None:
            ((used, oldest),) = fetch(sql.window, (spec.key, now - spec.rate_period))
            if used and float(used) + spec.units > spec.rate_count:
                full = True
                if oldest is not None:  # the window has room again when its oldest leaves
                    free = float(oldest) + spec.rate_period
                    retry_at = free if retry_at is None else min(retry_at, free)
    if full:
        return Grant(False, retry_at)
    for spec in request.limits:
        execute(
            sql.insert,
            (
                request.permit_id,
                spec.key,
                request.executor_id,
                request.workflow_id,
                request.step,
                request.step_name,
                spec.units,
                request.waited,
                now,
            ),
        )
    return Grant(True)


def waits_of(rows: Sequence[Sequence[Any]]) -> list[LimitWait]:
    """`LimitWait`s from the rows of the waits statement."""
    return [
        LimitWait(str(step), name, key, float(waited), float(at))
        for step, name, key, waited, at in rows
    ]
