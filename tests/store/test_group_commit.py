"""Group commit (`_store._group_commit`): steps recorded by several threads at the same
moment share a transaction, and nothing of what one step write promises changes.

On each store: a batch writes every row it is given with each writer's own
outcome (a fence failure, a cancelled workflow, a later attempt, a row written
before, a branch step, all in one batch next to ordinary rows); many threads
writing at once all get their rows, in batches; a writer alone writes alone.
SQLite shares commits with ``synchronous=full`` only (where a commit is an
fsync); with the default each writer commits its own, as the last test shows.
The SIGKILL side (a shared commit in flight) is in
tests/core/test_concurrency_crash.py, whose fan-outs record steps at once.
"""

from __future__ import annotations

import threading

import pytest

from autodurable._errors import OwnershipLost
from autodurable._store import (
    CANCELLED,
    PENDING,
    RETRYING,
    SUCCEEDED,
    StepRecord,
    Store,
    open_store,
)
from autodurable._store._group_commit import GroupCommit, Outcome

from ..helpers import Backend, executor, lost, step, workflow


@pytest.fixture
def store(backend: Backend) -> Store:
    """A store opened on each selected database (overrides conftest's runtime `store`),
    SQLite with ``synchronous=full``: where its commits are shared."""
    if backend.url.startswith("sqlite"):
        backend.url += "?synchronous=full"
    return backend.open()


def _owned(store: Store, *ids: str, owner: str = "me") -> None:
    store.register_executor(executor(owner))
    for workflow_id in ids:
        assert store.create_workflow(workflow(workflow_id, owner))


def _outcome(outcome: Outcome[str]) -> object:
    return outcome.value if outcome.error is None else type(outcome.error)


def _batch(store: Store, requests: list[tuple[str, str, StepRecord]]) -> list[Outcome[str]]:
    """The store's batch writer, as a leader calls it, on (workflow, executor, step)s."""
    return store.record_steps(requests)


def test_a_batch_gives_each_writer_its_own_outcome(store: Store) -> None:
    _owned(store, "a", "b", "c", "gone", "stopped")
    _owned(store, "theirs", owner="other")
    store.record_step("c", "me", step(1))  # written before: its retried write meets it
    store.cancel_workflow("stopped", '{"e": "cancelled"}')
    branch = StepRecord(1, "in-branch", SUCCEEDED, "7", None, 1, 1.0, 2.0, branch="3")
    retried = StepRecord(2, "s2", SUCCEEDED, '"second"', None, 2, 1.0, 2.0)
    store.record_step("b", "me", StepRecord(2, "s2", RETRYING, None, '{"e":1}', 1, 0.5, 0.9))
    outcomes = _batch(
        store,
        [
            ("a", "me", step(1)),
            ("theirs", "me", step(1)),  # the fence: not this executor's
            ("b", "me", branch),
            ("c", "me", step(1)),
            ("b", "me", retried),
            ("stopped", "me", step(1)),  # cancelled: recorded, and the status says so
            ("a", "me", step(2)),
            ("nowhere", "me", step(1)),
        ],
    )
    assert [_outcome(o) for o in outcomes] == [
        PENDING, OwnershipLost, PENDING, PENDING, PENDING, CANCELLED, PENDING, OwnershipLost,
    ]  # fmt: skip
    with pytest.raises(OwnershipLost, match=lost("theirs")):
        outcomes[1].get()
    assert [s.position for s in store.list_steps("a")] == [1, 2]
    assert sorted((s.name, s.branch, s.attempts) for s in store.list_steps("b")) == [
        ("in-branch", "3", 1),
        ("s2", "", 2),
    ]
    assert [s.output for s in store.list_steps("c")] == ["1"]  # one row, as written
    assert [s.position for s in store.list_steps("stopped")] == [1]
    assert store.list_steps("theirs") == []


def test_a_batch_holding_one_step_twice_keeps_the_later_write(store: Store) -> None:
    # As if the two were written one after the other: the second replaces the first.
    _owned(store, "twice")
    first = StepRecord(1, "s1", SUCCEEDED, '"first"', None, 1, 1.0, 2.0)
    later = StepRecord(1, "s1", SUCCEEDED, '"later"', None, 1, 1.0, 3.0)
    outcomes = _batch(
        store, [("twice", "me", first), ("twice", "me", step(2)), ("twice", "me", later)]
    )
    assert [_outcome(o) for o in outcomes] == [PENDING, PENDING, PENDING]
    assert [(s.position, s.output) for s in store.list_steps("twice")] == [(1, '"later"'), (2, "2")]


