"""The SQL of queues, written once for both dialects: only the placeholder, the
null-safe comparison and the table prefix differ (`QueueSQL`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._records import replace
from ._protocol import DELAYED, ENQUEUED, PENDING, WORKFLOW_COLUMNS, WorkflowRecord
from ._queueing import (
    QUEUE_COLUMNS,
    SCHEDULE_COLUMNS,
    Dequeued,
    Placement,
    QueueSpec,
    QueueStats,
)

_CREATED = WORKFLOW_COLUMNS.split(", ").index("created_at")
INSERT_COLUMNS = f"{WORKFLOW_COLUMNS}, queue_name, priority, dedup_id, partition_key, available_at"


class QueueSQL:
    """The statements of `QueueStore` for one dialect.

    `p` is the placeholder (``?`` or ``%s``); `same` the null-safe equality
    (``IS`` in SQLite, ``IS NOT DISTINCT FROM`` in PostgreSQL); `t` the table
    prefix (``""`` or ``"schema".``); `lock_rows` what locks the rows a dequeue
    selects (PostgreSQL's ``FOR UPDATE SKIP LOCKED``; SQLite locks the file).
    """

    def __init__(self, p: str, same: str, t: str = "", lock_rows: str = "") -> None:
        w = f"{t}workflows"
        waiting = f"status IN ('{ENQUEUED}', '{DELAYED}')"
        ready = f"{waiting} AND (available_at IS NULL OR available_at <= {p})"
        marks = ", ".join([p] * len(INSERT_COLUMNS.split(", ")))
        self.insert = (
            f"INSERT INTO {w} ({INSERT_COLUMNS}) VALUES ({marks}) "
            "ON CONFLICT (workflow_id) DO NOTHING"
        )
        self.holder = (
            f"SELECT workflow_id FROM {w} WHERE queue_name = {p} AND dedup_id = {p} "
            f"AND status IN ('{ENQUEUED}', '{DELAYED}', '{PENDING}') LIMIT 1"
        )
        self.waiting_holder = (
            f"SELECT workflow_id FROM {w} WHERE queue_name = {p} AND dedup_id = {p} "
            f"AND {waiting} LIMIT 1"
        )
        self.debounced = (
            f"UPDATE {w} SET inputs = {p}, available_at = {p}, status = '{DELAYED}', "
            f"updated_at = {p} WHERE workflow_id = {p} AND {waiting}"
        )
        self.any_ready = f"SELECT 1 FROM {w} WHERE queue_name = {p} AND {ready} LIMIT 1"
        self.ready_partitions = (
            f"SELECT DISTINCT partition_key FROM {w} WHERE queue_name = {p} AND {ready}"
        )
        in_part = f"queue_name = {p} AND partition_key {same} {p}"
        self.running = f"SELECT count(*) FROM {w} WHERE {in_part} AND status = '{PENDING}'"
        self.running_all = (
            f"SELECT count(*) FROM {w} WHERE queue_name = {p} AND status = '{PENDING}'"
        )
        self.running_here = (
            f"SELECT count(*) FROM {w} WHERE queue_name = {p} AND status = '{PENDING}' "
            f"AND executor_id = {p}"
        )
        self.started_since = (
            f"SELECT count(*), min(dequeued_at) FROM {w} WHERE {in_part} AND dequeued_at >= {p}"
        )
        self.started_since_all = (
            f"SELECT count(*), min(dequeued_at) FROM {w} WHERE queue_name = {p} "
            f"AND dequeued_at >= {p}"
        )

        # One statement takes a partition's (or the queue's) batch: it picks the ready
        # rows in order (locking them on PostgreSQL) and makes them pending and ours.
        # The pick is a CTE, computed once: as an `IN (subquery)` PostgreSQL may
        # run it again for each row (a nested loop), and each run skips the rows the
        # statement has just updated, so it would take more than its LIMIT. (SQLite
        # has no row locks and computes an IN list once; PostgreSQL needs the
        # MATERIALIZED that keeps the CTE from being inlined.)
        # RETURNING gives no order, so it returns the priority too, to sort by.
        once = "MATERIALIZED " if lock_rows else ""

        # PostgreSQL checks again that the rows it locked still wait. On SQLite the
        # statement runs alone in its transaction, and a second test of the status
        # there would make it walk the status index instead of the picked ids.
        recheck = f"{waiting} AND " if lock_rows else ""

        def take(where: str) -> str:
            return (
                f"WITH picked AS {once}(SELECT workflow_id FROM {w} WHERE {where} AND "
                f"{ready} ORDER BY priority, created_at, workflow_id LIMIT {p} {lock_rows}) "
                f"UPDATE {w} SET status = '{PENDING}', executor_id = {p}, dequeued_at = {p}, "
                f"updated_at = {p} WHERE {recheck}workflow_id IN (SELECT workflow_id "
                f"FROM picked) RETURNING {WORKFLOW_COLUMNS}, priority"
            )

        self.take = take(in_part)
        self.take_any = take(f"queue_name = {p}")
        s = f"{t}schedules"
        self.define_schedule = (
            f"INSERT INTO {s} (name, workflow_name, cron, timezone, catch_up, created_at, "
            f"updated_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (name) DO "
            "UPDATE SET workflow_name = excluded.workflow_name, cron = excluded.cron, "
            "timezone = excluded.timezone, catch_up = excluded.catch_up, "
            "updated_at = excluded.updated_at"
        )
        self.schedules = f"SELECT {SCHEDULE_COLUMNS} FROM {s} ORDER BY name"
        self.pause_schedule = (
            f"UPDATE {s} SET paused = {p}, updated_at = {p}, "
            f"last_tick = CASE WHEN {p} THEN last_tick ELSE {p} END WHERE name = {p}"
        )
        self.advance_schedule = (
            f"UPDATE {s} SET last_tick = {p} WHERE name = {p} "
            f"AND (last_tick IS NULL OR last_tick < {p})"
        )
        q = f"{t}queues"
        columns = QUEUE_COLUMNS.split(", ")
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        self.define = (  # insert or replace; the same text in both dialects
            f"INSERT INTO {q} ({QUEUE_COLUMNS}) VALUES ({', '.join([p] * len(columns))}) "
            f"ON CONFLICT (name) DO UPDATE SET {updates}"
        )
        self.specs = f"SELECT {QUEUE_COLUMNS} FROM {q} ORDER BY name"
        self.stats = (
            f"SELECT status, count(*), min(created_at), "
            f"sum(CASE WHEN available_at > {p} THEN 1 ELSE 0 END) "
            f"FROM {w} WHERE queue_name = {p} GROUP BY status"
        )


def enqueue(
    sql: QueueSQL,
    record: WorkflowRecord,
    placement: Placement,
    run: Callable[[str, tuple[Any, ...]], Any],
) -> str | None:
    """The enqueue rule, for both backends: run inside a transaction (that holds the
    lock of the dedup id, where the backend needs one); `run` executes a statement
    there and returns its cursor. None when inserted, else the id that was there."""
    queue, dedup_id = placement.queue, placement.dedup_id
    if dedup_id is not None and placement.debounce:
        holder = run(sql.waiting_holder, (queue, dedup_id)).fetchone()
        if holder is not None:
            update = (record.inputs, placement.available_at, record.created_at, holder[0])
            if run(sql.debounced, update).rowcount == 1:
                return str(holder[0])
    elif dedup_id is not None:
        holder = run(sql.holder, (queue, dedup_id)).fetchone()
        if holder is not None:
            return str(holder[0])
    if run(sql.insert, row_values(record, placement)).rowcount != 1:
        return record.workflow_id  # the id exists already
    return None


def dequeue(
    sql: QueueSQL,
    spec: QueueSpec,
    executor_id: str,
    capacity: int,
    now: float,
    fetch: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]],
) -> Dequeued:
    """The dequeue rule, for both backends: run inside the transaction that serialises
    dequeues of the queue (see `QueueStore.dequeue_workflows`); `fetch` runs a statement
    there and returns its rows (every statement here returns rows)."""

    def count(statement: str, params: tuple[Any, ...]) -> int:
        return int(fetch(statement, params)[0][0])

    name = spec.name
    if spec.worker_concurrency is not None:
        mine = count(sql.running_here, (name, executor_id))
        capacity = min(capacity, spec.worker_concurrency - mine)
    keys: list[Any] = [None]
    if spec.partitioned:
        keys = [row[0] for row in fetch(sql.ready_partitions, (name, now))]
    taken: list[WorkflowRecord] = []
    retry_at: float | None = None
    for key in keys:
        room = capacity - len(taken)
        if room <= 0:
            break
        if spec.concurrency is not None:
            running = (
                count(sql.running, (name, key))
                if spec.partitioned
                else count(sql.running_all, (name,))
            )
            room = min(room, spec.concurrency - running)
        if spec.rate_limit is not None and spec.rate_period is not None:
            since = now - spec.rate_period
            if spec.partitioned:
                ((started, oldest),) = fetch(sql.started_since, (name, key, since))
            else:
                ((started, oldest),) = fetch(sql.started_since_all, (name, since))
            room = min(room, spec.rate_limit - int(started))
            if room <= 0 and oldest is not None:  # the window frees when its oldest leaves
                free = float(oldest) + spec.rate_period
                retry_at = free if retry_at is None else min(retry_at, free)
        if room <= 0:
            continue
        if spec.partitioned:
            rows = fetch(sql.take, (name, key, now, room, executor_id, now, now))
        else:
            rows = fetch(sql.take_any, (name, now, room, executor_id, now, now))
        # In the order they were picked: priority, then age, then id.
        rows.sort(key=lambda row: (row[-1], row[_CREATED], row[0]))
        taken += [WorkflowRecord(*row[:-1]) for row in rows]
    return Dequeued(taken, retry_at)


def row_values(record: WorkflowRecord, placement: Placement) -> tuple[Any, ...]:
    """The values of `insert`: the workflow's row, waiting and unowned, then where it waits.

    Its status is `DELAYED` when it may not start before a later time, else `ENQUEUED`.
    """
    later = placement.available_at is not None and placement.available_at > record.created_at
    waiting = replace(record, status=DELAYED if later else ENQUEUED, executor_id=None)
    return (
        *waiting.values(),
        placement.queue,
        placement.priority,
        placement.dedup_id,
        placement.partition_key,
        placement.available_at,
    )


def stats_of(name: str, rows: list[Any]) -> QueueStats:
    """A `QueueStats` from the rows of the stats statement (status, count, oldest, delayed)."""
    counts = {status: (int(n), oldest, int(later or 0)) for status, n, oldest, later in rows}
    waiting = [counts[s] for s in (ENQUEUED, DELAYED) if s in counts]
    delayed = sum(later for _, _, later in waiting)
    oldest = min((o for _, o, _ in waiting if o is not None), default=None)
    running = counts.get(PENDING, (0, None, 0))[0]
    finished = sum(n for s, (n, _, _) in counts.items() if s not in (ENQUEUED, DELAYED, PENDING))
    return QueueStats(
        name, sum(n for n, _, _ in waiting) - delayed, delayed, running, oldest, finished
    )
