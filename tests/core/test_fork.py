"""Processes forked from workflow code never write into the parent's workflow.

A child forked by ``os.fork`` (or a "fork" multiprocessing pool) inherits the
parent's run in its memory; its steps and watched calls run unrecorded there,
so the parent's recorded steps, their positions and their executor are its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

import pytest

import autodurable
from autodurable._core._sentinel import uninstall
from autodurable._store import SUCCEEDED

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture(autouse=True)
def _uninstall_chokepoints():
    yield
    uninstall()  # the chokepoints the first watched call installed


def _effect(name: str, line: str) -> None:
    with open(Path.cwd() / f"effects-{name}.log", "a") as fh:
        fh.write(f"{line}\n")


def effects(name: str) -> list[str]:
    path = Path(f"effects-{name}.log")
    return path.read_text().splitlines() if path.exists() else []


@autodurable.step
def mark(who: str) -> str:
    _effect("mark", f"{who} {os.getpid()}")
    return who


@autodurable.step
def square(x: int) -> int:
    _effect("square", str(x))
    return x * x


@autodurable.watched
def note(text: str) -> str:
    _effect("note", text)  # I/O: in the parent this call is recorded
    return text


def _in_child(body) -> None:
    """Run `body` in a forked child; wait for it and require it exited 0."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # The child's warnings, where the test can read them.
            handler = logging.FileHandler(Path.cwd() / "child-warnings.log")
            logging.getLogger("autodurable").addHandler(handler)
            body()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@autodurable.workflow
def forks_a_child() -> list[str]:
    first = mark("parent-1")

    def child() -> None:
        mark("child")
        mark("child-again")
        note("from-child")

    _in_child(child)
    return [first, mark("parent-2"), note("parent-3")]


def own_steps(store, workflow_id: str):
    return [
        (s.position, s.branch, s.name, s.status, s.executor_id)
        for s in store.list_steps(workflow_id)
    ]


def test_a_forked_child_does_not_record_into_the_parents_workflow(database, store):
    wid = "forked"
    assert autodurable.options(forks_a_child, workflow_id=wid)() == [
        "parent-1",
        "parent-2",
        "parent-3",
    ]
    steps = own_steps(store, wid)
    executor = store.get_workflow(wid).executor_id or steps[0][4]
    assert [(p, b, n, st) for p, b, n, st, _ in steps] == [
        (1, "", "mark", SUCCEEDED),
        (2, "", "mark", SUCCEEDED),
        (3, "", "note", SUCCEEDED),
    ]
    assert {e for *_, e in steps} == {executor}
    # The parent's own results, not the child's.
    outputs = [s.output for s in store.list_steps(wid)]
    assert "child" not in " ".join(o or "" for o in outputs)
    # The child's step bodies ran, in the child.
    marks = effects("mark")
    assert [line.split()[0] for line in marks] == ["parent-1", "child", "child-again", "parent-2"]
    assert marks[1].split()[1] != str(os.getpid())
    assert effects("note") == ["from-child", "parent-3"]
    # Said once per name in the child: which step, and why it is not recorded.
    warnings = Path("child-warnings.log").read_text().splitlines()
    assert len(warnings) == 2
    assert "step 'mark'" in warnings[0] and "forked" in warnings[0]
    assert "not recorded" in warnings[0] and "run again on resume" in warnings[0]
    assert "watched call 'note'" in warnings[1]

    # A finished workflow returns its recorded result; nothing runs again.
    assert autodurable.options(forks_a_child, workflow_id=wid)() == [
        "parent-1",
        "parent-2",
        "parent-3",
    ]
    assert own_steps(store, wid) == steps


@autodurable.workflow
def maps_in_a_fork_pool(xs: list[int]) -> tuple[int, list[int], int]:
    before = square(2)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        squares = pool.map(square, xs)
    return before, squares, square(3)


def test_a_fork_pool_mapping_a_step_leaves_the_parents_rows_alone(database, store):
    wid = "pool"
    xs = list(range(10, 16))
    result = autodurable.options(maps_in_a_fork_pool, workflow_id=wid)(xs)
    assert result == (4, [x * x for x in xs], 9)
    steps = own_steps(store, wid)
    assert [(b, n, st) for _, b, n, st, _ in steps] == [
        ("", "square", SUCCEEDED),
        ("", "square", SUCCEEDED),
    ]
    positions = [p for p, *_ in steps]
    assert positions[0] == 1 and positions[1] > positions[0]
    assert len({e for *_, e in steps}) == 1
    assert sorted(effects("square")) == sorted(["2", "3", *map(str, xs)])
    # The workers' calls took no position: the workflow replays as it ran.
    assert autodurable.options(maps_in_a_fork_pool, workflow_id=wid)(xs) == result
    assert own_steps(store, wid) == steps


@autodurable.step
def parent_only() -> int:
    return os.getpid()


def test_a_workflow_run_in_this_process_still_records(database, store):
    @autodurable.workflow
    def plain() -> int:
        return parent_only()

    # A fork elsewhere (outside workflow code) changes nothing here.
    _in_child(lambda: None)
    assert autodurable.options(plain, workflow_id="plain")() == os.getpid()
    assert [(s.position, s.name) for s in store.list_steps("plain")] == [(1, "parent_only")]


@autodurable.workflow
def messages_in_a_child(me: str) -> list[str]:
    outcomes: list[str] = []

    def child() -> None:
        for name, call in (
            ("recv", lambda: autodurable.recv("go", timeout=1)),
            ("set_event", lambda: autodurable.set_event("state", "child")),
            ("idempotency_key", autodurable.idempotency_key),
        ):
            try:
                call()
                _effect("child-calls", f"{name} ran")
            except autodurable.AutodurableError as exc:
                _effect("child-calls", f"{name} refused: {exc}")
        autodurable.send(me, "from-child", topic="note")  # unrecorded, said so
        autodurable.sleep(0.2)  # plainly: the child holds none of the parent's sleep

    _in_child(child)
    outcomes.append(autodurable.recv("go", timeout=5))
    outcomes.append(autodurable.recv("note", timeout=5))
    autodurable.set_event("state", "parent")
    return outcomes


def test_messages_and_events_in_a_forked_child_never_act_for_the_parent(database, store):
    wid = "messages-forked"
    autodurable.send(wid, "the-go", topic="go")
    result = autodurable.options(messages_in_a_child, workflow_id=wid)(wid)
    # The parent received its own message: the child's recv consumed nothing.
    assert result == ["the-go", "from-child"]
    calls = effects("child-calls")
    assert [line.split()[:2] for line in calls] == [
        ["recv", "refused:"],
        ["set_event", "refused:"],
        ["idempotency_key", "refused:"],
    ]
    assert all(f"forked from workflow {wid!r}" in line for line in calls)
    assert "use a thread instead of a fork" in calls[0]
    # Only the parent's recvs and event are recorded, in the parent's positions.
    names = [s.name for s in store.list_steps(wid)]
    assert names == ["autodurable.recv:go", "autodurable.recv:note", "autodurable.set_event:state"]
    assert autodurable.get_event(wid, "state", timeout=1) == "parent"
    warnings = Path("child-warnings.log").read_text()
    assert f"send to {wid!r}" in warnings and "not recorded" in warnings