def test_threads_writing_at_once_share_commits_and_all_get_their_rows(store: Store) -> None:
    threads, steps = 16, 25
    ids = [f"w{k}" for k in range(threads)]
    _owned(store, *ids)
    batches: list[int] = []
    written = store._steps_written  # type: ignore[attr-defined]
    batch_writer = written._write_batch

    def counting(batch):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        return batch_writer(batch)

    written._write_batch = counting
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def writer(workflow_id: str) -> None:
        try:
            start.wait()
            for position in range(1, steps + 1):
                assert store.record_step(workflow_id, "me", step(position)) == PENDING
        except BaseException as exc:
            failures.append(exc)

    runners = [threading.Thread(target=writer, args=(i,)) for i in ids]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert failures == []
    for workflow_id in ids:
        assert [s.position for s in store.list_steps(workflow_id)] == list(range(1, steps + 1))
    assert batches and max(batches) > 1  # some writes did share a commit


def test_a_writer_alone_writes_alone_and_errors_reach_only_their_writer() -> None:
    seen: list[object] = []

    def one(request: str) -> str:
        seen.append(("one", request))
        if request == "bad":
            raise ValueError("bad row")
        return request.upper()

    def batch(requests):  # type: ignore[no-untyped-def]
        seen.append(("batch", list(requests)))
        return [Outcome(r.upper()) for r in requests]

    group: GroupCommit[str, str] = GroupCommit(one, batch)
    assert group.write("x") == "X"
    with pytest.raises(ValueError, match="bad row"):
        group.write("bad")
    assert group.write("y") == "Y"  # the lead was given up after the error
    assert seen == [("one", "x"), ("one", "bad"), ("one", "y")]


def test_sqlite_with_the_default_synchronous_mode_commits_each_write_alone(tmp_path) -> None:
    normal = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    full = open_store(f"sqlite:///{tmp_path / 'full.db'}?synchronous=full")
    try:
        assert normal._steps_written is None  # type: ignore[attr-defined]
        assert isinstance(full._steps_written, GroupCommit)  # type: ignore[attr-defined]
        _owned(normal, "w")
        assert normal.record_step("w", "me", step(1)) == PENDING
        assert [s.position for s in normal.list_steps("w")] == [1]
    finally:
        normal.close()
        full.close()


def test_workflows_finishing_at_once_each_get_their_own_outcome(store: Store) -> None:
    # On PostgreSQL finishes at the same moment share a transaction (a queue worker
    # ends many workflows together); on SQLite each is written alone. Either way each
    # writer gets its own workflow's outcome, and one that fails fails alone.
    ids = [f"f{k}" for k in range(20)]
    _owned(store, *ids, "stopped")
    _owned(store, "theirs", owner="other")
    assert store.cancel_workflow("stopped", '{"cancelled": true}') is not None
    finishes = getattr(store, "_finishes", None)
    batches: list[int] = []
    if finishes is not None:
        batch_writer = finishes._write_batch

        def counting(batch):
            batches.append(len(batch))
            return batch_writer(batch)

        finishes._write_batch = counting
    everyone = [*ids, "stopped", "theirs"]
    start = threading.Barrier(len(everyone))
    results: dict[str, object] = {}

    def finisher(workflow_id: str) -> None:
        start.wait()
        for _ in range(3 if workflow_id == "theirs" else 1):  # "theirs" keeps the others busy
            try:
                results[workflow_id] = store.finish_workflow(
                    workflow_id, "me", SUCCEEDED, f'"{workflow_id}"', None
                )
            except OwnershipLost:
                results[workflow_id] = OwnershipLost

    runners = [threading.Thread(target=finisher, args=(i,)) for i in everyone]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert results == {
        **dict.fromkeys(ids, SUCCEEDED),
        "stopped": CANCELLED,
        "theirs": OwnershipLost,
    }
    for workflow_id in ids:
        record = store.get_workflow(workflow_id)
        assert record is not None and (record.status, record.output) == (
            SUCCEEDED,
            f'"{workflow_id}"',
        )
    theirs = store.get_workflow("theirs")
    assert theirs is not None and theirs.status == PENDING and theirs.executor_id == "other"
    if finishes is not None:
        assert batches and max(batches) > 1  # some finishes did share a transaction


def test_a_batch_of_finishes_on_postgresql_gives_each_its_own_outcome(postgres_url: str) -> None:
    # PostgreSQL's batch writer of finishes, as a leader calls it (SQLite writes each
    # finish alone: the test above covers both).
    backend = Backend(postgres_url)
    store = backend.open()
    _owned(store, "a", "b", "stopped")
    _owned(store, "theirs", owner="other")
    store.cancel_workflow("stopped", '{"cancelled": true}')
    outcomes = store._finish_batch(  # type: ignore[attr-defined]
        [
            ("a", "me", SUCCEEDED, '"a"', None),
            ("theirs", "me", SUCCEEDED, "1", None),  # not ours: fails alone
            ("stopped", "me", SUCCEEDED, "1", None),  # cancelled meanwhile, still ours
            ("b", "me", "failed", None, '{"e": 1}'),
        ]
    )
    assert [_outcome(o) for o in outcomes] == [SUCCEEDED, OwnershipLost, CANCELLED, "failed"]
    b = store.get_workflow("b")
    assert b is not None and (b.status, b.error) == ("failed", '{"e": 1}')
    store.close()
