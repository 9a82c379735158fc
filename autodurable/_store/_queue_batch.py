"""The batch enqueue rule, written once for both dialects (`QueueStore.enqueue_workflows`).

Invariants:
- The outcome of every entry is what `enqueue_workflow` would have returned had
  the entries been enqueued one after the other, in order: None when inserted;
  the id itself when a workflow with that id exists (already, or an earlier
  entry's); the holder's id when a workflow of the queue with the entry's dedup
  id waits or runs (already, or an earlier entry of the batch).
- With `reject_duplicates`, an entry whose dedup id is held by another workflow
  stops the batch before anything is written: nothing is inserted.
- Everything runs in the caller's one transaction: a handful of statements
  whatever the size of the batch (the rows are inserted by multi-row
  ``INSERT``s of `CHUNK` rows), so a batch costs one commit and one fsync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._protocol import DELAYED, ENQUEUED, PENDING, WorkflowRecord
from ._queue_sql import INSERT_COLUMNS, row_values
from ._queueing import Placement

# Rows per multi-row statement: 400 rows of 17 values stay far below the bound
# parameters a statement may have (32,766 in SQLite >= 3.32, 65,535 in PostgreSQL).
CHUNK = 400

Entry = tuple[WorkflowRecord, Placement]
Run = Callable[[str, tuple[Any, ...]], Any]  # executes a statement, returns its cursor


class BatchSQL:
    """The statements of a batch enqueue whose length depends on the number of rows."""

    def __init__(self, p: str, t: str = "") -> None:
        self._p = p
        self._w = f"{t}workflows"
        self._row = "(" + ", ".join([p] * len(INSERT_COLUMNS.split(", "))) + ")"

    def marks(self, count: int) -> str:
        """``p, p, ...``: `count` placeholders."""
        return ", ".join([self._p] * count)

    def existing(self, count: int) -> str:
        """The ids, among `count` given, of workflows that exist."""
        return f"SELECT workflow_id FROM {self._w} WHERE workflow_id IN ({self.marks(count)})"

    def holders(self, count: int) -> str:
        """The waiting or running holders of `count` dedup ids of one queue."""
        return (
            f"SELECT dedup_id, workflow_id FROM {self._w} WHERE queue_name = {self._p} "
            f"AND dedup_id IN ({self.marks(count)}) "
            f"AND status IN ('{ENQUEUED}', '{DELAYED}', '{PENDING}')"
        )

    def insert(self, count: int) -> str:
        """Insert `count` rows, skipping ids that exist; the ids inserted."""
        rows = ", ".join([self._row] * count)
        return (
            f"INSERT INTO {self._w} ({INSERT_COLUMNS}) VALUES {rows} "
            "ON CONFLICT (workflow_id) DO NOTHING RETURNING workflow_id"
        )


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """`values` in slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def dedup_keys(entries: Sequence[Entry]) -> list[str]:
    """The distinct (queue, dedup id) keys of the batch, as lock names, sorted: locks
    taken in one order by every batch cannot deadlock."""
    keys = {
        f"autodurable.dedup:{placement.queue}:{placement.dedup_id}"
        for _, placement in entries
        if placement.dedup_id is not None
    }
    return sorted(keys)


def enqueue_batch(
    batch: BatchSQL,
    entries: Sequence[Entry],
    reject_duplicates: bool,
    run: Run,
) -> tuple[list[str | None], str | None]:
    """The batch enqueue rule (see the module's invariants), inside the caller's
    transaction (which holds the locks of the dedup ids, where the backend needs
    them); `batch` holds the dialect's statements. One outcome per entry, in order,
    and the id of the first entry inserted (None when none was: nothing to announce)."""
    if any(placement.debounce for _, placement in entries):
        raise ValueError("a debounced enqueue replaces its holder: one at a time, not in a batch")
    deduped = any(placement.dedup_id is not None for _, placement in entries)
    existing = _existing(batch, entries, run) if deduped else set()
    holders = _holders(batch, entries, run) if deduped else {}
    outcomes: list[str | None] = []
    rows: list[tuple[Any, ...]] = []
    for record, placement in entries:
        workflow_id, key = record.workflow_id, (placement.queue, placement.dedup_id)
        if placement.dedup_id is not None and key in holders:
            outcomes.append(holders[key])
        elif workflow_id in existing:
            outcomes.append(workflow_id)  # the same id: nothing inserted
        else:
            existing.add(workflow_id)
            if placement.dedup_id is not None:
                holders[key] = workflow_id
            rows.append(row_values(record, placement))
            outcomes.append(None)
    if reject_duplicates and any(
        _rejected(record, placement, first)
        for (record, placement), first in zip(entries, outcomes, strict=True)
    ):
        return outcomes, None  # nothing written: the caller raises
    inserted: set[str] = set()
    # Inserted in the order of their ids, so that two batches racing on the same ids
    # take the rows' locks in one order (PostgreSQL waits on a uniqueness conflict).
    rows.sort(key=lambda row: str(row[0]))
    for part in chunks(rows):
        flat = tuple(value for row in part for value in row)
        inserted.update(str(found[0]) for found in run(batch.insert(len(part)), flat).fetchall())
    final = [
        record.workflow_id
        if first is None and record.workflow_id not in inserted  # inserted meanwhile
        else first
        for (record, _), first in zip(entries, outcomes, strict=True)
    ]
    return final, first_inserted(entries, final)


def first_inserted(entries: Sequence[Entry], outcomes: Sequence[str | None]) -> str | None:
    """The id of the first entry inserted (the one a wake-up names), if any."""
    for (record, _), first in zip(entries, outcomes, strict=True):
        if first is None:
            return record.workflow_id
    return None


def _rejected(record: WorkflowRecord, placement: Placement, first: str | None) -> bool:
    return placement.dedup_id is not None and first is not None and first != record.workflow_id


def _existing(batch: BatchSQL, entries: Sequence[Entry], run: Run) -> set[str]:
    ids = list(dict.fromkeys(record.workflow_id for record, _ in entries))
    found: set[str] = set()
    for part in chunks(ids):
        found.update(str(row[0]) for row in run(batch.existing(len(part)), tuple(part)))
    return found


def _holders(batch: BatchSQL, entries: Sequence[Entry], run: Run) -> dict[tuple[str, Any], str]:
    by_queue: dict[str, list[str]] = {}
    for _, placement in entries:
        if placement.dedup_id is not None:
            wanted = by_queue.setdefault(placement.queue, [])
            if placement.dedup_id not in wanted:
                wanted.append(placement.dedup_id)
    holders: dict[tuple[str, Any], str] = {}
    for queue, dedup_ids in by_queue.items():
        for part in chunks(dedup_ids):
            for dedup_id, holder in run(batch.holders(len(part)), (queue, *part)).fetchall():
                holders.setdefault((queue, dedup_id), str(holder))
    return holders
