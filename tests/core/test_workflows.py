"""Workflow and step semantics, in one process.

A crash is simulated here by a BaseException raised between steps: like a
killed process, it leaves the workflow pending. tests/core/test_crash.py does the
same with real SIGKILLs.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections import Counter

import pytest

import autodurable
from autodurable._store import FAILED, PENDING, SUCCEEDED

from ..helpers import Crash, crash_points, maybe_crash, run_workflow

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls():
    # Module state that tests change: every test (on every store) starts from the same code.
    calls.clear()
    code_version[0] = 1
    code_fixed.clear()


@autodurable.step
def add(a, b):
    calls["add"] += 1
    return a + b


@autodurable.step
def pair(x):
    calls["pair"] += 1
    return (x, [x], {"x": x})


@autodurable.workflow
def two_steps(x):
    first = add(x, 1)
    maybe_crash("two_steps")
    return add(first, 10), pair(first)


def test_records_inputs_steps_and_output(store):
    assert run_workflow(two_steps, "w", 1) == (12, (2, [2], {"x": 2}))
    record = store.get_workflow("w")
    assert record.status == SUCCEEDED
    assert record.name == f"{__name__}:two_steps"
    assert [(s.position, s.name, s.status) for s in store.list_steps("w")] == [
        (1, "add", SUCCEEDED),
        (2, "add", SUCCEEDED),
        (3, "pair", SUCCEEDED),
    ]


def test_finished_id_returns_recorded_result_without_running():
    first = run_workflow(two_steps, "done", 1)
    calls.clear()
    again = run_workflow(two_steps, "done", 1)
    assert again == first and type(again[1]) is tuple
    assert calls == Counter()


def test_unfinished_id_resumes_from_first_unrecorded_step(store):
    crash_points.add("two_steps")
    with pytest.raises(Crash, match=r"^two_steps$"):
        run_workflow(two_steps, "r", 5)
    assert store.get_workflow("r").status == PENDING
    assert store.get_workflow("r").executor_id is None  # released on the way out
    assert calls == Counter(add=1)
    assert run_workflow(two_steps, "r", 5) == (16, (6, [6], {"x": 6}))
    assert calls == Counter(add=2, pair=1)  # the first add was replayed, not re-run


def test_each_call_without_id_is_a_new_workflow(store):
    two_steps(1)
    two_steps(1)
    assert len(store.list_workflows()) == 2
    assert calls["add"] == 4


@autodurable.step
def fails(message):
    calls["fails"] += 1
    raise LookupError(message)


@autodurable.workflow
def catches_failure():
    try:
        fails("no such order")
    except LookupError as exc:
        caught = f"{type(exc).__name__}: {exc}"
    maybe_crash("catches_failure")
    return caught


def test_step_exception_is_recorded_and_replayed_with_type_and_message(store):
    crash_points.add("catches_failure")
    with pytest.raises(Crash, match=r"^catches_failure$"):
        run_workflow(catches_failure, "e")
    (step,) = store.list_steps("e")
    assert step.status == FAILED
    assert run_workflow(catches_failure, "e") == "LookupError: no such order"
    assert calls["fails"] == 1


@autodurable.workflow
def raises_from_workflow():
    add(1, 1)
    raise ValueError("bad order")


def test_failed_workflow_is_recorded_and_reraised_on_same_id(store):
    with pytest.raises(ValueError, match="bad order"):
        run_workflow(raises_from_workflow, "f")
    assert store.get_workflow("f").status == FAILED
    calls.clear()
    with pytest.raises(ValueError, match="bad order"):
        run_workflow(raises_from_workflow, "f")
    assert calls == Counter()


@autodurable.step
def other_step(x):
    return x


code_version = [1]


@autodurable.workflow
def changing():
    result = add(1, 1) if code_version[0] == 1 else other_step(1)
    maybe_crash("changing")
    return result


def test_nondeterminism_names_position_recorded_and_current(store):
    crash_points.add("changing")
    with pytest.raises(Crash, match=r"^changing$"):
        run_workflow(changing, "n")
    code_version[0] = 2  # the code changes before the workflow is resumed
    with pytest.raises(autodurable.NondeterminismError) as info:
        run_workflow(changing, "n")
    err = info.value
    assert (err.position, err.recorded, err.current) == (1, "add", "other_step")
    assert "step 1" in str(err) and "'add'" in str(err) and "'other_step'" in str(err)
    assert not isinstance(err, Exception)  # `except Exception` cannot swallow it
    assert store.get_workflow("n").status == PENDING


@autodurable.step
def outer_step():
    calls["outer"] += 1
    return add(2, 3)  # a step inside a step runs plainly


@autodurable.workflow
def nested():
    return outer_step()


def test_step_inside_step_runs_plainly(store):
    assert run_workflow(nested, "nest") == 5
    assert [s.name for s in store.list_steps("nest")] == ["outer_step"]


@autodurable.workflow
def inner_workflow(x):
    return add(x, 100)


@autodurable.workflow
def parent_workflow():
    return [inner_workflow(1), add(0, 0)]


def test_workflow_inside_workflow_runs_inline(store):
    assert run_workflow(parent_workflow, "p") == [101, 0]
    assert len(store.list_workflows()) == 1
    assert [(s.position, s.name) for s in store.list_steps("p")] == [(1, "add"), (2, "add")]


def test_step_outside_workflow_runs_plainly(store):
    assert add(1, 2) == 3
    assert store.list_workflows() == []


@autodurable.workflow
def keys():
    return autodurable.idempotency_key(), key_inside(), autodurable.workflow_id()


@autodurable.step
def key_inside():
    return autodurable.idempotency_key()


def test_idempotency_key_is_workflow_id_and_position():
    assert run_workflow(keys, "order-7") == ("order-7:1", "order-7:1", "order-7")
    assert autodurable.workflow_id() is None
    with pytest.raises(autodurable.AutodurableError, match="workflow code"):
        autodurable.idempotency_key()


class Account:
    def __init__(self, owner="ann"):
        self.owner = owner

    def __eq__(self, other):
        return isinstance(other, Account) and other.owner == self.owner

    @autodurable.step
    def balance(self, cents):
        calls["balance"] += 1
        return f"{self.owner}:{cents}"

    @classmethod
    @autodurable.step
    def bank(cls):
        calls["bank"] += 1
        return cls.__name__

    @staticmethod
    @autodurable.step
    def rate():
        calls["rate"] += 1
        return 0.5

    @classmethod
    @autodurable.workflow
    def report(cls, cents):
        return cls.bank(), cls.rate(), Account().balance(cents)


def test_methods_classmethods_staticmethods_as_steps_and_workflows(store):
    assert run_workflow(Account.report, "acct", 10) == ("Account", 0.5, "ann:10")
    assert [s.name for s in store.list_steps("acct")] == [
        "Account.bank",
        "Account.rate",
        "Account.balance",
    ]
    assert store.get_workflow("acct").name == f"{__name__}:Account.report"
    calls.clear()
    assert run_workflow(Account.report, "acct", 10) == ("Account", 0.5, "ann:10")
    assert calls == Counter()


def test_wrappers_keep_metadata_and_pickle_by_reference():
    assert two_steps.__name__ == "two_steps"
    assert two_steps.__qualname__ == "two_steps"
    assert two_steps.__module__ == __name__
    assert pickle.loads(pickle.dumps(two_steps)) is two_steps
    assert pickle.loads(pickle.dumps(add)) is add


def test_generators_are_refused():
    with pytest.raises(TypeError, match="generator"):

        @autodurable.step
        def numbers():
            yield 1


def test_workflow_rejects_step_options():
    with pytest.raises(autodurable.ConfigError, match="apply to steps"):
        autodurable.workflow(retries=3)


@autodurable.step
async def slow_echo(i, delay):
    await asyncio.sleep(delay)
    calls[f"echo{i}"] += 1
    return i


@autodurable.workflow
async def fan_out():
    # Finish in reverse order of the calls: positions still follow the calls.
    first = await asyncio.gather(*(slow_echo(i, 0.03 * (3 - i)) for i in range(3)))
    maybe_crash("fan_out")
    return first, await slow_echo(9, 0)


def test_async_gather_positions_follow_call_order_and_replay(store):
    crash_points.add("fan_out")
    with pytest.raises(Crash, match=r"^fan_out$"):
        asyncio.run(autodurable.options(fan_out, workflow_id="a")())
    steps = store.list_steps("a")
    assert [(s.position, s.output) for s in steps] == [(1, "0"), (2, "1"), (3, "2")]
    assert asyncio.run(autodurable.options(fan_out, workflow_id="a")()) == ([0, 1, 2], 9)
    assert calls == Counter(echo0=1, echo1=1, echo2=1, echo9=1)
    assert asyncio.iscoroutinefunction(fan_out) and asyncio.iscoroutinefunction(slow_echo)


def test_start_returns_handle_with_result_and_status(store):
    handle = autodurable.start(autodurable.options(two_steps, workflow_id="bg"), 2)
    assert handle.workflow_id == "bg"
    assert handle.result(timeout=10) == (13, (3, [3], {"x": 3}))
    assert handle.status() == SUCCEEDED
    assert autodurable.get_workflow("bg").result() == (13, (3, [3], {"x": 3}))
    with pytest.raises(autodurable.WorkflowNotFound, match=r"^no workflow with id 'missing' in "):
        autodurable.get_workflow("missing")


def test_start_async_workflow_and_await_result():
    handle = autodurable.start(fan_out)

    async def wait():
        return await handle.result_async(timeout=10)

    assert asyncio.run(wait()) == ([0, 1, 2], 9)


def test_start_refuses_plain_functions():
    with pytest.raises(TypeError, match="@workflow"):
        autodurable.start(len, [])


gate = threading.Event()


@autodurable.step
def wait_for_gate():
    calls["gate"] += 1
    assert gate.wait(10)
    return "opened"


@autodurable.workflow
def gated():
    return wait_for_gate()


def test_same_id_in_two_threads_runs_once():
    gate.clear()
    handle = autodurable.start(autodurable.options(gated, workflow_id="g"))
    second = autodurable.start(autodurable.options(gated, workflow_id="g"))
    gate.set()
    assert handle.result(10) == second.result(10) == "opened"
    assert calls["gate"] == 1


def test_a_start_whose_thread_runs_after_another_call_finished_does_not_run_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first start records the workflow and hands its claim to a worker thread that,
    # on a loaded machine, starts late; a second start of the same id runs it to the
    # end meanwhile. The late thread must not run it again from the stale claim (its
    # step would run twice, and its write, finding the workflow ended, would stop it).
    from autodurable._core._runtime import get_runtime

    gate.clear()
    runtime = get_runtime()
    submit = runtime.submit

    def late(fn):  # type: ignore[no-untyped-def]
        def after_a_while():  # type: ignore[no-untyped-def]
            assert second_done.wait(10)
            return fn()

        return submit(after_a_while)

    second_done = threading.Event()
    monkeypatch.setattr(runtime, "submit", late)
    first = autodurable.start(autodurable.options(gated, workflow_id="late"))
    monkeypatch.setattr(runtime, "submit", submit)
    second = autodurable.start(autodurable.options(gated, workflow_id="late"))
    gate.set()
    assert second.result(10) == "opened"
    second_done.set()
    assert first.result(10) == "opened"
    assert calls["gate"] == 1


@autodurable.workflow
def starts_child():
    child = autodurable.start(inner_workflow, 5)
    result = child.result(10)
    maybe_crash("parent")
    return child.workflow_id, result


def test_start_inside_workflow_records_child_id(store):
    crash_points.add("parent")
    with pytest.raises(Crash, match=r"^parent$"):
        run_workflow(starts_child, "parent")
    first_child = store.list_steps("parent")[0].output
    child_id, result = run_workflow(starts_child, "parent")
    assert result == 105
    assert f'"{child_id}"' == first_child  # the replay reused the recorded child id
    assert calls["add"] == 1


def test_same_id_for_another_workflow_is_refused():
    run_workflow(inner_workflow, "shared", 1)
    with pytest.raises(autodurable.AutodurableError, match="belongs to workflow"):
        run_workflow(two_steps, "shared", 1)


class Opaque:
    pass


@autodurable.step
def returns_opaque():
    calls["opaque"] += 1
    return Opaque()


code_fixed: list[bool] = []


@autodurable.workflow
def unencodable_then_ok():
    add(1, 1)
    return fixed_step() if code_fixed else returns_opaque()


@autodurable.step
def fixed_step():
    return "fixed"


def test_unencodable_result_names_step_and_type_and_loses_nothing(store):
    with pytest.raises(autodurable.EncodeError) as info:
        run_workflow(unencodable_then_ok, "u")
    message = str(info.value)
    assert "returns_opaque" in message and "Opaque" in message and "allow_pickle" in message
    record = store.get_workflow("u")
    assert record.status == PENDING  # not failed: fix the code and run again
    assert [s.name for s in store.list_steps("u")] == ["add"]
    code_fixed.append(True)  # the programmer fixes the step
    assert run_workflow(unencodable_then_ok, "u") == "fixed"
    assert calls["add"] == 1 and calls["opaque"] == 1


def test_unencodable_workflow_input_fails_before_running(store):
    with pytest.raises(autodurable.EncodeError, match="inputs of workflow"):
        two_steps(Opaque())
    assert calls == Counter() and store.list_workflows() == []


def test_same_id_with_other_inputs_is_refused(store):
    crash_points.add("two_steps")
    with pytest.raises(Crash, match=r"^two_steps$"):
        run_workflow(two_steps, "in", 1)
    with pytest.raises(autodurable.AutodurableError, match="other inputs"):
        run_workflow(two_steps, "in", 100)
    assert store.get_workflow("in").status == PENDING
    assert run_workflow(two_steps, "in", 1) == (12, (2, [2], {"x": 2}))


@autodurable.workflow
def takes_a_set(tags):
    return sorted(tags)


def test_equal_inputs_encoded_differently_are_accepted():
    run_workflow(takes_a_set, "s", {"b", "a", "c"})
    assert run_workflow(takes_a_set, "s", {"c", "a", "b"}) == ["a", "b", "c"]


class _Client:
    """Something a codec cannot record: a live client passed to a workflow."""


@autodurable.workflow(unrecordable="rerun")
def charge_with(client, amount):
    return amount, autodurable.idempotency_key()


@autodurable.workflow(unrecordable="rerun")
async def charge_with_async(client, amount):
    return amount, autodurable.idempotency_key()


def test_a_workflow_run_unrecorded_says_why_idempotency_keys_are_missing(store):
    with pytest.raises(autodurable.AutodurableError, match="runs unrecorded because its inputs"):
        charge_with(_Client(), 5)
    with pytest.raises(autodurable.AutodurableError, match="runs unrecorded because its inputs"):
        asyncio.run(charge_with_async(_Client(), 5))
    with pytest.raises(autodurable.AutodurableError, match="defined only in workflow code"):
        autodurable.idempotency_key()  # and outside any workflow, the usual message


class _Named:
    """A callable that wants to know the attribute it is stored under."""

    def __init__(self):
        self.__qualname__ = "named"

    def __set_name__(self, owner, name):
        self.seen = (owner.__name__, name)

    def __call__(self, x):
        return x


def test_a_wrapped_callable_is_told_its_name_in_a_class_body():
    named = _Named()

    class Holder:
        tool = autodurable.step(named)

        @autodurable.step
        def plain(self, x):  # a plain function: nothing to tell it
            return x

    assert named.seen == ("Holder", "tool")
    assert Holder.tool(3) == 3 and Holder().plain(4) == 4
