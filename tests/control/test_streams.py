"""Durable streams (`write_stream` / `read_stream`), on both stores: values are read in
order from any offset, each stored exactly once across a SIGKILL and a resume, read
live from another process, and closed by `close_stream` or the workflow's end; forks
copy the values before their step, rewinds drop the ones from theirs, deleting a
workflow deletes its streams, and bad input is one clear line."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import autodurable
from autodurable._cli import main
from autodurable._core._runtime import get_runtime
from autodurable._errors import AutodurableError, OwnershipLost, WorkflowNotFound
from autodurable._store import CANCELLED, PENDING, SUCCEEDED, StepRecord

from ..helpers import (
    Backend,
    child_env,
    executor,
    lost,
    run_python,
    run_workflow,
    workflow,
    write_script,
)

pytestmark = pytest.mark.usefixtures("database")


@autodurable.step
def token(i: int) -> str:
    return f"t{i}"


@autodurable.workflow
def agent(n: int) -> int:
    for i in range(n):
        autodurable.write_stream("tokens", token(i))
    autodurable.write_stream("progress", {"done": n, "at": dt.datetime(2026, 1, 2, 3, 4)})
    autodurable.write_stream("progress", (1, 2))
    return n


def values(workflow_id: str, key: str, offset: int = 0) -> list[Any]:
    return list(autodurable.read_stream(workflow_id, key, offset))


def test_values_are_read_in_order_from_an_offset_sync_and_async() -> None:
    assert run_workflow(agent, "a-1", 4) == 4
    assert values("a-1", "tokens") == ["t0", "t1", "t2", "t3"]
    assert values("a-1", "tokens", 2) == ["t2", "t3"]
    assert values("a-1", "tokens", 9) == []
    # Values come back as the codec recorded them: types kept, as step results.
    assert values("a-1", "progress") == [{"done": 4, "at": dt.datetime(2026, 1, 2, 3, 4)}, (1, 2)]
    assert list(autodurable.read_stream("a-1", "tokens", 1, follow=False)) == ["t1", "t2", "t3"]
    assert values("a-1", "never") == []  # the workflow ended: a stream it never wrote is empty
    assert values("a-1", "tokens") == values("a-1", "tokens")  # read again: identical
    assert get_runtime().store.list_streams("a-1") == {"progress": 2, "tokens": 4}

    async def read() -> list[Any]:
        return [value async for value in autodurable.read_stream_async("a-1", "tokens", 1)]

    assert asyncio.run(read()) == ["t1", "t2", "t3"]
    names = [step.name for step in get_runtime().store.list_steps("a-1")]
    assert names.count("autodurable.write_stream:tokens") == 4


@autodurable.workflow
def closing() -> str:
    autodurable.write_stream("early", "a")
    autodurable.close_stream("early")
    autodurable.close_stream("early")  # closing a closed stream does nothing more
    autodurable.write_stream("late", "b")
    got = autodurable.recv("go", timeout=20)
    try:
        autodurable.write_stream("early", "c")
    except AutodurableError as exc:
        return f"{got}: {exc}"
    return "wrote to a closed stream"


def test_close_stream_ends_readers_early_and_the_workflow_s_end_ends_the_rest() -> None:
    handle = autodurable.start(autodurable.options(closing, workflow_id="c-1"))
    late: list[Any] = []
    follower = threading.Thread(target=lambda: late.extend(values("c-1", "late")))
    follower.start()
    # Closed early: a follower ends after "a" while the workflow still runs (waiting).
    assert values("c-1", "early") == ["a"]
    assert values("c-1", "early", 5) == []  # past the end of a closed stream: ends too
    assert handle.status() == PENDING
    assert follower.is_alive()  # "late" is open until the workflow ends

    async def follow_async() -> list[Any]:
        return [value async for value in autodurable.read_stream_async("c-1", "late")]

    async def both() -> list[Any]:
        task = asyncio.create_task(follow_async())
        await asyncio.sleep(0.3)
        assert not task.done()
        await asyncio.to_thread(autodurable.send, "c-1", "go", "go")
        return await task

    assert asyncio.run(both()) == ["b"]
    follower.join(timeout=20)
    assert late == ["b"]
    outcome = handle.result(timeout=20)
    assert outcome.startswith("go: stream 'early' of workflow 'c-1' is closed")
    assert values("c-1", "early") == ["a"]


def test_write_outside_workflow_code_bad_ids_and_offsets_are_clear_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(AutodurableError, match=r"call it in workflow code"):
        autodurable.write_stream("k", 1)
    with pytest.raises(AutodurableError, match=r"call it in workflow code"):
        autodurable.close_stream("k")

    @autodurable.step
    def in_a_step() -> None:
        autodurable.write_stream("k", 1)

    @autodurable.workflow
    def calls_it() -> None:
        in_a_step()

    with pytest.raises(AutodurableError, match=r"not inside a step"):
        run_workflow(calls_it, "s-1")
    with pytest.raises(WorkflowNotFound, match=r"no workflow with id 'nope'"):
        values("nope", "k")
    for offset in (-1, 1.5, True, "2"):
        with pytest.raises(AutodurableError, match=r"offset must be a whole number >= 0"):
            autodurable.read_stream("s-1", "k", offset)  # type: ignore[arg-type]
    with pytest.raises(AutodurableError, match=r"a stream key must be a non-empty string"):
        autodurable.read_stream("s-1", "")
    capsys.readouterr()
    assert main(["workflows", "stream", "nope", "k"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no workflow with id 'nope'" in err
    with pytest.raises(SystemExit):
        main(["workflows", "stream", "s-1", "k", "--offset", "-3"])
    assert "offsets start at 0, not -3" in capsys.readouterr().err


@autodurable.workflow
def numbered(n: int) -> int:
    for i in range(n):
        autodurable.write_stream("n", i)
    return n


def test_fork_copies_values_before_its_step_and_rewind_drops_the_rest() -> None:
    run_workflow(numbered, "f-1", 4)  # steps 1..4 write 0..3
    fork = autodurable.get_workflow("f-1").fork(3, workflow_id="f-2")
    assert fork.result(timeout=20) == 4
    assert values("f-2", "n") == [0, 1, 2, 3]  # 0, 1 copied; 2, 3 written by the fork
    steps = get_runtime().store.list_steps("f-2")
    assert [(s.position, s.executor_id == steps[0].executor_id) for s in steps][:2] == [
        (1, True),
        (2, True),
    ]
    store = get_runtime().store
    assert store.rewind_workflow("f-1", 2) == 1
    # Pending again (so read without following): only what the kept step wrote.
    assert list(autodurable.read_stream("f-1", "n", follow=False)) == [0]
    assert run_workflow(numbered, "f-1", 4) == 4  # runs again from step 2
    assert values("f-1", "n") == [0, 1, 2, 3]


def test_deleting_a_workflow_deletes_its_streams() -> None:
    run_workflow(numbered, "d-1", 2)
    run_workflow(numbered, "d-2", 1)
    autodurable.get_workflow("d-1").delete()
    store = get_runtime().store
    assert store.list_streams("d-1") == {}
    assert store.read_stream("d-1", "n", 0, 10) == []
    assert values("d-2", "n") == [0]
    with pytest.raises(WorkflowNotFound):
        values("d-1", "n")


# -- other processes -----------------------------------------------------------------------

WRITER = """
import os, signal, sys
import autodurable

