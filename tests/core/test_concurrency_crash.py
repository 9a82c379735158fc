"""Concurrent steps and SIGKILL: real child processes, killed while several steps are in flight.

The child fans a workflow out over a ThreadPoolExecutor (steps, or branches of
two steps) or over asyncio tasks (``gather``, ``TaskGroup``), or runs a script
under ``autodurable run`` whose pool maps a step the import hook inferred.
Every step appends a line to an effects file when its body runs. With
``CRASH_AT=K``, the items from K on stay in flight after their effect (their
last step never returns); the test waits until the others are recorded and
the in-flight ones have had their effect, SIGKILLs the child, and runs it
again to the end. Then:

- no step recorded before the kill ran again (its effect is there once, its
  row unchanged);
- every in-flight step ran exactly once more, every other step exactly once;
- the output, and the recorded steps with their branches and positions, are
  those of a run that was never killed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from autodurable._store import SUCCEEDED, open_store

from ..helpers import child_env, write_script

ITEMS = 8
POOL = 4

SCRIPT = """
import asyncio, json, os, random, sys, threading, time
from concurrent.futures import ThreadPoolExecutor, as_completed
import autodurable

EFFECTS, MODE, ITEMS, POOL = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def effect(line):
    with open(EFFECTS, "a") as fh:
        fh.write(line + "\\n")


def in_flight(i):
    # Read in the step, so that a run after the kill sees its own environment.
    return i >= int(os.environ.get("CRASH_AT", ITEMS))


@autodurable.step
def fetch(i):
    time.sleep(random.random() * 0.01)  # finish in any order
    effect(f"fetch:{i}")
    if MODE == "pool" and in_flight(i):
        threading.Event().wait()  # in flight until the kill
    return {"i": i, "square": i * i}


@autodurable.step
def save(i, fetched):
    time.sleep(random.random() * 0.01)
    effect(f"save:{i}")
    if in_flight(i):
        threading.Event().wait()
    return {"saved": i, "total": fetched["square"] + i}


def branch(i):
    return save(i, fetch(i))


@autodurable.step
async def afetch(i):
    await asyncio.sleep(random.random() * 0.01)
    effect(f"fetch:{i}")
    return {"i": i, "square": i * i}


@autodurable.step
async def asave(i, fetched):
    await asyncio.sleep(random.random() * 0.01)
    effect(f"save:{i}")
    if in_flight(i):
        await asyncio.Event().wait()
    return {"saved": i, "total": fetched["square"] + i}


async def abranch(i):
    return await asave(i, await afetch(i))


def by_item(results):
    return sorted(results, key=lambda r: r["saved"])


async def tasks():
    if MODE == "gather":
        return list(await asyncio.gather(*(abranch(i) for i in range(ITEMS))))
    if MODE == "as_completed":
        return by_item([await f for f in asyncio.as_completed([abranch(i) for i in range(ITEMS)])])
    if MODE == "wait":
        done, _ = await asyncio.wait([asyncio.create_task(abranch(i)) for i in range(ITEMS)])
        return by_item(task.result() for task in done)
    if MODE in ("executor", "to_thread"):
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(POOL) as pool:
            if MODE == "executor":
                work = [loop.run_in_executor(pool, branch, i) for i in range(ITEMS)]
            else:
                loop.set_default_executor(pool)
                work = [asyncio.to_thread(branch, i) for i in range(ITEMS)]
            return list(await asyncio.gather(*work))
    async with asyncio.TaskGroup() as group:
        started = [group.create_task(abranch(i)) for i in range(ITEMS)]
    return [task.result() for task in started]


