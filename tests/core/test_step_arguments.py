"""Replay checks a step's arguments: a recorded result is never handed to another call.

A step's record holds the digest of its arguments; a replayed call whose
arguments differ is a `NondeterminismError` (and runs nothing), rows without a
digest (written before it was kept) replay without the check, and a database
of the schema before the column opens with its steps. Every workflow test runs
on both stores (the `database` fixture).
"""

from __future__ import annotations

import asyncio
import sqlite3
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import autodurable
from autodurable._core._context import current_run
from autodurable._core._watch import arguments_shape, digest
from autodurable._store import PENDING, SUCCEEDED, StepRecord, open_store
from autodurable._store._migrations import load_migrations

from ..helpers import (
    Crash,
    crash_points,
    maybe_crash,
    postgres_at_schema,
    run_workflow,
    sqlite_at_schema,
)

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

calls: Counter[str] = Counter()
# What the workflows read without recording it: changed between a crash and the
# resume, it changes the arguments of the steps called with it.
source: list[int] = []


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    source[:] = [1, 2, 3]


@autodurable.step
def fetch(item, *, scale=1):
    calls["fetch"] += 1
    return item * scale * 10


@autodurable.step
async def fetch_async(items):
    calls["fetch_async"] += 1
    return sum(items)


def _strip_digests() -> None:
    """Rewrite the recorded steps of the running workflow as an old version wrote them."""
    if "strip" not in crash_points:
        return
    run = current_run()
    store = run.runtime.store
    for recorded in store.list_steps(run.workflow_id):
        recorded.arguments = None
        store.record_step(run.workflow_id, run.executor_id, recorded)


@autodurable.workflow
def reads_source():
    first = fetch(source[0])
    second = fetch(len(source), scale=2)
    _strip_digests()
    maybe_crash("reads_source")
    return first, second, fetch(99)


@autodurable.workflow
async def reads_source_async():
    total = await fetch_async(list(source))
    maybe_crash("reads_source_async")
    return total


@autodurable.workflow
def fans_out():
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(fetch, list(source)))  # positions taken at submission
    maybe_crash("fans_out")
    return results


def crashed(fn, workflow_id, point):
    crash_points.add(point)
    with pytest.raises(Crash) as crash:
        result = run_workflow(fn, workflow_id)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    assert crash.value.args == (point,)  # it stopped where the test armed it


def test_steps_record_the_digest_of_their_arguments(database, store):
    assert run_workflow(reads_source, "w") == (10, 60, 990)
    # Each record keeps "<digest of the step's module>:<digest of its arguments>".
    recorded = [(s.name, *s.arguments.split(":")) for s in store.list_steps("w")]
    module = f"{zlib.crc32(__name__.encode()):08x}"
    assert recorded == [
        ("fetch", module, digest(arguments_shape((1,), {}))),
        ("fetch", module, digest(arguments_shape((3,), {"scale": 2}))),
        ("fetch", module, digest(arguments_shape((99,), {}))),
    ]


def test_unchanged_arguments_replay_the_recorded_results(database, store):
    crashed(reads_source, "same", "reads_source")
    assert calls == Counter(fetch=2)
    assert run_workflow(reads_source, "same") == (10, 60, 990)
    assert calls == Counter(fetch=3)  # only the step after the crash ran
    assert store.get_workflow("same").status == SUCCEEDED


def test_a_step_replayed_with_other_arguments_raises_and_runs_nothing(database, store):
    crashed(reads_source, "changed", "reads_source")
    source[0] = 5  # the unrecorded read returns something else on the resume
    with pytest.raises(autodurable.NondeterminismError) as info:
        run_workflow(reads_source, "changed")
    err = info.value
    assert (err.position, err.recorded, err.current) == (1, "fetch", "fetch")
    assert err.arguments == (digest(arguments_shape((1,), {})), digest(arguments_shape((5,), {})))
    message = str(err)
    assert "'changed'" in message and "step 1" in message and "'fetch'" in message
    assert "other arguments" in message and "new workflow id" in message
    assert not isinstance(err, Exception)
    assert calls == Counter(fetch=2)  # nothing ran again
    assert store.get_workflow("changed").status == PENDING
    source[0] = 1  # the old inputs back: it finishes
    assert run_workflow(reads_source, "changed") == (10, 60, 990)


