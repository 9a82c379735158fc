"""Crash safety, proved by SIGKILLing real child processes and running them again.

Each child appends one line per effect to a file before its step is recorded,
so the file counts how often each step really ran. After every kill the same
command is run again; the tests assert that every completed step ran exactly
once, the interrupted one at most once more, and the output equals an
uncrashed run's.

Every test runs on each store of AUTODURABLE_TEST_STORES: the children get the
database's URL in AUTODURABLE_DATABASE_URL and the tests read what they recorded
through `open_store`.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from autodurable._store import open_store

from ..helpers import child_env, count_lines, run_python, wait_until, write_script

STEPS = 5

JOB = """
import json, os, signal, sys, time
import autodurable

effects, crash_at = sys.argv[1], os.environ.get("CRASH_AT", "")
step_delay = float(os.environ.get("STEP_DELAY", "0"))

def effect(line):
    if os.environ.get("RUN"):
        line += "@" + os.environ["RUN"]  # which run (process) did it
    with open(effects, "a") as fh:
        fh.write(line + "\\n")

def crash_point(point):
    if point == crash_at:
        os.kill(os.getpid(), signal.SIGKILL)

@autodurable.step
def work(i):
    effect(f"step{i}")
    time.sleep(step_delay)
    crash_point(f"during:{i}")  # the effect happened, the result is not recorded yet
    return {"i": i, "square": i * i}

@autodurable.workflow
def job(n):
    results = []
    for i in range(1, n + 1):
        crash_point(f"before:{i}")
        results.append(work(i))
        crash_point(f"after:{i}")
    return results

print(json.dumps(autodurable.options(job, workflow_id="job-1")(int(sys.argv[2]))))
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    return write_script(tmp_path, "job.py", JOB)


def expected_output(tmp_path: Path) -> list[dict[str, int]]:
    folder = tmp_path / "reference"
    folder.mkdir()
    script = write_script(folder, "job.py", JOB)
    done = run_python(script, str(folder / "effects"), str(STEPS))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def recorded_steps(url: str, workflow_id: str) -> list[tuple[int, str, str, int]]:
    """(position, name, status, attempts) of the steps recorded for `workflow_id` at `url`."""
    store = open_store(url)
    try:
        return [(s.position, s.name, s.status, s.attempts) for s in store.list_steps(workflow_id)]
    finally:
        store.close()


def recorded_outputs(url: str, workflow_id: str) -> list[tuple[str, str | None]]:
    """(name, encoded output) of the steps recorded for `workflow_id` at `url`."""
    store = open_store(url)
    try:
        return [(s.name, s.output) for s in store.list_steps(workflow_id)]
    finally:
        store.close()


