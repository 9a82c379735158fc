"""The store conformance suite: every test runs on SQLite and on PostgreSQL.

What the `Store` protocol promises (autodurable/_store/_protocol.py) is checked
here against real databases: records round-trip, writes are fenced by
ownership, claims are atomic even when many executors race, a claim's history
holds every step written before it, leases decide across hosts and the process
table on one host, and subscriptions wake waiters where the store can notify.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from autodurable._core._executor import HOSTNAME, Lease, is_alive
from autodurable._errors import OwnershipLost
from autodurable._store import (
    FAILED,
    PENDING,
    RETRYING,
    SUCCEEDED,
    TIMED_OUT,
    WAITING,
    ExecutorRecord,
    StepRecord,
    Store,
)

from ..helpers import Backend, executor, lease, lost, step, workflow

DEAD_PID = 2**22 + 12345  # above the default pid_max: no such process


@pytest.fixture
def store(backend: Backend) -> Store:
    """A store opened on each selected database (overrides conftest's runtime `store`)."""
    return backend.open()


class Judging(Lease, frozen=True):
    """A liveness rule that declares some executors dead whatever their lease says."""

    dead: frozenset[str] = frozenset()

    def alive(self, other: ExecutorRecord) -> bool:
        return other.executor_id not in self.dead and super().alive(other)


def judging(executor_id: str, dead: set[str]) -> Judging:
    return Judging(executor_id, 30.0, HOSTNAME, frozenset(dead))


# -- records --------------------------------------------------------------------------


def test_fresh_store_is_empty_and_reopening_changes_nothing(backend):
    first = backend.open()
    assert first.list_workflows() == [] and first.unfinished_workflows() == []
    first.close()
    backend.stores.remove(first)
    second = backend.open()  # the schema is there: nothing to migrate
    assert second.list_workflows() == []


def test_workflows_round_trip_and_list_newest_first(store):
    store.register_executor(executor("me"))
    records = [workflow(f"w{i}", "me", name="m:even" if i % 2 == 0 else "m:odd", at=100.0 + i)
               for i in range(5)]  # fmt: skip
    for record in records:
        assert store.create_workflow(record)
    assert not store.create_workflow(workflow("w0", "me"))  # the id exists: nothing changes
    assert store.get_workflow("w3") == records[3]
    assert store.get_workflow("missing") is None
    assert [w.workflow_id for w in store.list_workflows()] == ["w4", "w3", "w2", "w1", "w0"]
    assert [w.workflow_id for w in store.list_workflows(limit=2)] == ["w4", "w3"]
    assert [w.workflow_id for w in store.list_workflows(name="m:odd")] == ["w3", "w1"]
    store.finish_workflow("w1", "me", SUCCEEDED, '"done"', None)
    assert [w.workflow_id for w in store.list_workflows(status=SUCCEEDED)] == ["w1"]
    assert [w.workflow_id for w in store.list_workflows(status=PENDING, name="m:odd")] == ["w3"]
    done = store.get_workflow("w1")
    assert (done.status, done.output, done.error) == (SUCCEEDED, '"done"', None)


def test_steps_are_upserted_by_position_and_read_in_order(store):
    store.register_executor(executor("me"))
    store.create_workflow(workflow("w", "me"))
    store.record_step("w", "me", step(2))
    store.record_step("w", "me", step(2))  # the same write again (its reply was lost): one row
    store.record_step("w", "me", StepRecord(1, "s1", RETRYING, None, '{"e":1}', 1, 1.0, 1.1))
    store.record_step("w", "me", StepRecord(1, "s1", SUCCEEDED, '"x"', None, 2, 1.2, 1.3))
    steps = store.list_steps("w")
    assert [(s.position, s.status, s.output, s.attempts) for s in steps] == [
        (1, SUCCEEDED, '"x"', 2),
        (2, SUCCEEDED, "2", 1),
    ]
    assert {s.executor_id for s in steps} == {"me"}  # who recorded each step
    assert steps[1] == StepRecord(2, "s2", SUCCEEDED, "2", None, 1, 1.5, 2.5, "me")


def test_step_arguments_digest_round_trips_through_writes_claims_and_forks(store):
    store.register_executor(executor("me"))
    store.create_workflow(workflow("w", "me"))
    first = StepRecord(1, "s1", RETRYING, None, '{"e":1}', 1, 1.0, 1.1, arguments="0a1b2c3d")
    store.record_step("w", "me", first)
    retried = StepRecord(1, "s1", SUCCEEDED, '"x"', None, 2, 1.2, 1.3, arguments="0a1b2c3d")
    store.record_step("w", "me", retried)  # the upsert of a later attempt keeps it
    store.record_step("w", "me", step(2))  # none: a row as old versions wrote them
    branch = StepRecord(1, "b", SUCCEEDED, "3", None, 1, 1.5, 2.5, branch="3", arguments="ff")
    store.record_step("w", "me", branch)
    expected = [("", 1, "0a1b2c3d"), ("", 2, None), ("3", 1, "ff")]
    assert [(s.branch, s.position, s.arguments) for s in store.list_steps("w")] == expected
    claim = store.claim_workflow("w", lease("me"))
    assert [(s.branch, s.position, s.arguments) for s in claim.steps] == expected
    assert store.fork_workflow("w", workflow("copy", None), 4) == 3
    assert [(s.branch, s.position, s.arguments) for s in store.list_steps("copy")] == expected


def test_writes_are_fenced_by_ownership(store):
    store.register_executor(executor("me"))
    store.create_workflow(workflow("w", "me"))
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.record_step("w", "intruder", step(1))
    with pytest.raises(OwnershipLost, match=lost("nope")):
        store.record_step("nope", "me", step(1))
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.finish_workflow("w", "intruder", SUCCEEDED, "1", None)
    store.release_workflow("w", "intruder")  # not the owner: nothing happens
    assert store.list_steps("w") == []
    assert store.get_workflow("w").executor_id == "me"
    assert store.get_workflow("w").status == PENDING


# -- claims -----------------------------------------------------------------------------


def test_claim_is_exclusive_between_live_executors(backend):
    a, b = backend.open(), backend.open()
    a.register_executor(executor("exec-a"))
    b.register_executor(executor("exec-b"))
    assert a.create_workflow(workflow("w", "exec-a"))
    assert not b.create_workflow(workflow("w", "exec-b"))
    claim = b.claim_workflow("w", lease("exec-b"))
    assert not claim.claimed and claim.owner.executor_id == "exec-a"
    assert claim.steps == []
    assert b.get_workflow("w").executor_id == "exec-a"
    assert b.claim_workflow("missing", lease("exec-b")) is None


def test_dead_executor_workflows_are_adopted_with_history(store):
    store.register_executor(executor("dead", pid=DEAD_PID))
    store.create_workflow(workflow("w", "dead"))
    recorded = [step(1), step(2)]
    for record in recorded:
        store.record_step("w", "dead", record)
    store.register_executor(executor("me"))
    claim = store.claim_workflow("w", lease("me"))
    assert claim.claimed and claim.workflow.executor_id == "me"
    assert [(s.position, s.output) for s in claim.steps] == [(1, "1"), (2, "2")]
    assert claim.owner.executor_id == "dead"
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.record_step("w", "dead", step(3))  # the old owner is fenced out
    store.record_step("w", "me", step(3))
    assert store.claim_workflow("w", lease("me")).claimed  # claiming again is harmless


def test_an_owner_on_another_host_is_alive_while_its_lease_runs(backend):
    far, near = backend.open(), backend.open()
    far.register_executor(executor("far", host="elsewhere.example"))
    far.create_workflow(workflow("w", "far"))
    near.register_executor(executor("near"))
    assert not near.claim_workflow("w", lease("near", 30.0)).claimed
    time.sleep(0.3)
    assert far.heartbeat("far")  # renewed: the short lease has not run out again yet
    assert not far.heartbeat("never-registered")
    assert not near.claim_workflow("w", lease("near", 5.0)).claimed
    time.sleep(0.3)
    claim = near.claim_workflow("w", lease("near", 0.2))  # 0.3 s without a heartbeat
    assert claim.claimed and near.get_workflow("w").executor_id == "near"


def test_an_owner_on_this_host_is_judged_by_its_process_not_its_lease(store):
    store.register_executor(executor("neighbour"))  # this very process: alive
    store.create_workflow(workflow("w", "neighbour"))
    time.sleep(0.2)
    assert not store.claim_workflow("w", lease("me", 0.1)).claimed


def test_finished_workflows_are_never_claimed_and_their_history_is_not_read(store):
    store.register_executor(executor("dead", pid=DEAD_PID))
    store.create_workflow(workflow("w", "dead"))
    store.record_step("w", "dead", step(1))
    store.finish_workflow("w", "dead", SUCCEEDED, '"ok"', None)
    claim = store.claim_workflow("w", lease("me"))
    assert not claim.claimed and claim.workflow.status == SUCCEEDED
    assert claim.workflow.output == '"ok"'
    assert claim.steps == []  # calling it again needs its output, not its steps
    assert store.adoptable_workflows(lease("me"), 10) == []


def test_racing_claims_have_exactly_one_winner(backend):
    """Eight executors claim the same dead executor's workflows at the same moment."""
    setup = backend.open()
    setup.register_executor(executor("dead", pid=DEAD_PID))
    ids = [f"w{i}" for i in range(10)]
    for workflow_id in ids:
        setup.create_workflow(workflow(workflow_id, "dead"))
    claimers = [backend.open() for _ in range(8)]
    for i, claimer in enumerate(claimers):
        claimer.register_executor(executor(f"c{i}"))
    for workflow_id in ids:
        barrier = threading.Barrier(len(claimers))
        winners: list[str] = []

        def claim(i: int, workflow_id: str = workflow_id, barrier=barrier, winners=winners):
            barrier.wait()
            got = claimers[i].claim_workflow(workflow_id, lease(f"c{i}"))
            if got.claimed:
                winners.append(f"c{i}")

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1, (workflow_id, winners)
        assert setup.get_workflow(workflow_id).executor_id == winners[0]


def test_a_claim_sees_every_step_written_before_it_and_fences_the_rest(backend):
    """The old owner keeps writing while another executor claims the workflow.

    Every write that returned must be in the history the claim loaded, and every
    write after the claim must be refused: nothing is lost and nothing slips in.
    """
    for round_number in range(12):
        old, new = backend.open(), backend.open()
        old.register_executor(executor("old"))
        new.register_executor(executor("new"))
        workflow_id = f"w{round_number}"
        old.create_workflow(workflow(workflow_id, "old"))
        written: list[int] = []

        def keep_writing(old=old, written=written, workflow_id=workflow_id) -> None:
            for position in range(1, 10_000):
                try:
                    old.record_step(workflow_id, "old", step(position))
                except OwnershipLost:
                    return
                written.append(position)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        time.sleep(0.002 * round_number)
        claim = new.claim_workflow(workflow_id, judging("new", dead={"old"}))
        writer.join(timeout=30)
        assert claim.claimed
        assert [s.position for s in claim.steps] == written
        assert [s.position for s in new.list_steps(workflow_id)] == written


# -- adoption, release, retire, reopen ---------------------------------------------------


def test_adoptable_workflows_are_unowned_or_owned_by_the_dead(backend):
    store, far = backend.open(), backend.open()
    store.register_executor(executor("me"))
    store.register_executor(executor("alive-here"))  # this process
    store.register_executor(executor("dead-here", pid=DEAD_PID))
    far.register_executor(executor("far", host="elsewhere.example"))
    owners = {
        "a-unowned": None,
        "b-alive-here": "alive-here",
        "c-dead-here": "dead-here",
        "d-far": "far",
        "e-mine": "me",
        "f-gone": "never-registered",
    }
    for i, (workflow_id, owner) in enumerate(owners.items()):
        store.create_workflow(workflow(workflow_id, owner, at=1000.0 + i))
    found = store.adoptable_workflows(lease("me", 30.0), 10)
    assert [w.workflow_id for w, _ in found] == ["a-unowned", "c-dead-here", "f-gone"]
    assert [owner.executor_id if owner else None for _, owner in found] == [None, "dead-here", None]
    time.sleep(0.3)
    found = store.adoptable_workflows(lease("me", 0.2), 10)  # far's lease ran out
    assert [w.workflow_id for w, _ in found] == ["a-unowned", "c-dead-here", "d-far", "f-gone"]
    assert [w.workflow_id for w, _ in store.adoptable_workflows(lease("me", 0.2), 2)] == [
        "a-unowned",
        "c-dead-here",
    ]
    unfinished = {w.workflow_id: owner for w, owner in store.unfinished_workflows()}
    assert set(unfinished) == set(owners)
    assert unfinished["a-unowned"] is None and unfinished["f-gone"] is None
    assert unfinished["d-far"].hostname == "elsewhere.example"
    assert unfinished["d-far"].heartbeat_age >= 0.3


def test_release_and_retire_make_workflows_adoptable(store):
    store.register_executor(executor("gone"))
    store.create_workflow(workflow("w1", "gone"))
    store.create_workflow(workflow("w2", "gone"))
    store.create_workflow(workflow("w3", "gone"))
    store.finish_workflow("w3", "gone", SUCCEEDED, "1", None)
    store.release_workflow("w1", "gone")
    assert store.get_workflow("w1").executor_id is None
    store.retire_executor("gone")
    assert store.get_workflow("w2").executor_id is None
    assert store.get_workflow("w3").executor_id == "gone"  # finished ones keep their owner
    assert {w.workflow_id: o for w, o in store.unfinished_workflows()} == {"w1": None, "w2": None}


def test_reopen_forgets_the_failure_and_keeps_earlier_steps(store):
    store.register_executor(executor("me"))
    store.create_workflow(workflow("w", "me"))
    store.record_step("w", "me", step(1))
    store.record_step("w", "me", StepRecord(2, "s2", FAILED, None, '{"e":2}', 3, 1.0, 2.0))
    store.finish_workflow("w", "me", FAILED, None, '{"e":2}')
    assert store.reopen_workflow("w") == 1
    reopened = store.get_workflow("w")
    assert (reopened.status, reopened.error, reopened.executor_id) == (PENDING, None, None)
    assert [s.position for s in store.list_steps("w")] == [1]


# -- branches: receives and events in work the workflow runs concurrently ---------------


def test_receives_and_events_are_recorded_in_their_branch(store):
    store.register_executor(executor("me"))
    store.create_workflow(workflow("w", "me"))
    store.send_message("w", "t", '"first"', None, time.time())
    store.record_step("w", "me", step(1))  # the workflow's own step 1
    later = time.time() + 60

    def receive(position: int, branch: str, deadline: float = later, first: bool = True):
        name = "autodurable.recv:t"
        return store.receive_message("w", "me", position, name, "t", deadline, first, branch)

    # Step 1 of branch "2" is not the workflow's step 1: both are kept.
    assert receive(1, "2").payload == '"first"'
    assert receive(2, "2.1").payload is None  # nothing more: waiting, in branch "2.1"
    waiting = {(s.branch, s.position): s for s in store.list_steps("w")}[("2.1", 2)]
    assert waiting.status == WAITING and waiting.finished_at is None
    timed_out = receive(2, "2.1", deadline=time.time() - 1, first=False)
    assert timed_out.timed_out
    event_step = StepRecord(3, "autodurable.set_event:k", SUCCEEDED, "null", None, 1, 1.0, 1.0,
                            branch="2")  # fmt: skip
    assert store.set_event("w", "me", "k", '"v"', event_step) == PENDING
    assert store.get_event("w", "k") == '"v"'
    assert [(s.branch, s.position, s.name, s.status, s.output) for s in store.list_steps("w")] == [
        ("", 1, "s1", SUCCEEDED, "1"),
        ("2", 1, "autodurable.recv:t", SUCCEEDED, '"first"'),
        ("2", 3, "autodurable.set_event:k", SUCCEEDED, "null"),
        ("2.1", 2, "autodurable.recv:t", TIMED_OUT, None),
    ]
    (message,) = store.list_messages("w")
    assert message.consumed_at_step == 1  # its position in branch "2"
    # A claim's history holds them in their branches, as they were written.
    claimed = store.claim_workflow("w", lease("me"), None)
    assert [(s.branch, s.position) for s in claimed.steps] == [
        ("", 1),
        ("2", 1),
        ("2", 3),
        ("2.1", 2),
    ]
    with pytest.raises(OwnershipLost, match=lost("w")):
        store.receive_message("w", "intruder", 4, "autodurable.recv", "t", later, True, "2")


# -- wake-ups -----------------------------------------------------------------------------


def test_subscriptions_wake_on_finish_and_release(backend):
    waiter, worker = backend.open(), backend.open()
    worker.register_executor(executor("worker"))
    for workflow_id in ("w1", "w2", "w3"):
        worker.create_workflow(workflow(workflow_id, "worker"))
    with waiter.subscribe("w1") as one, waiter.subscribe(None) as released:
        worker.finish_workflow("w2", "worker", SUCCEEDED, "1", None)  # neither's business
        worker.finish_workflow("w1", "worker", SUCCEEDED, "1", None)
        # PostgreSQL wakes by NOTIFY; SQLite wakes the waiters of its own process
        # (both stores are in this process here), and other processes poll.
        assert one.wait(30)
        worker.release_workflow("w3", "worker")
        assert released.wait(30)  # a release is news for the adopters
        assert not released.wait(0.2)  # finishing w1 and w2 was not
    assert waiter.get_workflow("w1").status == SUCCEEDED


def test_liveness_rule():
    fresh = executor("x", host="other-host")
    stale = ExecutorRecord("y", "other-host", 1, None, 0.0, time.time() - 60)
    assert is_alive(fresh, 30) and not is_alive(stale, 30)
    assert not is_alive(ExecutorRecord("z", "other-host", 1, None, 0.0, time.time(), 31.0), 30)
    assert is_alive(executor("self"), 30)
    assert not is_alive(executor("gone", pid=DEAD_PID), 30)
    me = Lease(uuid.uuid4().hex, 30.0, HOSTNAME)
    assert me.alive(executor(me.executor_id, pid=DEAD_PID))  # an executor is alive to itself
