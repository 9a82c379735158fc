"""SIGKILL while commits are shared: sixteen workflows on sixteen threads, or sixteen
async workflows on one event loop (whose steps hand their writes to the loop's own
writer on PostgreSQL, to writer threads on SQLite with ``synchronous=full``, or on
SQLite's default write each turn of the loop's records together,
`_core._async_writes`), record their steps at once (PostgreSQL, and SQLite with
``synchronous=full``, where records made at the same moment share a transaction),
and the process is killed at a random moment, several times over, then run to
the end.

Every step body appends a line to an effects file. The child logs the size of
each shared batch it wrote, so the test knows batches were in flight. After the
last run:

- every workflow finished with the result of an uncrashed run, and has every
  step recorded once;
- a step recorded before a kill never ran again (its effect count at the end
  is its count when the store was read after the kill), and only a step whose
  record was in flight at a kill runs again: at most one per workflow per kill.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from autodurable._store import SUCCEEDED, open_store

from ..helpers import child_env, write_script

WORKFLOWS, STEPS, KILLS = 16, 40, 3

SCRIPT = """
import sys, threading
import autodurable
from autodurable._core._runtime import get_runtime

EFFECTS, BATCHES = sys.argv[1], sys.argv[2]
lock = threading.Lock()


def effect(line):
    with lock, open(EFFECTS, "a") as fh:
        fh.write(line + "\\n")


@autodurable.step
def work(name, i):
    effect(f"{name}:{i}")
    return i * i


@autodurable.workflow
def job(name):
    return sum(work(name, i) for i in range(STEPS))


"""

LOGGING_BATCHES = """
store = get_runtime().store
written = store._steps_written  # None where threads do not share commits
batch = store.record_steps


def logged(requests):
    outcomes = batch(requests)
    with lock, open(BATCHES, "a") as fh:
        fh.write(f"{len(requests)}\\n")
    return outcomes


if written is not None:
    written._write_batch = logged  # the threads' shared commits
store.record_steps = logged  # the async steps' writer thread's, or the loop's turns'
batch_async = getattr(store, "record_steps_async", None)


async def logged_async(requests):
    outcomes = await batch_async(requests)
    with lock, open(BATCHES, "a") as fh:
        fh.write(f"{len(requests)}\\n")
    return outcomes


if batch_async is not None:
    store.record_steps_async = logged_async  # the loop's own writer (PostgreSQL)
"""

THREADS = """
results = {}
start = threading.Barrier(WORKFLOWS)


def run(k):
    start.wait()
    results[k] = autodurable.options(job, workflow_id=f"w{k}")(f"w{k}")


threads = [threading.Thread(target=run, args=(k,)) for k in range(WORKFLOWS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(set(results.values())))
"""

ASYNC = """
import asyncio


@autodurable.step
async def awork(name, i):
    await asyncio.sleep(0)  # as I/O would: the loop runs the others meanwhile
    effect(f"{name}:{i}")
    return i * i


@autodurable.workflow
async def ajob(name):
    total = 0
    for i in range(STEPS):
        total += await awork(name, i)
    return total


async def main():
    runs = [autodurable.options(ajob, workflow_id=f"w{k}")(f"w{k}") for k in range(WORKFLOWS)]
    return await asyncio.gather(*runs)


print(sorted(set(asyncio.run(main()))))
"""


def _script(mode: str) -> str:
    body = SCRIPT + LOGGING_BATCHES + (THREADS if mode == "threads" else ASYNC)
    return body.replace("STEPS", str(STEPS)).replace("WORKFLOWS", str(WORKFLOWS))


def _recorded(url: str) -> list[str]:
    """The steps recorded now, as their effect lines (``w3:7``)."""
    opened = open_store(url)
    try:
        return [
            f"w{k}:{s.position - 1}"
            for k in range(WORKFLOWS)
            for s in opened.list_steps(f"w{k}")
            if s.status == SUCCEEDED
        ]
    finally:
        opened.close()


def _effects(path: Path) -> Counter[str]:
    return Counter(path.read_text().splitlines()) if path.exists() else Counter()


@pytest.mark.usefixtures("unmeasured_children")
@pytest.mark.parametrize(
    ("store", "mode"),
    [
        ("sqlite-full", "threads"),
        ("sqlite-full", "asyncio"),
        ("postgresql", "threads"),
        ("postgresql", "asyncio"),
        ("sqlite", "asyncio"),  # each turn of the loop's records in one transaction
    ],
)
def test_sigkill_while_shared_commits_are_in_flight(
    tmp_path: Path, request: pytest.FixtureRequest, store: str, mode: str
) -> None:
    if store == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'state.db'}" + (
            "?synchronous=full" if "full" in store else ""
        )
    script = write_script(tmp_path, "fanout.py", _script(mode))
    effects, batches = tmp_path / "effects.txt", tmp_path / "batches.txt"
    command = [sys.executable, str(script), str(effects), str(batches)]
    env = child_env(AUTODURABLE_DATABASE_URL=url)
    rng = random.Random(7)
    recorded_at_kill: dict[str, int] = {}
    total = WORKFLOWS * STEPS
    for kill in range(KILLS):
        child = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
        target = sum(_effects(effects).values()) + rng.randint(total // 8, total // 4)
        deadline = time.monotonic() + 60
        while sum(_effects(effects).values()) < target and child.poll() is None:
            assert time.monotonic() < deadline, "the child never got that far"
            time.sleep(0.002)
        assert child.poll() is None, f"kill {kill}: it finished first"
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        # What was recorded when it died, and how often those steps had run then.
        at_kill = _effects(effects)
        for line in _recorded(url):
            recorded_at_kill[line] = at_kill[line]
    shared = [int(size) for size in batches.read_text().split()] if batches.exists() else []
    assert shared and max(shared) > 1, "no commit was shared before the kills"
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = sum(i * i for i in range(STEPS))
    assert done.stdout.strip() == f"[{expected}]"
    opened = open_store(url)
    try:
        for k in range(WORKFLOWS):
            assert opened.get_workflow(f"w{k}").status == SUCCEEDED  # type: ignore[union-attr]
            steps = opened.list_steps(f"w{k}")
            assert [s.position for s in steps] == list(range(1, STEPS + 1))
    finally:
        opened.close()
    seen = _effects(effects)
    assert set(seen) == {f"w{k}:{i}" for k in range(WORKFLOWS) for i in range(STEPS)}
    # A step recorded before a kill never ran again after it.
    assert recorded_at_kill and all(seen[line] == n for line, n in recorded_at_kill.items())
    repeated = {line: count for line, count in seen.items() if count > 1}
    # Only a step in flight at a kill runs again: at most one per workflow per kill.
    assert all(count <= 1 + KILLS for count in repeated.values()), repeated
    assert len(repeated) <= WORKFLOWS * KILLS, repeated