@pytest.mark.parametrize(
    "point",
    ["before:1", "during:1", "after:1", "before:3", "during:3", "after:3", "during:5", "after:5"],
)
def test_sigkill_at_each_point_then_rerun(
    tmp_path: Path, job: Path, point: str, database_url: str
) -> None:
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    killed = run_python(job, str(effects), str(STEPS), env={**env, "CRASH_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    kind, _, number = point.partition(":")
    ran_before = int(number) - (kind == "before")
    assert count_lines(effects) == Counter({f"step{i}": 1 for i in range(1, ran_before + 1)})

    rerun = run_python(job, str(effects), str(STEPS), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout) == expected_output(tmp_path)
    expected = Counter({f"step{i}": 1 for i in range(1, STEPS + 1)})
    if kind == "during":
        expected[f"step{number}"] += 1  # interrupted before its record: ran once more
    assert count_lines(effects) == expected
    assert recorded_steps(database_url, "job-1") == [
        (i, "work", "succeeded", 1) for i in range(1, STEPS + 1)
    ]


def test_sigkill_at_random_moments_until_done(tmp_path: Path, job: Path, database_url: str) -> None:
    """Kill the job from outside at random times, over and over, until it finishes."""
    effects = tmp_path / "effects"
    steps = 30
    rng = random.Random(20261121)
    kills = 0
    for run in range(8):
        child = subprocess.Popen(
            [sys.executable, str(job), str(effects), str(steps)],
            cwd=tmp_path,
            env=child_env(AUTODURABLE_DATABASE_URL=database_url, STEP_DELAY="0.05", RUN=str(run)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Kill at random moments in the first runs; then let it finish, however
        # slow the machine is. 30 steps of 50 ms: a run killed by 0.8 s leaves more
        # than the next one can finish by 0.8 s, however fast the start-up.
        deadline = rng.uniform(0.3, 0.8) if run < 6 else 120
        try:
            out, err = child.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.communicate()
            kills += 1
            continue
        assert child.returncode == 0, err
        break
    else:
        pytest.fail("the job never finished")
    assert kills >= 2, "the job finished before it could be killed; make it slower"
    assert json.loads(out) == [{"i": i, "square": i * i} for i in range(1, steps + 1)]

    # Every step ran; a step ran again in a later run only if the earlier run was
    # killed while executing it, i.e. it was the last thing that run did.
    executions = [line.split("@") for line in effects.read_text().split()]
    runs_of: dict[str, list[int]] = {}
    last_in_run: dict[int, str] = {}
    for step, run_index in executions:
        runs_of.setdefault(step, []).append(int(run_index))
        last_in_run[int(run_index)] = step
    assert set(runs_of) == {f"step{i}" for i in range(1, steps + 1)}
    for step, runs in runs_of.items():
        for earlier in runs[:-1]:
            assert last_in_run[earlier] == step, f"{step} ran again after run {earlier} finished it"
    assert sum(len(runs) - 1 for runs in runs_of.values()) <= kills
    assert [row[2] for row in recorded_steps(database_url, "job-1")] == ["succeeded"] * steps


RETRY_JOB = """
import os, signal, sys
import autodurable

effects = sys.argv[1]

@autodurable.step(retries=autodurable.Retry(max_attempts=3, initial_interval=0.01))
def flaky():
    with open(effects, "a") as fh:
        fh.write("attempt\\n")
    with open(effects) as fh:
        attempts = len(fh.read().split())
    if attempts == 3 and os.environ.get("CRASH"):
        os.kill(os.getpid(), signal.SIGKILL)  # die in the middle of the third attempt
    raise ConnectionError(f"attempt {attempts} failed")

@autodurable.workflow
def job():
    return flaky()

try:
    autodurable.options(job, workflow_id="retry-1")()
except ConnectionError as exc:
    print("failed:", exc)
"""


def test_retry_attempts_are_durable_across_a_crash(tmp_path: Path, database_url: str) -> None:
    script = write_script(tmp_path, "retry.py", RETRY_JOB)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    killed = run_python(script, str(effects), env={**env, "CRASH": "1"})
    assert killed.returncode == -signal.SIGKILL
    assert count_lines(effects)["attempt"] == 3
    assert recorded_steps(database_url, "retry-1") == [(1, "flaky", "retrying", 2)]

    rerun = run_python(script, str(effects), env=env)
    assert rerun.returncode == 0, rerun.stderr
    # Two attempts were recorded before the crash: only the third runs again,
    # not three fresh ones.
    assert count_lines(effects)["attempt"] == 4
    assert rerun.stdout.strip() == "failed: attempt 4 failed"
    assert recorded_steps(database_url, "retry-1") == [(1, "flaky", "failed", 3)]


BACKOFF_JOB = """
import sys, time
import autodurable

effects = sys.argv[1]

@autodurable.step(retries=autodurable.Retry(max_attempts=3, initial_interval=3, jitter=0))
def flaky():
    with open(effects, "a") as fh:
        fh.write(f"{time.time()}\\n")
    with open(effects) as fh:
        attempts = len(fh.read().split())
    if attempts < 2:
        raise ConnectionError("not yet")
    return attempts

@autodurable.workflow
def job():
    return flaky()

print("result", autodurable.options(job, workflow_id="backoff-1")())
"""


def test_a_retry_backoff_is_durable_across_a_crash(tmp_path: Path, database_url: str) -> None:
    script = write_script(tmp_path, "backoff.py", BACKOFF_JOB)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    child = subprocess.Popen(
        [sys.executable, str(script), str(effects)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:  # killed during its 3 s backoff, once the failed attempt is recorded
        wait_until(lambda: recorded_steps(database_url, "backoff-1") != [], timeout=30)
    finally:
        child.kill()
        child.communicate()
    failed_at = float(effects.read_text().split()[0])
    rerun = run_python(script, str(effects), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "result 2"
    second = float(effects.read_text().split()[1])
    # The second attempt waits for the rest of the recorded backoff, not at once.
    assert second - failed_at >= 2.9
    assert recorded_steps(database_url, "backoff-1") == [(1, "flaky", "succeeded", 2)]


SLEEP_JOB = """
import sys, time
import autodurable

effects = sys.argv[1]

@autodurable.step
def mark(name):
    with open(effects, "a") as fh:
        fh.write(f"{name} {time.time()}\\n")

@autodurable.workflow
def job():
    mark("before")
    autodurable.sleep(float(sys.argv[2]))
    mark("after")

autodurable.options(job, workflow_id="sleepy")()
"""


def test_durable_sleep_sleeps_only_the_remainder_after_a_crash(
    tmp_path: Path, database_url: str
) -> None:
    script = write_script(tmp_path, "sleepy.py", SLEEP_JOB)
    effects = tmp_path / "effects"
    duration = 4.0
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    child = subprocess.Popen(
        [sys.executable, str(script), str(effects), str(duration)], cwd=tmp_path, env=env
    )
    try:
        # "before" is written once the child has created the schema: read it from then on.
        wait_until(effects.exists, interval=0.05)
        # Wait until the wake-up time is recorded.
        wait_until(lambda: len(recorded_steps(database_url, "sleepy")) >= 2, interval=0.05)
        time.sleep(1.0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    outputs = recorded_outputs(database_url, "sleepy")
    (wake_output,) = [row for row in outputs if row[0] == "autodurable.sleep"]
    wake = json.loads(wake_output[1])
    rerun_started = time.time()
    rerun = run_python(script, str(effects), str(duration), env=env)
    assert rerun.returncode == 0, rerun.stderr
    lines = dict(line.split() for line in effects.read_text().splitlines())
    after = float(lines["after"])
    assert after >= wake  # it did sleep until the recorded wake-up time
    assert after - rerun_started < duration - 0.2  # but not the whole duration again
    # The wake-up time was not recorded anew by the second run.
    assert [
        row for row in recorded_outputs(database_url, "sleepy") if row[0] == "autodurable.sleep"
    ] == [("autodurable.sleep", wake_output[1])]


TWO_PROCESSES = """
import sys, time
import autodurable

effects = sys.argv[1]

@autodurable.step
def slow(i):
    with open(effects, "a") as fh:
        fh.write(f"{sys.argv[2]}:slow{i}\\n")
    time.sleep(float(sys.argv[3]))
    return i

@autodurable.workflow
def job():
    return [slow(1), slow(2)]

print(autodurable.options(job, workflow_id="shared")())
"""


def test_second_process_waits_then_adopts_when_owner_is_killed(
    tmp_path: Path, database_url: str
) -> None:
    script = write_script(tmp_path, "two.py", TWO_PROCESSES)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(effects), "owner", "30"], cwd=tmp_path, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while "owner:slow1" not in count_lines(effects) and time.monotonic() < deadline:
            time.sleep(0.05)
        waiter = subprocess.Popen(
            [sys.executable, str(script), str(effects), "waiter", "0"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert waiter.poll() is None  # it waits: the owner is alive
        assert count_lines(effects) == Counter({"owner:slow1": 1})
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    killed = time.monotonic()
    # The owner was on this host: its death shows in the process table at once, so
    # the waiter adopts without waiting out a lease or a long poll, on either store.
    wait_until(lambda: "waiter:slow1" in count_lines(effects), timeout=30)
    adopted_after = time.monotonic() - killed
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and out.strip() == "[1, 2]"
    assert count_lines(effects) == Counter({"owner:slow1": 1, "waiter:slow1": 1, "waiter:slow2": 1})
    assert adopted_after < 2.5, f"the waiter adopted {adopted_after:.1f}s after the owner died"
