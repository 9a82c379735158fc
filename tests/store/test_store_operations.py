"""Store conformance for operating workflows, messages and events: SQLite and PostgreSQL.

What the `Store` protocol promises about cancelling, reopening, forking,
deleting, messages and events, checked against real databases (conftest's
`backend`, on each store of AUTODURABLE_TEST_STORES). Also: a database written by the previous
schema version is migrated in place, its rows intact.
"""

from __future__ import annotations

import json
import sqlite3
import time

import psycopg
import pytest

from autodurable._errors import OwnershipLost
from autodurable._store import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    TIMED_OUT,
    WAITING,
    StepRecord,
    open_store,
)
from autodurable._store._migrations import load_migrations
from autodurable._store._postgres import parse_postgres_url

from ..helpers import Backend, executor, lease, lost, sqlite_at_schema, step, workflow

ERROR = '{"~":"exception","c":"autodurable._errors:WorkflowCancelled","a":["w","why"],"m":"x"}'


@pytest.fixture
def store(backend: Backend):
    """A store opened on each selected database (overrides conftest's runtime `store`)."""
    return backend.open()


def owned(store, *ids: str, owner: str = "me") -> None:
    store.register_executor(executor(owner))
    for workflow_id in ids:
        assert store.create_workflow(workflow(workflow_id, owner))


# -- cancelling -------------------------------------------------------------------------


def test_a_step_write_returns_the_status_and_a_cancelled_workflow_records_its_last_step(store):
    owned(store, "w")
    assert store.record_step("w", "me", step(1)) == PENDING
    assert store.cancel_workflow("w", ERROR) == CANCELLED
    assert store.record_step("w", "me", step(2)) == CANCELLED  # recorded all the same
    assert [s.position for s in store.list_steps("w")] == [1, 2]
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.record_step("w", "intruder", step(3))
    record = store.get_workflow("w")
    assert (record.status, record.error, record.executor_id) == (CANCELLED, ERROR, "me")
    # Finishing writes nothing over the cancellation, and says so.
    assert store.finish_workflow("w", "me", SUCCEEDED, '"done"', None) == CANCELLED
    assert store.get_workflow("w").output is None
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.finish_workflow("w", "intruder", SUCCEEDED, '"done"', None)
    store.release_workflow("w", "me")
    assert store.get_workflow("w").executor_id is None
    assert not store.claim_workflow("w", lease("me")).claimed  # cancelled: never claimed
    assert store.adoptable_workflows(lease("other"), 10) == []


def test_cancel_changes_only_pending_workflows(store):
    owned(store, "done", "failed")
    store.finish_workflow("done", "me", SUCCEEDED, "1", None)
    store.finish_workflow("failed", "me", FAILED, None, '{"c":"x"}')
    assert store.cancel_workflow("done", ERROR) == SUCCEEDED
    assert store.cancel_workflow("failed", ERROR) == FAILED
    assert store.get_workflow("done").error is None
    assert store.cancel_workflow("missing", ERROR) is None


def test_reopen_resumes_cancelled_and_failed_workflows_and_nothing_else(store):
    owned(store, "c", "f", "p", "s")
    record = workflow("d", "me")
    record.deadline, record.app_version = time.time() + 60, "v1"
    store.create_workflow(record)
    store.record_step("f", "me", step(1))
    store.record_step("f", "me", StepRecord(2, "s2", FAILED, None, '{"e":1}', 1, 1.0, 2.0))
    store.finish_workflow("f", "me", FAILED, None, '{"e":1}')
    store.record_step("c", "me", step(1))
    store.cancel_workflow("c", ERROR)
    store.cancel_workflow("d", ERROR)
    store.finish_workflow("s", "me", SUCCEEDED, "1", None)
    assert store.reopen_workflow("c") == 1
    assert store.reopen_workflow("f") == 1  # the failed last step goes: it runs again
    assert store.reopen_workflow("p") is None and store.reopen_workflow("s") is None
    assert store.reopen_workflow("missing") is None
    for workflow_id in ("c", "f"):
        again = store.get_workflow(workflow_id)
        assert (again.status, again.error, again.executor_id) == (PENDING, None, None)
    assert store.get_workflow("s").status == SUCCEEDED
    assert store.reopen_workflow("d") == 0
    reopened = store.get_workflow("d")
    assert (reopened.deadline, reopened.app_version) == (None, "v1")  # deadline dropped
    store.cancel_workflow("d", ERROR)
    store.reopen_workflow("d", app_version="v2")
    assert store.get_workflow("d").app_version == "v2"
    store.cancel_workflow("d", ERROR)
    store.reopen_workflow("d", unpin=True)
    assert store.get_workflow("d").app_version is None
    claim = store.claim_workflow("d", lease("me"), app_version="v3")  # takes the claimer's
    assert claim.claimed and claim.workflow.app_version == "v3"
    assert store.get_workflow("d").app_version == "v3"
    store.claim_workflow("d", lease("me"), app_version="v4")  # has one: kept
    assert store.get_workflow("d").app_version == "v3"


