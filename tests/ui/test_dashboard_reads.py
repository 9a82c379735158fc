"""`DashboardReads` on each store: keyset pages agree with `find_workflows`, counts add
up, step pages follow `list_steps`, and the migration's indexes serve the filters."""

from __future__ import annotations

from typing import Any

import pytest

from autodurable._store import FAILED, SUCCEEDED, StepRecord, WorkflowFilter
from autodurable._store._dashboard import DashboardReads

from ..helpers import executor, workflow


@pytest.fixture
def filled(backend):
    """A store with 25 workflows (some sharing a creation time) and one of 12 steps."""
    store = backend.open()
    store.register_executor(executor("e1"))
    for i in range(25):
        record = workflow(f"w{i:02d}", None, at=1_000_000.0 + i // 2)
        record.status = FAILED if i % 5 == 0 else SUCCEEDED
        record.app_version = "v2" if i % 2 else "v1"
        store.create_workflow(record)
    store.create_workflow(workflow("long", "e1", at=2_000_000.0))
    for position in range(1, 13):
        branch = "3" if position in (4, 5) else ""
        step = StepRecord(
            position,
            f"s{position}",
            SUCCEEDED,
            "1",
            None,
            2 if position == 7 else 1,
            2_000_000.0 + position,
            2_000_000.5 + position,
            branch=branch,
        )
        store.record_step("long", "e1", step)
    return store


def test_keyset_pages_walk_the_same_order_as_find_workflows(filled):
    reads = DashboardReads(filled)
    everything = [r.workflow_id for r in filled.find_workflows(WorkflowFilter(), 100)]
    walked, after = [], None
    while True:
        page = reads.workflows_page(WorkflowFilter(), 4, after)
        walked += [r.workflow_id for r in page]
        if len(page) < 4:
            break
        after = (page[-1].created_at, page[-1].workflow_id)
    assert walked == everything
    last = filled.get_workflow(everything[8])
    before = reads.workflows_page(WorkflowFilter(), 4, before=(last.created_at, last.workflow_id))
    assert [r.workflow_id for r in before] == everything[4:8]


def test_filters_prefixes_and_counts(filled):
    reads = DashboardReads(filled)
    failed = reads.workflows_page(WorkflowFilter(statuses=(FAILED,)), 100)
    assert {r.workflow_id for r in failed} == {"w00", "w05", "w10", "w15", "w20"}
    prefixed = reads.workflows_page(WorkflowFilter(), 100, id_prefix="w1")
    assert sorted(r.workflow_id for r in prefixed) == [f"w1{i}" for i in range(10)]
    assert reads.workflows_page(WorkflowFilter(), 100, id_prefix="x") == []
    assert len(reads.workflows_page(WorkflowFilter(app_version="v2"), 100)) == 12
    assert reads.status_counts() == {FAILED: 5, SUCCEEDED: 20, "pending": 1}
    cells = reads.counts_over_time(WorkflowFilter(), 1_000_000.0, 2.0, 4)
    assert sum(n for _, _, n in cells) == 16  # created in 0..8 s: w00..w15; the rest fall beyond
    assert {b for b, _, _ in cells} == {0, 1, 2, 3}
    assert reads.created_range() == (1_000_000.0, 2_000_000.0)


def test_step_pages_spans_and_buckets(filled):
    reads = DashboardReads(filled)
    order = [(s.branch, s.position) for s in filled.list_steps("long")]
    paged = [
        (s.branch, s.position) for k in range(0, 12, 5) for s in reads.steps_page("long", 5, k)
    ]
    assert paged == order
    span = reads.step_span("long")
    assert (span.first, span.last, span.count) == (2_000_001.0, 2_000_012.5, 12)
    buckets = reads.step_buckets("long", 2_000_000.0, 4.0, 2_000_100.0)
    assert sum(b.count for b in buckets) == 12
    assert max(b.max_attempts for b in buckets) == 2
    assert reads.one_step("long", "3", 4).name == "s4"
    assert reads.one_step("long", "", 4) is None


def test_the_version_filter_and_forks_use_the_new_indexes(backend):
    store = backend.open()
    reads = DashboardReads(store)

    def plan(text: str, params: Any) -> str:
        if reads.dialect == "sqlite":
            return " ".join(reads.plan(text, params))

        # On a table this small PostgreSQL's planner rightly prefers a scan; with scans
        # made the last resort, the plan shows whether an index can serve the query.
        def explain(cursor: Any) -> list[Any]:
            cursor.execute("SET LOCAL enable_seqscan = off")
            return cursor.execute("EXPLAIN " + reads._sql(text), tuple(params)).fetchall()

        return " ".join(str(row[0]) for row in store._run("read", explain))

    text, params = reads.workflows_statement(WorkflowFilter(app_version="v1"), 10)
    assert "workflows_by_version" in plan(text, params)
    table = "workflows" if reads.dialect == "sqlite" else f'"{store.schema}".workflows'
    forks = f"SELECT workflow_id FROM {table} WHERE forked_from = ?"
    assert "workflows_forked" in plan(forks, ("x",))
    by_start, by_batch = reads.parent_statements()
    assert "steps_started_children" in plan(by_start, ('"x"',))
    assert "steps_started_batches" in plan(by_batch, ('"x"',))
    assert reads.forks_of("nothing") == []
