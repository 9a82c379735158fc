"""Messages and events, on SQLite and on PostgreSQL.

A message sent before the workflow waits (even before it exists) is kept;
two messages on a topic arrive in order, each once; a duplicate send with the
same idempotency key is delivered once; a recv timeout is recorded and, after
a SIGKILL while waiting, a restarted process waits only for the rest; a
cancellation stops a waiting recv; events are published by a workflow and
awaited from outside.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import autodurable
from autodurable._core._runtime import get_runtime
from autodurable._errors import AutodurableError, NondeterminismError, WorkflowCancelled
from autodurable._store import SUCCEEDED, TIMED_OUT, WAITING, open_store

from ..helpers import (
    Crash,
    child_env,
    crash_points,
    executor,
    maybe_crash,
    run_workflow,
    wait_until,
    workflow,
    write_script,
)

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()


@autodurable.step
def note(text):
    calls[text] += 1
    return text


@autodurable.workflow
def two_approvals(timeout):
    note("asked")
    first = autodurable.recv("approval", timeout=timeout)
    second = autodurable.recv("approval", timeout=timeout)
    other = autodurable.recv("other", timeout=0.1)
    note("decided")
    return [first, second, other]


def test_messages_sent_before_the_workflow_exists_are_received_in_order(database):
    autodurable.send("order-1", {"approved": True, "by": "ann"}, topic="approval")
    autodurable.send("order-1", {"approved": False, "by": "bob"}, topic="approval")
    started = time.monotonic()
    assert run_workflow(two_approvals, "order-1", 30) == [
        {"approved": True, "by": "ann"},
        {"approved": False, "by": "bob"},
        None,  # nothing on "other": timed out after 0.1 s
    ]
    assert time.monotonic() - started < 10
    steps = autodurable.get_workflow("order-1").steps()
    assert [(s.name, s.status) for s in steps] == [
        ("note", SUCCEEDED),
        ("autodurable.recv:approval", SUCCEEDED),
        ("autodurable.recv:approval", SUCCEEDED),
        ("autodurable.recv:other", TIMED_OUT),
        ("note", SUCCEEDED),
    ]
    messages = get_runtime().store.list_messages("order-1")
    assert [m.consumed_at_step for m in messages] == [2, 3]
    # Finished: running it again returns the recorded messages, waits for nothing.
    calls.clear()
    assert run_workflow(two_approvals, "order-1", 30)[0] == {"approved": True, "by": "ann"}
    assert calls == Counter()


def test_a_message_sent_while_the_workflow_waits_wakes_it(database):
    handle = autodurable.start(autodurable.options(two_approvals, workflow_id="w"), 30)
    store = get_runtime().store
    wait_until(lambda: any(s.status == WAITING for s in store.list_steps("w")))
    started = time.monotonic()
    autodurable.send("w", "first", topic="approval")
    autodurable.send("w", "second", topic="approval")
    assert handle.result(30) == ["first", "second", None]
    assert time.monotonic() - started < 5  # woken, not a long poll
    waited = autodurable.get_workflow("w").steps()[1]
    assert waited.started_at < waited.finished_at  # its wait is its duration


def test_a_duplicate_send_with_the_same_idempotency_key_is_delivered_once(database):
    assert autodurable.send("dup", "yes", topic="approval", idempotency_key="webhook-7") is True
    assert autodurable.send("dup", "yes", topic="approval", idempotency_key="webhook-7") is False
    assert autodurable.send("other", "yes", topic="approval", idempotency_key="webhook-7") is True
    assert run_workflow(two_approvals, "dup", 0.2) == ["yes", None, None]
    assert len(get_runtime().store.list_messages("dup")) == 1


@autodurable.workflow
def notifier(target):
    autodurable.send(target, {"from": autodurable.workflow_id()}, topic="hello")
    return note("sent")


def test_send_in_workflow_code_is_a_step_sent_once(database):
    assert run_workflow(notifier, "n", "peer") == "sent"
    assert run_workflow(notifier, "n", "peer") == "sent"  # finished: recorded, nothing sent again
    (message,) = get_runtime().store.list_messages("peer")
    assert message.idempotency_key == "n:1" and message.topic == "hello"
    steps = autodurable.get_workflow("n").steps()
    assert [s.name for s in steps] == ["autodurable.send", "note"] and steps[0].output is True


@autodurable.workflow
def waits_forever():
    return autodurable.recv("never", timeout=3600)


def test_cancelling_a_workflow_that_waits_for_a_message_stops_it_at_once(database):
    handle = autodurable.start(autodurable.options(waits_forever, workflow_id="forever"))
    store = get_runtime().store
    wait_until(lambda: bool(store.list_steps("forever")))
    started = time.monotonic()
    assert handle.cancel("nobody will answer")
    with pytest.raises(WorkflowCancelled, match="nobody will answer"):
        handle.result(30)
    assert time.monotonic() - started < 3
    autodurable.send("forever", "late", topic="never")  # kept for when it is resumed
    assert handle.resume().result(30) == "late"
    assert autodurable.get_workflow("forever").status() == SUCCEEDED


@autodurable.workflow
async def async_waiter():
    first, second = await asyncio.gather(
        autodurable.recv_async("a", timeout=30), autodurable.recv_async("b", timeout=30)
    )
    return [first, second]


def test_recv_async_in_an_async_workflow(database):
    autodurable.send("aw", 2, topic="b")
    threading.Timer(0.2, autodurable.send, ("aw", 1), {"topic": "a"}).start()
    assert asyncio.run(run_workflow(async_waiter, "aw")) == [1, 2]
    names = [s.name for s in autodurable.get_workflow("aw").steps()]
    assert names == ["autodurable.recv:a", "autodurable.recv:b"]  # positions in call order


@autodurable.workflow
async def async_inbox():
    return await autodurable.recv_async("inbox", timeout=60)


def test_async_workflows_waiting_for_messages_hold_no_threads(database):
    # More waiters than the default executor has threads (min(32, cpus + 4)): a wait
    # holding a thread each would keep the last ones waiting for the first to end.
    waiters = (os.cpu_count() or 1) + 12
    store = get_runtime().store
    ids = [f"inbox-{k}" for k in range(waiters)]
    threads_while_waiting: list[int] = []

    def answer():
        wait_until(lambda: all(_waits_recorded(store, i) for i in ids))
        threads_while_waiting.append(threading.active_count())
        for k, workflow_id in enumerate(ids):
            autodurable.send(workflow_id, k, topic="inbox")

    async def everyone():
        return await asyncio.gather(*(run_workflow(async_inbox, i) for i in ids))

    before = threading.active_count()
    answering = threading.Thread(target=answer)
    answering.start()
    started = time.monotonic()
    assert asyncio.run(everyone()) == list(range(waiters))
    assert time.monotonic() - started < 20  # each woken by its message, not by a timeout
    answering.join(30)
    # The answering thread, and at most a store's writer or listener: no thread per wait.
    assert threads_while_waiting[0] <= before + 3, (before, threads_while_waiting)


@autodurable.workflow
def ready(k):
    autodurable.set_event("ready", k)


def test_async_callers_waiting_for_events_and_results_hold_no_threads(database):
    waiters = (os.cpu_count() or 1) + 12
    store = get_runtime().store
    # Workflows another executor of this host runs: their results are waited for.
    store.register_executor(executor("elsewhere"))
    for k in range(waiters):
        assert store.create_workflow(workflow(f"result-{k}", "elsewhere"))
    threads_while_waiting: list[int] = []

    def finish_all():
        for k in range(waiters):
            run_workflow(ready, f"ready-{k}", k)  # sets the event waited for
            store.finish_workflow(f"result-{k}", "elsewhere", SUCCEEDED, str(k * 10), None)

    async def wait_for_all():
        events = [autodurable.get_event_async(f"ready-{k}", "ready", 30) for k in range(waiters)]
        results = [autodurable.get_workflow(f"result-{k}").result_async(30) for k in range(waiters)]
        tasks = [asyncio.ensure_future(w) for w in [*events, *results]]
        await asyncio.sleep(0.5)  # all of them waiting by now
        threads_while_waiting.append(threading.active_count())
        threading.Thread(target=finish_all).start()
        return await asyncio.gather(*tasks)

    before = threading.active_count()
    got = asyncio.run(wait_for_all())
    assert got == list(range(waiters)) + [k * 10 for k in range(waiters)]
    assert threads_while_waiting[0] <= before + 2, (before, threads_while_waiting)


def _waits_recorded(store, workflow_id: str) -> bool:
    return any(s.status == WAITING for s in store.list_steps(workflow_id))


# -- events --------------------------------------------------------------------------------


@autodurable.workflow
def publisher(gate_topic):
    autodurable.set_event("status", "waiting for approval")
    autodurable.set_event("amount", 1250)
    decision = autodurable.recv(gate_topic, timeout=30)
    autodurable.set_event("status", f"decided: {decision}")
    return note("published")


def test_events_are_published_and_awaited_from_outside(database):
    handle = autodurable.start(autodurable.options(publisher, workflow_id="pub"), "go")
    assert autodurable.get_event("pub", "status", timeout=30) == "waiting for approval"
    assert autodurable.get_event("pub", "amount", timeout=30) == 1250
    assert autodurable.get_event("pub", "missing", timeout=0.2) is None
    threading.Timer(0.2, autodurable.send, ("pub", "yes"), {"topic": "go"}).start()
    handle.result(30)
    assert autodurable.get_event("pub", "status", timeout=0) == "decided: yes"
    started = time.monotonic()
    assert autodurable.get_event("pub", "never-set", timeout=30) is None  # it has ended
    assert time.monotonic() - started < 5
    assert get_runtime().store.list_events("pub") == {
        "amount": "1250",
        "status": '"decided: yes"',
    }


@autodurable.workflow
def reader(source):
    return autodurable.get_event(source, "status", timeout=5)


def test_get_event_in_workflow_code_is_recorded(database):
    run_workflow(publisher_done, "src")
    assert run_workflow(reader, "r", "src") == "done"
    autodurable.get_workflow("src").delete()
    assert run_workflow(reader, "r", "src") == "done"  # replayed from the record
    assert [s.name for s in autodurable.get_workflow("r").steps()] == [
        "autodurable.get_event:status"
    ]


@autodurable.workflow
def publisher_done():
    autodurable.set_event("status", "done")


def test_bad_input_is_refused_clearly(database):
    with pytest.raises(AutodurableError, match="call it in workflow code"):
        autodurable.recv()
    with pytest.raises(AutodurableError, match="call it in workflow code"):
        autodurable.set_event("k", 1)
    with pytest.raises(AutodurableError, match="cannot be None"):
        autodurable.send("w", None)
    with pytest.raises(AutodurableError, match="topic must be a non-empty string"):
        autodurable.send("w", 1, topic="")
    with pytest.raises(AutodurableError, match="workflow_id must be a non-empty string"):
        autodurable.send("", 1)
    with pytest.raises(AutodurableError, match="timeout must be a number"):
        autodurable.get_event("w", "k", timeout=-1)
    assert get_runtime().store.list_messages("w") == []


# -- in work the workflow runs concurrently (branches) ----------------------------------------


def review(item):
    """Work the workflow runs in a thread pool: a branch that asks, waits and tells."""
    note(f"asked {item}")
    autodurable.set_event(f"asked {item}", True)
    decision = autodurable.recv(item, timeout=0.2 if item == "late" else 30)
    autodurable.set_event(f"decided {item}", decision)
    return decision


@autodurable.workflow
def reviews(items):
    with ThreadPoolExecutor(len(items)) as pool:
        decisions = list(pool.map(review, items))  # branches "1", "2", "3"
    maybe_crash("after reviews")
    note("decided")
    return decisions


def test_a_pool_branch_receives_and_sets_events_and_is_replayed_after_a_crash(database):
    autodurable.send("rv", "yes", topic="a")
    autodurable.send("rv", "no", topic="b")
    crash_points.add("after reviews")
    with pytest.raises(Crash, match=r"^after reviews$"):
        run_workflow(reviews, "rv", ["a", "b", "late"])
    store = get_runtime().store
    recorded = store.list_steps("rv")
    expected = []
    for branch, item, outcome in (("1", "a", SUCCEEDED), ("2", "b", SUCCEEDED),
                                  ("3", "late", TIMED_OUT)):  # fmt: skip
        expected += [
            (branch, 1, "note", SUCCEEDED),
            (branch, 2, f"autodurable.set_event:asked {item}", SUCCEEDED),
            (branch, 3, f"autodurable.recv:{item}", outcome),
            (branch, 4, f"autodurable.set_event:decided {item}", SUCCEEDED),
        ]
    assert [(s.branch, s.position, s.name, s.status) for s in recorded] == expected
    assert [(m.payload, m.consumed_at_step) for m in store.list_messages("rv")] == [
        ('"yes"', 3),
        ('"no"', 3),
    ]
    events = {"asked a": "true", "asked b": "true", "asked late": "true",
              "decided a": '"yes"', "decided b": '"no"', "decided late": "null"}  # fmt: skip
    assert store.list_events("rv") == events
    autodurable.send("rv", "too late", topic="late")  # its recv timed out: not received now
    calls.clear()
    started = time.monotonic()
    assert run_workflow(reviews, "rv", ["a", "b", "late"]) == ["yes", "no", None]
    assert time.monotonic() - started < 5  # replayed: nothing waited
    assert calls == Counter(decided=1)
    after = store.list_steps("rv")
    assert after[:-1] == recorded  # nothing in the branches was written again
    assert (after[-1].branch, after[-1].position, after[-1].name) == ("", 4, "note")
    assert store.list_events("rv") == events
    assert [m.consumed_at for m in store.list_messages("rv")][2] is None
    assert autodurable.get_workflow("rv").status() == SUCCEEDED


async def review_async(item):
    """An asyncio task the workflow creates: a branch that tells, then waits."""
    autodurable.set_event(f"asked {item}", True)
    return await autodurable.recv_async(item, timeout=30)


@autodurable.workflow
async def async_reviews():
    return await asyncio.gather(review_async("a"), review_async("b"))  # branches "1", "2"


def test_tasks_waiting_for_messages_are_woken_and_replayed(database):
    store = get_runtime().store

    def answer():
        wait_until(lambda: sum(s.status == WAITING for s in store.list_steps("ar")) == 2)
        autodurable.send("ar", 2, topic="b")
        autodurable.send("ar", 1, topic="a")

    answering = threading.Thread(target=answer)
    answering.start()
    assert asyncio.run(run_workflow(async_reviews, "ar")) == [1, 2]
    answering.join(30)
    assert [(s.branch, s.position, s.name, s.status) for s in store.list_steps("ar")] == [
        ("1", 1, "autodurable.set_event:asked a", SUCCEEDED),
        ("1", 2, "autodurable.recv:a", SUCCEEDED),
        ("2", 1, "autodurable.set_event:asked b", SUCCEEDED),
        ("2", 2, "autodurable.recv:b", SUCCEEDED),
    ]
    assert asyncio.run(run_workflow(async_reviews, "ar")) == [1, 2]  # from the record


changed = {"code": False}


def tell_or_ask(_):
    if changed["code"]:
        return autodurable.recv("question", timeout=0)
    return autodurable.set_event("told", 1)


@autodurable.workflow
def tells_in_a_branch():
    with ThreadPoolExecutor(1) as pool:
        pool.submit(tell_or_ask, 0).result()  # branch "1"
    maybe_crash("after telling")


def test_a_changed_call_in_a_branch_is_a_nondeterminism_error_naming_its_place(database):
    changed["code"] = False
    crash_points.add("after telling")
    with pytest.raises(Crash, match=r"^after telling$"):
        run_workflow(tells_in_a_branch, "tb")
    changed["code"] = True
    with pytest.raises(NondeterminismError, match=r"step 1\.1: the recorded history") as caught:
        run_workflow(tells_in_a_branch, "tb")
    assert caught.value.position == "1.1"
    assert caught.value.recorded == "autodurable.set_event:told"


# -- a recv timeout across a SIGKILL -----------------------------------------------------------

WAITER = """
import os, time
import autodurable

