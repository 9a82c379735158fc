"""Operating workflows from Python, on SQLite and on PostgreSQL.

Cancel while a step runs, resume after a cancellation and after a failure,
fork from the middle with changed code, list/show/steps, retention,
workflow deadlines and application versions; bad input is refused with a
clear message and changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import autodurable
from autodurable._control import _operations as ops
from autodurable._core._runtime import get_runtime
from autodurable._errors import AutodurableError, WorkflowCancelled, WorkflowNotFound
from autodurable._store import CANCELLED, FAILED, PENDING, SUCCEEDED, WorkflowRecord, open_store

from ..helpers import Crash, crash_points, maybe_crash

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

calls: Counter[str] = Counter()
gate = threading.Event()
running = threading.Event()
code = {"rate": 1.0, "broken": False}


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    gate.clear()
    running.clear()
    code.update(rate=1.0, broken=False)
    yield
    gate.set()  # never leave a step blocked


def run(fn, workflow_id, *args, **options):
    return autodurable.options(fn, workflow_id=workflow_id, **options)(*args)


@autodurable.step
def prepare(x):
    calls["prepare"] += 1
    return x + 1


@autodurable.step
def slow(x):
    calls["slow"] += 1
    running.set()
    assert gate.wait(30)
    return x * 2


@autodurable.step
def finish(x):
    calls["finish"] += 1
    return f"done {x}"


@autodurable.workflow
def pipeline(x):
    return finish(slow(prepare(x)))


def test_cancel_while_a_step_runs_then_resume(database):
    handle = autodurable.start(autodurable.options(pipeline, workflow_id="p"), 1)
    assert running.wait(30)
    assert handle.cancel("stop it") is True
    # Durable and visible at once, to any process, while the step still runs.
    other = open_store(database)
    assert other.get_workflow("p").status == CANCELLED
    gate.set()
    with pytest.raises(WorkflowCancelled) as stopped:
        handle.result(30)
    assert stopped.value.reason == "stop it" and stopped.value.workflow_id == "p"
    # The step that was running finished and is recorded; the next one never ran.
    assert [(s.name, s.status) for s in handle.steps()] == [
        ("prepare", SUCCEEDED),
        ("slow", SUCCEEDED),
    ]
    assert calls == Counter(prepare=1, slow=1)
    info = handle.info()
    assert (info.status, info.error_message, info.executor_id) == (CANCELLED, "stop it", None)
    assert info.error_type == "autodurable._errors:WorkflowCancelled"
    assert handle.cancel() is False  # cancelled already
    with pytest.raises(WorkflowCancelled, match=r"^workflow 'p' was cancelled: stop it$"):
        run(pipeline, "p", 1)  # calling it again does not run it
    assert calls == Counter(prepare=1, slow=1)

    resumed = handle.resume()
    assert resumed.result(30) == "done 4"
    assert calls == Counter(prepare=1, slow=1, finish=1)  # nothing ran twice
    assert other.get_workflow("p").status == SUCCEEDED
    other.close()


@autodurable.step
def flaky(x):
    calls["flaky"] += 1
    if code["broken"]:
        raise ValueError(f"cannot handle {x}")
    return x * 100


@autodurable.workflow
def fragile(x):
    return flaky(prepare(x))


def test_resume_after_a_failure_runs_the_failed_step_again(database):
    code["broken"] = True
    with pytest.raises(ValueError, match="cannot handle 2"):
        run(fragile, "f", 1)
    info = autodurable.get_workflow("f").info()
    assert info.status == FAILED and info.error_type == "builtins:ValueError"
    assert info.error_message == "cannot handle 2" and "flaky" in info.traceback
    code["broken"] = False  # the fix
    assert autodurable.get_workflow("f").resume().result(30) == 200
    assert calls == Counter(prepare=1, flaky=2)


@autodurable.step
def price(x):
    calls["price"] += 1
    return x * 10


@autodurable.step
def tax(amount):
    calls["tax"] += 1
    return amount * code["rate"]


@autodurable.step
def total(amount, taxes):
    calls["total"] += 1
    return amount + taxes


@autodurable.workflow
def invoice(x):
    amount = price(x)
    return total(amount, tax(amount))


def test_fork_from_the_middle_runs_the_changed_code_from_that_step(database):
    assert run(invoice, "inv", 3) == 60.0  # the bug: a tax rate of 100%
    code["rate"] = 0.2  # the fix
    forked = autodurable.get_workflow("inv").fork(2, workflow_id="inv-fixed")
    assert forked.workflow_id == "inv-fixed"
    assert forked.result(30) == 36.0
    assert calls == Counter(price=1, tax=2, total=2)  # step 1 was reused, not run again
    info = forked.info()
    assert (info.forked_from, info.forked_at_step, info.status) == ("inv", 2, SUCCEEDED)
    assert info.inputs == autodurable.get_workflow("inv").info().inputs
    steps = forked.steps()
    assert [s.output for s in steps] == [30, 6.0, 36.0]
    original = autodurable.get_workflow("inv")
    assert original.result() == 60.0 and len(original.steps()) == 3  # left as it was


def priced(x):
    """Work the workflow runs in a thread pool: a branch of two steps."""
    return tax(price(x))


@autodurable.workflow
def batch(xs):
    first = prepare(xs[0])  # its own step 1
    with ThreadPoolExecutor(2) as pool:
        taxes = list(pool.map(priced, xs))  # branches "2" and "3" (positions 2 and 3)
    return [first, *taxes]


def test_steps_of_concurrent_work_have_a_branch_and_a_place(database):
    assert run(batch, "b", [1, 2]) == [2, 10.0, 20.0]
    steps = autodurable.get_workflow("b").steps()
    assert [(s.branch, s.position, s.place, s.name, s.output) for s in steps] == [
        ("", 1, "1", "prepare", 2),
        ("2", 1, "2.1", "price", 10),
        ("2", 2, "2.2", "tax", 10.0),
        ("3", 1, "3.1", "price", 20),
        ("3", 2, "3.2", "tax", 20.0),
    ]
    as_json = steps[3].to_json()
    assert (as_json["position"], as_json["branch"], as_json["place"]) == (1, "3", "3.1")
    assert steps[0].to_json()["place"] == "1" and steps[0].to_json()["branch"] == ""


def test_fork_counts_the_positions_where_branches_started(database):
    assert run(batch, "b", [1, 2]) == [2, 10.0, 20.0]
    assert calls == Counter(prepare=1, price=2, tax=2)
    code["rate"] = 0.5  # the fix
    # From step 3: the branch started at 3 runs again, the one started at 2 is replayed.
    calls.clear()
    forked = autodurable.get_workflow("b").fork(3, workflow_id="b-3")
    assert forked.result(30) == [2, 10.0, 10.0]
    assert calls == Counter(price=1, tax=1)
    assert [s.place for s in forked.steps()] == ["1", "2.1", "2.2", "3.1", "3.2"]
    # From step 2: both branches run again.
    calls.clear()
    assert autodurable.get_workflow("b").fork(2, workflow_id="b-2").result(30) == [2, 5.0, 10.0]
    assert calls == Counter(price=2, tax=2)
    # The store copies what the fork replays: step 1 and the branch started at 2.
    copied, info = ops.fork("b", 3, new_id="b-3-later")
    assert (copied, info.forked_at_step, info.status) == (3, 3, PENDING)
    assert [s.place for s in ops.workflow_steps("b-3-later")] == ["1", "2.1", "2.2"]
    # Step 3 is the last one (its steps 3.1 and 3.2 are part of it); 4 is refused.
    with pytest.raises(AutodurableError, match="has steps recorded up to step 3: --from-step"):
        ops.fork("b", 4)


def test_bad_input_is_refused_clearly_and_changes_nothing(database):
    assert run(invoice, "inv", 1) == 20.0
    before = [(i.workflow_id, i.status, i.updated_at) for i in ops.list_workflows()]
    for call in (
        lambda: autodurable.get_workflow("nope"),
        lambda: ops.workflow_info("nope"),
        lambda: ops.workflow_steps("nope"),
        lambda: ops.cancel("nope"),
        lambda: ops.resume("nope"),
        lambda: ops.fork("nope", 1),
        lambda: ops.delete("nope"),
    ):
        with pytest.raises(WorkflowNotFound, match="no workflow with id 'nope'"):
            call()
    with pytest.raises(
        AutodurableError, match="has steps recorded up to step 3: --from-step takes 1 to 3"
    ):
        autodurable.get_workflow("inv").fork(4)
    with pytest.raises(AutodurableError, match="takes 1 to 3"):
        ops.fork("inv", 0)
    with pytest.raises(AutodurableError, match="has succeeded; there is nothing to resume"):
        autodurable.get_workflow("inv").resume()
    with pytest.raises(AutodurableError, match="exists already"):
        ops.fork("inv", 1, new_id="inv")
    with pytest.raises(AutodurableError, match="unknown status 'finished'"):
        autodurable.list_workflows(status="finished")
    after = [(i.workflow_id, i.status, i.updated_at) for i in ops.list_workflows()]
    assert after == before and calls == Counter(price=1, tax=1, total=1)


def test_a_pending_workflow_is_not_resumed_or_deleted_without_force(database):
    crash_points.add("between")
    with pytest.raises(Crash, match=r"^between$"):
        run(interrupted, "i", 5)
    handle = autodurable.get_workflow("i")
    with pytest.raises(AutodurableError, match="pending already"):
        handle.resume()
    with pytest.raises(AutodurableError, match="cancel it first"):
        handle.delete()
    assert handle.status() == PENDING
    handle.delete(force=True)
    with pytest.raises(WorkflowNotFound, match=f"^no workflow with id {handle.workflow_id!r} in "):
        handle.status()


@autodurable.workflow
def interrupted(x):
    first = prepare(x)
    maybe_crash("between")
    return finish(first)


def test_list_show_and_steps(database):
    assert run(invoice, "a", 1) == 20.0
    code["broken"] = True
    with pytest.raises(ValueError, match="cannot handle 2"):
        run(fragile, "b", 1)
    cut = time.time()
    time.sleep(0.01)
    assert run(pipeline_fast, "c", 2) == "done 3"
    autodurable.get_workflow("c").info()
    assert [i.workflow_id for i in autodurable.list_workflows()] == ["c", "b", "a"]
    assert [i.workflow_id for i in autodurable.list_workflows(status="failed")] == ["b"]
    assert [i.workflow_id for i in autodurable.list_workflows(status=["failed", "succeeded"])] == [
        "c",
        "b",
        "a",
    ]
    assert [i.workflow_id for i in autodurable.list_workflows(name="*:invoice")] == ["a"]
    assert [i.workflow_id for i in autodurable.list_workflows(name=f"{__name__}:fragile")] == ["b"]
    assert [i.workflow_id for i in autodurable.list_workflows(since=cut)] == ["c"]
    assert [i.workflow_id for i in autodurable.list_workflows(until=cut)] == ["b", "a"]
    assert [i.workflow_id for i in autodurable.list_workflows(limit=1, offset=1)] == ["b"]

    info = autodurable.get_workflow("a").info()
    assert info.name == f"{__name__}:invoice" and info.inputs == {"args": [1], "kwargs": {}}
    assert (info.status, info.output, info.error_type) == (SUCCEEDED, 20.0, None)
    assert info.created_at <= info.updated_at == info.ended_at and info.duration >= 0
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    assert info.app_version == digest  # the version of this module's code
    as_json = info.to_json()
    assert as_json["inputs"] == {"args": [1], "kwargs": {}} and as_json["error"] is None
    steps = autodurable.get_workflow("a").steps()
    assert [(s.position, s.name, s.status, s.attempts, s.output) for s in steps] == [
        (1, "price", SUCCEEDED, 1, 10),
        (2, "tax", SUCCEEDED, 1, 10.0),
        (3, "total", SUCCEEDED, 1, 20.0),
    ]
    assert all(s.duration is not None and s.duration >= 0 for s in steps)
    failed = autodurable.get_workflow("b").steps()[-1]
    assert (failed.status, failed.error_type) == (FAILED, "builtins:ValueError")


@autodurable.workflow
def pipeline_fast(x):
    return finish(prepare(x))


def test_retention_deletes_only_what_ended_long_enough_ago(database):
    for workflow_id in ("old-1", "old-2"):
        run(pipeline_fast, workflow_id, 1)
    crash_points.add("between")
    with pytest.raises(Crash, match=r"^between$"):
        run(interrupted, "old-pending", 1)
    autodurable.send("old-2", {"late": True})
    time.sleep(0.3)
    run(pipeline_fast, "new", 1)
    assert autodurable.delete_workflows(0.2) == 2
    remaining = {i.workflow_id for i in autodurable.list_workflows()}
    assert remaining == {"old-pending", "new"}
    assert get_runtime().store.list_messages("old-2") == []
    assert autodurable.delete_workflows(0.2, status="cancelled") == 0
    with pytest.raises(AutodurableError, match="never pending"):
        autodurable.delete_workflows(0, status="pending")
    with pytest.raises(AutodurableError, match="never pending or queued"):
        autodurable.delete_workflows(0, status=["succeeded", "enqueued"])


# -- deadlines --------------------------------------------------------------------------


@autodurable.step
def tick(i):
    calls["tick"] += 1
    time.sleep(0.05)
    return i


@autodurable.workflow(workflow_timeout=0.5)
def endless():
    for i in range(1000):
        tick(i)


@autodurable.workflow
def napping():
    autodurable.sleep(60)
    return "woke"


def test_a_workflow_timeout_cancels_at_the_deadline(database):
    started = time.monotonic()
    with pytest.raises(WorkflowCancelled, match="deadline passed"):
        run(endless, "e")
    assert time.monotonic() - started < 5
    info = autodurable.get_workflow("e").info()
    assert info.status == CANCELLED and info.deadline == pytest.approx(info.created_at + 0.5)
    assert 3 <= calls["tick"] <= 20  # stopped at a step boundary soon after 0.5 s
    assert len(autodurable.get_workflow("e").steps()) == calls["tick"]

    # A per-call timeout; the deadline interrupts a durable sleep.
    started = time.monotonic()
    deadline_passed = r"^workflow 'n' was cancelled: its deadline passed \(.*; workflow_timeout\)$"
    with pytest.raises(WorkflowCancelled, match=deadline_passed):
        run(napping, "n", workflow_timeout=0.3)
    assert time.monotonic() - started < 5
    assert autodurable.get_workflow("n").status() == CANCELLED


def test_a_deadline_that_passed_while_nobody_ran_the_workflow_cancels_it(database):
    crash_points.add("between")
    with pytest.raises(Crash, match=r"^between$"):
        run(interrupted, "late", 1, workflow_timeout=0.2)
    time.sleep(0.3)
    with pytest.raises(WorkflowCancelled, match="deadline passed"):
        run(interrupted, "late", 1)
    assert calls == Counter(prepare=1)  # nothing more ran
    # Resuming drops the deadline: it finishes.
    assert autodurable.get_workflow("late").resume().result(30) == "done 2"


def test_cancelling_a_sleeping_workflow_stops_it_at_once(database):
    handle = autodurable.start(autodurable.options(napping, workflow_id="z"))
    store = get_runtime().store
    deadline = time.monotonic() + 30
    while not store.list_steps("z"):  # its wake-up time is recorded: it sleeps
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    assert handle.cancel()
    with pytest.raises(WorkflowCancelled, match=r"^workflow 'z' was cancelled"):
        handle.result(30)
    assert time.monotonic() - started < 3


# -- versions -----------------------------------------------------------------------------


def orphan(workflow_id: str, name: str, version: str | None) -> None:
    now = time.time()
    record = WorkflowRecord(
        workflow_id, name, PENDING, '{"args":[4],"kwargs":{}}', None, None, None, now, now, version
    )
    get_runtime().store.create_workflow(record)


def test_recovery_resumes_only_workflows_of_this_code_version(database):
    name = f"{__name__}:pipeline_fast"
    here = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    orphan("same", name, here)
    orphan("unversioned", name, None)
    orphan("older", name, "0123456789ab")
    report = autodurable.recover()
    assert sorted(h.workflow_id for h in report.resumed) == ["same", "unversioned"]
    assert [u.workflow_id for u in report.other_versions] == ["older"]
    assert "version 0123456789ab" in report.other_versions[0].reason
    assert "resume older --run" in report.other_versions[0].reason
    report.wait(30)
    assert autodurable.get_workflow("older").status() == PENDING
    assert autodurable.get_workflow("unversioned").info().app_version == here  # took ours
    again = autodurable.recover(all_versions=True)
    assert [h.workflow_id for h in again.resumed] == ["older"]
    assert again.wait(30) == {"older": "done 5"}


def test_a_configured_version_is_recorded_on_every_workflow(database, monkeypatch):
    autodurable.configure(app_version="2024.05.1")
    run(pipeline_fast, "v", 1)
    assert autodurable.get_workflow("v").info().app_version == "2024.05.1"
    monkeypatch.setenv("AUTODURABLE_APP_VERSION", "from-env")
    from autodurable._core._runtime import _reset_overrides_for_tests

    _reset_overrides_for_tests()
    autodurable.configure(database_url=database)
    run(pipeline_fast, "w", 1)
    assert autodurable.get_workflow("w").info().app_version == "from-env"


@autodurable.workflow
async def async_nap():
    await autodurable.sleep_async(60)
    return "woke"


def test_cancelling_an_async_workflow_that_sleeps_stops_it(database):
    handle = autodurable.start(autodurable.options(async_nap, workflow_id="an"))
    store = get_runtime().store
    deadline = time.monotonic() + 30
    while not store.list_steps("an"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    assert handle.cancel()
    with pytest.raises(WorkflowCancelled, match=r"^workflow 'an' was cancelled"):
        handle.result(30)
    assert time.monotonic() - started < 3
    with pytest.raises(WorkflowCancelled, match="deadline passed"):
        asyncio.run(autodurable.options(async_nap, workflow_id="an2", workflow_timeout=0.3)())