@autodurable.workflow
def fan_out():
    if MODE in ("pool", "branches"):
        with ThreadPoolExecutor(POOL) as pool:
            return list(pool.map(fetch if MODE == "pool" else branch, range(ITEMS)))
    if MODE == "submit":
        with ThreadPoolExecutor(POOL) as pool:
            futures = [pool.submit(branch, i) for i in range(ITEMS)]
            return by_item(f.result() for f in as_completed(futures))
    if MODE == "threads":
        results = [None] * ITEMS

        def run(i):
            results[i] = branch(i)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(ITEMS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results
    return asyncio.run(tasks())


print(json.dumps(autodurable.options(fan_out, workflow_id="fan-out")()))
"""

# Under `autodurable run`: nothing here mentions autodurable.
APP = """
import json, sys
from concurrent.futures import ThreadPoolExecutor

import helpers

with ThreadPoolExecutor(int(sys.argv[4])) as pool:
    results = list(pool.map(helpers.download, range(int(sys.argv[3]))))
print(json.dumps(results))
"""

HELPERS = """
import os, random, sys, threading, time


def download(i):
    time.sleep(random.random() * 0.01)
    with open(sys.argv[1], "a") as fh:
        fh.write(f"download:{i}\\n")
    if i >= int(os.environ.get("CRASH_AT", sys.argv[3])):
        threading.Event().wait()
    return {"i": i, "square": i * i}
"""

MODES = (
    "pool",
    "branches",
    "submit",
    "executor",
    "to_thread",
    "threads",
    "gather",
    "taskgroup",
    "wait",
    "as_completed",
    "launcher",
)
# Work run by a pool of POOL threads (the others wait for a free thread), and
# work that all runs at once (tasks, threads of their own).
_POOLED = ("branches", "submit", "executor", "to_thread")


def in_flight_line(mode: str, i: int) -> str:
    """The effect of item i's step that stays in flight."""
    return {"pool": f"fetch:{i}", "launcher": f"download:{i}"}.get(mode, f"save:{i}")


def expected_at_kill(mode: str, crash_at: int) -> tuple[int, int]:
    """(steps recorded, steps in flight) when the child is killed."""
    if mode in ("pool", "launcher"):  # the items before K; the pool holds the others
        return crash_at, min(POOL, ITEMS - crash_at)
    if mode in _POOLED:  # the branches before K, and the fetch of those in flight
        in_flight = min(POOL, ITEMS - crash_at)
        return 2 * crash_at + in_flight, in_flight
    return 2 * crash_at + (ITEMS - crash_at), ITEMS - crash_at  # every task runs


class Job:
    """One child program in a folder of its own, with its effects file and its store."""

    def __init__(self, folder: Path, mode: str, url: str | None) -> None:
        self.folder, self.mode, self.url = folder, mode, url
        folder.mkdir(exist_ok=True)
        self.effects_file = folder / "effects"
        if mode == "launcher":
            (folder / "pyproject.toml").write_text("[project]\nname = 'fan-out'\n")
            write_script(folder, "helpers.py", HELPERS)
            script = write_script(folder, "app.py", APP)
            self.command = [sys.executable, "-m", "autodurable", "run", "-q", str(script)]
        else:
            script = write_script(folder, "job.py", SCRIPT)
            self.command = [sys.executable, str(script)]
        self.command += [str(self.effects_file), mode, str(ITEMS), str(POOL)]
        self._store = None

    def env(self, **extra: str) -> dict[str, str]:
        if self.url is not None:
            extra["AUTODURABLE_DATABASE_URL"] = self.url
        return child_env(**extra)

    def start(self, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command,
            cwd=self.folder,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self) -> object:
        done = subprocess.run(
            self.command, cwd=self.folder, env=self.env(), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def effects(self) -> Counter[str]:
        if not self.effects_file.exists():
            return Counter()
        return Counter(self.effects_file.read_text().split())

    def store(self):
        if self._store is None:
            self._store = open_store(
                self.url or f"sqlite:///{self.folder / '.autodurable' / 'state.db'}"
            )
        return self._store

    def steps(self) -> list[tuple[str, int, str, str | None, float]]:
        """(branch, position, name, output, started_at) of the succeeded steps."""
        store = self.store()
        found = []
        for workflow in store.list_workflows():
            found += [
                (s.branch, s.position, s.name, s.output, s.started_at)
                for s in store.list_steps(workflow.workflow_id)
                if s.status == SUCCEEDED
            ]
        return found

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


_references: dict[str, tuple[object, Counter[str], list[tuple[str, int, str, str | None]]]] = {}


def reference(tmp_path_factory: pytest.TempPathFactory, mode: str):
    """Output, effects and recorded steps of a run that is never killed (once per mode)."""
    if mode not in _references:
        job = Job(tmp_path_factory.mktemp(f"reference-{mode}"), mode, None)
        try:
            output = job.run()
            steps = [step[:4] for step in job.steps()]
            _references[mode] = (output, job.effects(), steps)
        finally:
            job.close()
    return _references[mode]


def kill_with_steps_in_flight(job: Job, crash_at: int) -> list[tuple]:
    """Run the job with CRASH_AT, SIGKILL it once it is in the expected state; its steps."""
    recorded, in_flight = expected_at_kill(job.mode, crash_at)
    flying = {in_flight_line(job.mode, i) for i in range(crash_at, ITEMS)}
    child = job.start(CRASH_AT=str(crash_at))
    deadline = time.monotonic() + 90
    steps: list[tuple] = []
    try:
        while True:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, (job.effects(), steps)
            if sum(job.effects()[line] for line in flying) >= in_flight:
                steps = job.steps()
                if len(steps) >= recorded:
                    break
            time.sleep(0.02)
        # Every step that returned is recorded, after its effect: nothing more may
        # happen now. Check that nothing does.
        effects = job.effects()
        time.sleep(0.1)
        assert len(job.steps()) == recorded and job.effects() == effects
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    return steps


def check_crash_and_rerun(job: Job, crash_at: int, tmp_path_factory) -> None:
    output, effects, steps = reference(tmp_path_factory, job.mode)
    try:
        at_kill = kill_with_steps_in_flight(job, crash_at)
        killed_effects = job.effects()
        assert job.run() == output
        final = job.steps()
    finally:
        job.close()
    # The steps recorded before the kill are kept as they were (not run again) ...
    assert set(at_kill) <= set(final)
    # ... every step is recorded where an uncrashed run records it ...
    assert sorted(step[:4] for step in final) == sorted(steps)
    # ... and only the steps in flight at the kill had their effect twice.
    recorded_lines = {line for line in killed_effects if line not in _in_flight(job, crash_at)}
    in_flight_lines = _in_flight(job, crash_at) & set(killed_effects)
    assert len(in_flight_lines) == expected_at_kill(job.mode, crash_at)[1]
    assert job.effects() == effects + Counter(in_flight_lines), recorded_lines


def _in_flight(job: Job, crash_at: int) -> set[str]:
    return {in_flight_line(job.mode, i) for i in range(crash_at, ITEMS)}


@pytest.mark.parametrize("crash_at", [0, 3, 6])
@pytest.mark.parametrize("mode", MODES)
def test_sigkill_with_parallel_steps_in_flight_then_rerun(
    tmp_path, tmp_path_factory, mode, crash_at
):
    check_crash_and_rerun(Job(tmp_path / "job", mode, None), crash_at, tmp_path_factory)


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_with_parallel_steps_in_flight_on_postgresql(
    tmp_path, tmp_path_factory, postgres_url, mode
):
    check_crash_and_rerun(Job(tmp_path / "job", mode, postgres_url), 3, tmp_path_factory)