autodurable.configure(database_url=os.environ["URL"])

@autodurable.workflow
def wait_for_nothing():
    return autodurable.recv("never", timeout=float(os.environ["TIMEOUT"]))

started = time.time()
result = autodurable.options(wait_for_nothing, workflow_id="waiter")()
print(repr(result), time.time() - started, flush=True)
"""


def test_a_recv_timeout_survives_a_sigkill_and_waits_only_for_the_rest(database, tmp_path: Path):
    timeout = 3.0
    script = write_script(tmp_path, "waiter.py", WAITER)
    env = child_env(URL=database, TIMEOUT=str(timeout))
    first = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env)
    store = open_store(database)
    try:
        wait_until(lambda: bool(store.get_workflow("waiter") and store.list_steps("waiter")))
        (waiting,) = store.list_steps("waiter")
        assert waiting.status == WAITING
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        time.sleep(0.5)  # dead for a while: that time counts against the timeout too
        second = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        result, elapsed = second.stdout.split()
        assert result == "None"
        assert float(elapsed) < timeout - 0.8  # only the rest of the timeout
        (timed_out,) = store.list_steps("waiter")
        assert timed_out.status == TIMED_OUT and timed_out.started_at == waiting.started_at
        waited = timed_out.finished_at - waiting.started_at
        assert timeout - 0.05 <= waited < timeout + 2.0
        assert store.get_workflow("waiter").status == SUCCEEDED
    finally:
        first.kill()
        first.wait()
        store.close()


EXITING = """
import os
import autodurable

autodurable.configure(database_url=os.environ["URL"])

@autodurable.workflow
def wait_long():
    return autodurable.recv("answer", timeout=3600)

handle = autodurable.start(autodurable.options(wait_long, workflow_id="long"))
if os.environ.get("RESULT"):
    print(handle.result(30), flush=True)
else:
    while not [s for s in handle.steps() if s.status == "waiting"]:
        pass
    print("waiting", flush=True)
"""  # the main thread ends: the process exits while the workflow waits


def test_a_process_that_exits_while_its_workflow_waits_releases_it(database, tmp_path: Path):
    script = write_script(tmp_path, "exiting.py", EXITING)

    def run_script(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=child_env(URL=database, **env),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    started = time.monotonic()
    done = run_script()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["waiting"] and time.monotonic() - started < 20
    record = get_runtime().store.get_workflow("long")
    assert (record.status, record.executor_id) == ("pending", None)  # released, not lost
    autodurable.send("long", 42, topic="answer")
    again = run_script(RESULT="1")  # the program started again: it waits no more
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["42"]