# -- forking, deleting, retention --------------------------------------------------------


def test_fork_copies_the_steps_before_the_position_into_a_new_workflow(store):
    owned(store, "src")
    for position in (1, 2, 3):
        store.record_step("src", "me", step(position))
    store.finish_workflow("src", "me", SUCCEEDED, "1", None)
    record = workflow("copy", None)
    record.forked_from, record.forked_at_step = "src", 3
    assert store.fork_workflow("src", record, 3) == 2
    assert store.get_workflow("copy") == record
    copies = store.list_steps("copy")
    assert [(s.position, s.output, s.executor_id) for s in copies] == [
        (1, "1", "me"),
        (2, "2", "me"),
    ]
    assert store.fork_workflow("src", workflow("copy", None), 2) is None  # the id exists
    assert len(store.list_steps("copy")) == 2
    assert [w.workflow_id for w, _ in store.adoptable_workflows(lease("me"), 10)] == ["copy"]


def test_delete_removes_a_workflow_with_its_steps_messages_and_events(store):
    owned(store, "gone", "kept")
    store.record_step("gone", "me", step(1))
    store.send_message("gone", "", '"hi"', None, time.time())
    store.set_event("gone", "me", "k", '"v"', step(2))
    store.send_message("kept", "", '"hi"', None, time.time())
    assert store.delete_workflows(["gone", "missing"]) == 1
    assert store.get_workflow("gone") is None and store.list_steps("gone") == []
    assert store.list_messages("gone") == [] and store.list_events("gone") == {}
    assert len(store.list_messages("kept")) == 1


def test_ended_workflows_and_orphan_messages_for_retention(store):
    owned(store, "old-done", "old-cancelled", "new-done", "pending")
    store.finish_workflow("old-done", "me", SUCCEEDED, "1", None)
    store.cancel_workflow("old-cancelled", ERROR)
    time.sleep(0.05)
    cutoff = time.time()
    time.sleep(0.05)
    store.finish_workflow("new-done", "me", SUCCEEDED, "1", None)
    ended = store.ended_workflows(cutoff, [SUCCEEDED, CANCELLED], 10)
    assert ended == ["old-done", "old-cancelled"]  # oldest first
    assert store.ended_workflows(cutoff, [CANCELLED], 10) == ["old-cancelled"]
    assert store.ended_workflows(cutoff, [SUCCEEDED, CANCELLED], 1) == ["old-done"]
    store.send_message("never-started", "", '"x"', None, cutoff - 10)
    store.send_message("never-started", "", '"y"', None, cutoff + 10)
    store.send_message("pending", "", '"z"', None, cutoff - 10)
    assert store.delete_orphan_messages(cutoff) == 1
    assert [m.payload for m in store.list_messages("never-started")] == ['"y"']
    assert len(store.list_messages("pending")) == 1