def test_other_keyword_arguments_and_lengths_are_other_arguments(database, store):
    crashed(reads_source, "longer", "reads_source")
    source.append(4)  # the second step is now fetch(4, scale=2)
    with pytest.raises(autodurable.NondeterminismError) as info:
        run_workflow(reads_source, "longer")
    assert info.value.position == 2
    assert calls == Counter(fetch=2)


def test_an_async_step_replayed_with_other_arguments_raises(database, store):
    crashed(reads_source_async, "a", "reads_source_async")
    source[1] = 20
    with pytest.raises(autodurable.NondeterminismError) as info:
        asyncio.run(run_workflow(reads_source_async, "a"))
    assert (info.value.position, info.value.current) == (1, "fetch_async")
    assert calls == Counter(fetch_async=1)
    source[1] = 2
    assert asyncio.run(run_workflow(reads_source_async, "a")) == 6
    assert calls == Counter(fetch_async=1)


def test_steps_submitted_to_a_pool_are_checked_at_their_positions(database, store):
    crashed(fans_out, "pool", "fans_out")
    assert calls == Counter(fetch=3)
    assert run_workflow(fans_out, "pool") == [10, 20, 30]  # unchanged: replayed
    assert calls == Counter(fetch=3)
    crashed(fans_out, "pool2", "fans_out")
    source[2] = 7
    with pytest.raises(autodurable.NondeterminismError) as info:
        run_workflow(fans_out, "pool2")
    assert info.value.position == 3
    assert calls == Counter(fetch=6)


def test_rows_without_a_digest_replay_without_the_check(database, store):
    crash_points.add("strip")
    crashed(reads_source, "old", "reads_source")
    crash_points.discard("strip")
    assert [s.arguments for s in store.list_steps("old")] == [None, None]
    source[0] = 5  # not checked: the recorded result is replayed, as before the digest
    assert run_workflow(reads_source, "old") == (10, 60, 990)
    assert calls == Counter(fetch=3)


# -- migration --------------------------------------------------------------------------

_OLD_STEP = (
    "INSERT INTO steps (workflow_id, position, name, status, output, error, attempts, "
    "started_at, finished_at, executor_id) "
    "VALUES ('old', 1, 'a', 'succeeded', '7', NULL, 1, 1, 2, 'me')"
)


def _check_migrated(url: str) -> None:
    migrated = open_store(url)
    try:
        [old] = migrated.list_steps("old")
        assert (old.position, old.output, old.arguments) == (1, "7", None)
        step = StepRecord(2, "b", SUCCEEDED, "8", None, 1, 3, 4, arguments="0a1b2c3d")
        assert migrated.record_step("old", "me", step) == PENDING
        assert [s.arguments for s in migrated.list_steps("old")] == [None, "0a1b2c3d"]
    finally:
        migrated.close()


def test_an_sqlite_database_of_schema_4_opens_with_its_steps(tmp_path):
    path = tmp_path / "old.db"
    with sqlite_at_schema(path, 4) as conn:
        conn.execute(
            "INSERT INTO workflows (workflow_id, name, status, inputs, executor_id, "
            "created_at, updated_at) VALUES ('old', 'm:f', 'pending', '{}', 'me', 1, 2)"
        )
        conn.execute(_OLD_STEP)
    _check_migrated(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(load_migrations("sqlite"))


def test_a_postgresql_schema_of_version_3_opens_with_its_steps(postgres_url):
    with postgres_at_schema(postgres_url, 3) as conn:
        conn.execute(
            "INSERT INTO workflows (workflow_id, name, status, inputs, executor_id, "
            "created_at, updated_at) VALUES ('old', 'm:f', 'pending', '{}', 'me', 1, 2)"
        )
        conn.execute(_OLD_STEP)
    _check_migrated(postgres_url)