@autodurable.step
def work(i):
    return i * 10

@autodurable.workflow
def writer(n, pause):
    for i in range(n):
        autodurable.write_stream("out", work(i))
        if os.environ.get("KILL_AT") == str(i):
            os.kill(os.getpid(), signal.SIGKILL)  # dies right after the write is recorded
        if pause:
            autodurable.sleep(pause)
    return n

autodurable.options(writer, workflow_id=sys.argv[1])(int(sys.argv[2]), float(sys.argv[3]))
"""


def test_a_workflow_killed_mid_stream_resumes_and_writes_each_value_once(
    tmp_path: Path, database: str
) -> None:
    script = write_script(tmp_path, "writer.py", WRITER)
    env = child_env(AUTODURABLE_DATABASE_URL=database, KILL_AT="2")
    killed = run_python(script, "k-1", "5", "0", env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list(autodurable.read_stream("k-1", "out", follow=False)) == [0, 10, 20]
    resumed = run_python(script, "k-1", "5", "0", env=child_env(AUTODURABLE_DATABASE_URL=database))
    assert resumed.returncode == 0, resumed.stderr
    assert values("k-1", "out") == [0, 10, 20, 30, 40]  # none again from the replayed part
    rows = get_runtime().store.read_stream("k-1", "out", 0, 100)
    assert [row.offset for row in rows] == [0, 1, 2, 3, 4]
    names = [step.name for step in get_runtime().store.list_steps("k-1")]
    assert names.count("autodurable.write_stream:out") == 5


def test_a_reader_in_another_process_follows_live_and_reads_the_same_again(
    tmp_path: Path, database: str
) -> None:
    script = write_script(tmp_path, "writer.py", WRITER)
    env = child_env(AUTODURABLE_DATABASE_URL=database)
    writer = subprocess.Popen(
        [sys.executable, str(script), "l-1", "4", "0.5"], cwd=tmp_path, env=env, text=True
    )
    try:
        store = get_runtime().store
        deadline = 30.0
        while store.get_workflow("l-1") is None and deadline > 0:
            threading.Event().wait(0.05)
            deadline -= 0.05
        command = [sys.executable, "-m", "autodurable", "workflows", "stream", "l-1", "out"]
        errors = (tmp_path / "reader.err").open("w+")
        reader = subprocess.Popen(
            [*command, "--follow", "--json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert reader.stdout is not None
        line = reader.stdout.readline()
        assert line, (tmp_path / "reader.err").read_text()
        first = json.loads(line)
        # Printed while the workflow still runs: read live, not after the end.
        assert store.get_workflow("l-1").status == PENDING  # type: ignore[union-attr]
        assert first == {"workflow_id": "l-1", "key": "out", "offset": 0, "value": 0}
        # The rest through the same text stream: `communicate` would read the pipe
        # beneath it and miss lines this stream already buffered.
        out = reader.stdout.read()
        reader.stdout.close()
        assert reader.wait(timeout=30) == 0, (tmp_path / "reader.err").read_text()
        errors.close()
        assert writer.wait(timeout=30) == 0
    finally:
        writer.kill()
        writer.wait()
    followed = [first, *(json.loads(line) for line in out.splitlines())]
    assert [line["value"] for line in followed] == [0, 10, 20, 30]
    again = subprocess.run(
        [*command, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert again.returncode == 0, again.stderr
    assert [json.loads(line) for line in again.stdout.splitlines()] == followed
    plain = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert plain.stdout.split() == ["0", "10", "20", "30"]


# -- the store ---------------------------------------------------------------------------


def _write(position: int, branch: str = "") -> StepRecord:
    name = "autodurable.write_stream:k"
    return StepRecord(position, name, SUCCEEDED, "null", None, 1, 1.0, 1.0, branch=branch)


def test_the_store_fences_stream_writes_and_stores_a_retried_one_once(backend: Backend) -> None:
    store, other = backend.open(), backend.open()
    store.register_executor(executor("e1"))
    assert store.create_workflow(workflow("w", "e1"))
    assert store.write_stream("w", "e1", "k", '"a"', _write(1)).status == PENDING
    # The same write again (a transaction retried after its commit): stored once.
    assert store.write_stream("w", "e1", "k", '"a"', _write(1)).status == PENDING
    with pytest.raises(OwnershipLost, match=lost("w")):
        other.write_stream("w", "e2", "k", '"x"', _write(2))
    # Concurrent work of the workflow writing one stream: each value gets its own offset.
    threads = [
        threading.Thread(
            target=other.write_stream, args=("w", "e1", "k", f'"{n}"', _write(1, str(n)))
        )
        for n in range(2, 8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = store.read_stream("w", "k", 0, 100)
    assert [row.offset for row in rows] == list(range(7))
    assert rows[0].value == '"a"' and sorted(r.value or "" for r in rows[1:]) == [
        f'"{n}"' for n in range(2, 8)
    ]
    assert len(store.list_steps("w")) == 7  # one step per value, none without
    assert store.write_stream("w", "e1", "k", None, _write(9)).closed is False
    assert store.write_stream("w", "e1", "k", '"late"', _write(10)).closed is True
    assert store.cancel_workflow("w", "{}") == CANCELLED
    assert store.write_stream("w", "e1", "j", '"b"', _write(11)).status == CANCELLED
    assert store.list_streams("w") == {"k": 7}
    assert len(store.list_steps("w")) == 8  # the close; nothing for the refused writes


def test_workflows_show_lists_the_streams(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_workflow(agent, "shown", 3) == 3
    assert main(["workflows", "show", "shown"]) == 0
    out = capsys.readouterr().out
    assert "stream     progress: 2 value(s) (autodurable workflows stream shown progress)" in out
    assert "stream     tokens: 3 value(s)" in out
    assert main(["workflows", "show", "shown", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["streams"] == {"progress": 2, "tokens": 3}