def test_sqlite_reads_ended_and_dequeued_workflows_from_indexes_of_them_only(tmp_path):
    # Every dequeue and every finish rewrites fewer index entries since the index by
    # last update holds ended workflows only, and the one by dequeue time dequeued
    # ones only: the retention search and the rate limits' counts still read them.
    from autodurable._store._sqlite_ops import ended_sql
    from autodurable._store._sqlite_queues import _SQL

    store = Backend(f"sqlite:///{tmp_path / 'state.db'}").open()
    conn = sqlite3.connect(str(tmp_path / "state.db"))
    try:
        plans = [
            " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in [
                (ended_sql(2), (SUCCEEDED, CANCELLED, time.time(), 10)),
                (_SQL.started_since_all, ("q", time.time())),
                (_SQL.started_since, ("q", "key", time.time())),
            ]
        ]
    finally:
        conn.close()
        store.close()
    assert "USING COVERING INDEX workflows_ended" in plans[0], plans[0]
    assert "TEMP B-TREE" not in plans[0], plans[0]
    dequeued = "INDEX workflows_dequeued (queue_name=? AND dequeued_at>?)"
    assert all(dequeued in plan for plan in plans[1:]), plans


def test_list_workflows_filters_and_pages(store):
    store.register_executor(executor("me"))
    for i, name in enumerate(["shop:checkout", "shop:refund", "billing:checkout", "x_y:z"]):
        store.create_workflow(workflow(f"w{i}", "me", name=name, at=100.0 + i))
    store.finish_workflow("w1", "me", SUCCEEDED, "1", None)
    store.cancel_workflow("w2", ERROR)
    ids = lambda **kw: [w.workflow_id for w in store.list_workflows(**kw)]  # noqa: E731
    assert ids() == ["w3", "w2", "w1", "w0"]
    assert ids(status=[SUCCEEDED, CANCELLED]) == ["w2", "w1"]
    assert ids(status=PENDING) == ["w3", "w0"]
    assert ids(name_like="%:checkout") == ["w2", "w0"]
    assert ids(name_like="x\\_y:%") == ["w3"] and ids(name_like="x\\%") == []
    assert ids(created_after=101.0, created_before=103.0) == ["w2", "w1"]
    assert ids(limit=2, offset=1) == ["w2", "w1"]
    assert ids(limit=2, offset=4) == []


def test_get_executor(store):
    store.register_executor(executor("me"))
    found = store.get_executor("me")
    assert found.executor_id == "me" and 0 <= found.heartbeat_age < 30
    assert store.get_executor("missing") is None


# -- messages -------------------------------------------------------------------------------


def receive(store, position: int, first: bool = False, deadline: float | None = None, topic=""):
    return store.receive_message(
        "w", "me", position, "autodurable.recv", topic, deadline or time.time() + 60, first
    )


def test_messages_are_kept_until_received_in_order_and_each_once(store):
    # Sent before the workflow exists: kept.
    assert store.send_message("w", "", '"first"', None, time.time())
    assert store.send_message("w", "other", '"elsewhere"', None, time.time())
    assert store.send_message("w", "", '"second"', "key-2", time.time())
    assert not store.send_message("w", "", '"second again"', "key-2", time.time())
    owned(store, "w")
    assert receive(store, 1).payload == '"first"'
    assert receive(store, 2).payload == '"second"'
    waiting = receive(store, 3, first=True)
    assert (waiting.status, waiting.payload, waiting.timed_out) == (PENDING, None, False)
    steps = {s.position: s for s in store.list_steps("w")}
    assert [(steps[p].status, steps[p].output) for p in (1, 2)] == [
        (SUCCEEDED, '"first"'),
        (SUCCEEDED, '"second"'),
    ]
    assert steps[3].status == WAITING and steps[3].finished_at is None
    assert json.loads(steps[3].output) > time.time()  # the deadline, for a resumed wait
    assert receive(store, 4, topic="other").payload == '"elsewhere"'
    messages = store.list_messages("w")
    assert [(m.payload, m.consumed_at_step) for m in messages] == [
        ('"first"', 1),
        ('"elsewhere"', 4),
        ('"second"', 2),
    ]
    # The duplicate key stays deduplicated after its message was consumed.
    assert not store.send_message("w", "", '"second once more"', "key-2", time.time())


def test_a_look_after_the_deadline_records_the_timeout(store):
    owned(store, "w")
    assert receive(store, 1, first=True, deadline=time.time() + 60).payload is None
    timed_out = receive(store, 1, deadline=time.time() - 1)
    assert timed_out.timed_out and timed_out.payload is None
    (recorded,) = store.list_steps("w")
    assert recorded.status == TIMED_OUT and recorded.finished_at is not None


def test_receiving_is_fenced_and_a_cancelled_workflow_consumes_nothing(store):
    owned(store, "w")
    store.send_message("w", "", '"m"', None, time.time())
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.receive_message("w", "intruder", 1, "autodurable.recv", "", time.time() + 9, True)
    store.cancel_workflow("w", ERROR)
    assert receive(store, 1, first=True) == type(receive(store, 1))(CANCELLED)
    assert store.list_messages("w")[0].consumed_at is None and store.list_steps("w") == []


# -- events ----------------------------------------------------------------------------------


def test_events_are_set_with_their_step_fenced_and_replaced(store):
    owned(store, "w")
    assert store.get_event("w", "status") is None
    assert store.set_event("w", "me", "status", '"waiting"', step(1)) == PENDING
    assert store.set_event("w", "me", "status", '"approved"', step(2)) == PENDING
    assert store.set_event("w", "me", "amount", "12", step(3)) == PENDING
    assert store.get_event("w", "status") == '"approved"'
    assert store.list_events("w") == {"amount": "12", "status": '"approved"'}
    assert [s.position for s in store.list_steps("w")] == [1, 2, 3]
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.set_event("w", "intruder", "status", '"forged"', step(4))
    assert store.get_event("w", "status") == '"approved"' and len(store.list_steps("w")) == 3


def test_subscribers_are_woken_by_cancel_message_and_event(backend):
    waiter, worker = backend.open(), backend.open()
    owned(worker, "w1", "w2", "w3", owner="worker")
    with (
        waiter.subscribe("w1") as one,
        waiter.subscribe("w2") as two,
        waiter.subscribe("w3") as three,
    ):
        for subscription in (one, two, three):
            subscription.wait(0)  # a wake-up when listening began (allowed): not ours
        worker.send_message("w1", "", '"hi"', None, time.time())
        assert one.wait(30)
        worker.set_event("w2", "worker", "k", '"v"', step(1))
        assert two.wait(30)
        worker.cancel_workflow("w3", ERROR)
        assert three.wait(30)
        assert not one.wait(0.1)  # nothing more for w1


# -- migrating a database of the previous schema ------------------------------------------


def test_a_sqlite_database_of_schema_2_is_migrated_with_its_rows(tmp_path):
    path = tmp_path / "old.db"
    with sqlite_at_schema(path, 2) as conn:
        conn.execute(
            "INSERT INTO workflows VALUES ('old', 'm:f', 'pending', '{}', NULL, NULL, NULL, 1, 2)"
        )
    migrated = open_store(f"sqlite:///{path}")
    try:
        old = migrated.get_workflow("old")
        assert (old.status, old.app_version, old.deadline, old.forked_from) == (
            PENDING,
            None,
            None,
            None,
        )
        assert migrated.send_message("old", "", '"m"', None, time.time())
    finally:
        migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(load_migrations("sqlite"))


def test_a_postgresql_schema_of_version_1_is_migrated_with_its_rows(postgres_url):
    schema = parse_postgres_url(postgres_url).schema
    with psycopg.connect(parse_postgres_url(postgres_url).conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(load_migrations("postgresql")[0][1])
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute(
            "INSERT INTO workflows VALUES ('old', 'm:f', 'pending', '{}', NULL, NULL, NULL, 1, 2)"
        )
    migrated = open_store(postgres_url)
    try:
        old = migrated.get_workflow("old")
        assert (old.status, old.app_version, old.deadline) == (PENDING, None, None)
        assert migrated.send_message("old", "", '"m"', None, time.time())
    finally:
        migrated.close()
