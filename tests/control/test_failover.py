"""Many executors on one PostgreSQL database: failover, and a server restart.

Failover: three executor processes, each standing for a machine of its own
(liveness between them is the lease alone), start 200 workflows of 10 steps
and watch for orphans. One is SIGKILLed mid-way. The others adopt its
unfinished workflows once its lease has run out. Every step writes a line to
its workflow's effect file (O_APPEND, one write) when it starts and when it
ends; from those lines and from the store's records the test asserts that all
200 finish, that every step ran once except the ones the kill interrupted,
that nothing was adopted before the lease ran out, and that no workflow ever
ran on two executors at once.

Server restart: PostgreSQL is restarted while one executor runs 30 workflows;
they all finish, every step ran exactly once (store writes are retried, not
steps), and a LISTEN connection reconnects by itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from autodurable._store import SUCCEEDED, WorkflowRecord, open_store
from autodurable._store._postgres import parse_postgres_url

from ..helpers import child_env, write_script

LEASE = 4.0
STEPS = 10

FLOW = """
import os, time
import autodurable

EFFECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "effects")
STEP_SECONDS = float(os.environ.get("STEP_SECONDS", "0.03"))

def effect(workflow_id, what, position):
    line = f"{what} {position} {os.getpid()} {time.time():.6f}\\n"
    fd = os.open(os.path.join(EFFECTS, workflow_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())  # one write: lines never interleave
    os.close(fd)

@autodurable.step
def work(workflow_id, position):
    effect(workflow_id, "start", position)
    time.sleep(STEP_SECONDS)
    effect(workflow_id, "end", position)
    return position * position

@autodurable.workflow
def job(workflow_id, steps):
    return sum(work(workflow_id, position) for position in range(1, steps + 1))
"""

EXECUTOR = """
import os, sys, time
import autodurable, autodurable._core._executor

# Each executor stands for a machine of its own: liveness between them is the lease.
autodurable._core._executor.HOSTNAME = os.environ["MACHINE"]
import flow

autodurable.configure(database_url=os.environ["URL"], lease_seconds=float(os.environ["LEASE"]))
autodurable.recover(watch=True)
for workflow_id in sys.argv[2:]:
    job = autodurable.options(flow.job, workflow_id=workflow_id)
    autodurable.start(job, workflow_id, int(sys.argv[1]))
print("started", flush=True)
while not os.path.exists("stop"):
    time.sleep(0.05)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_script(tmp_path, "flow.py", FLOW)
    write_script(tmp_path, "executor.py", EXECUTOR)
    (tmp_path / "effects").mkdir()
    return tmp_path


def spawn(folder: Path, url: str, machine: str, ids: list[str], **extra: str) -> subprocess.Popen:
    env = child_env(
        URL=url,
        LEASE=str(LEASE),
        MACHINE=machine,
        PYTHONPATH=f"{folder}{os.pathsep}{child_env()['PYTHONPATH']}",
        **extra,
    )
    return subprocess.Popen(
        [sys.executable, str(folder / "executor.py"), str(STEPS), *ids],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_effects(folder: Path, workflow_id: str) -> list[tuple[str, int, int, float]]:
    """(what, position, pid, time) of every line of one workflow's effect file."""
    path = folder / "effects" / workflow_id
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines()]
    return [(what, int(pos), int(pid), float(at)) for what, pos, pid, at in lines]


def ended_by(folder: Path, pid: int) -> int:
    return sum(
        1
        for path in (folder / "effects").iterdir()
        for what, _, by, _ in read_effects(folder, path.name)
        if what == "end" and by == pid
    )


def executors_of(url: str, machine: str) -> dict[str, float]:
    """Executor id -> last heartbeat (server clock) of a machine's executors.

    An executor that was killed keeps its row, with the time of its last heartbeat.
    """
    parsed = parse_postgres_url(url)
    with psycopg.connect(parsed.conninfo) as conn:
        rows = conn.execute(
            f'SELECT executor_id, heartbeat_at FROM "{parsed.schema}".executors '
            "WHERE hostname = %s",
            (machine,),
        ).fetchall()
    return dict(rows)


def wait_all_succeeded(store, ids: list[str], timeout: float) -> list[WorkflowRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = [store.get_workflow(workflow_id) for workflow_id in ids]
        if all(r is not None and r.status == SUCCEEDED for r in records):
            return records
        done = sum(1 for r in records if r is not None and r.status == SUCCEEDED)
        if time.monotonic() > deadline:
            unfinished = [(w.workflow_id, o) for w, o in store.unfinished_workflows()]
            raise AssertionError(
                f"only {done} of {len(ids)} workflows finished; unfinished: {unfinished[:5]}"
            )
        time.sleep(0.1)


def stop(children: list[subprocess.Popen], folder: Path) -> list[tuple[int, str]]:
    (folder / "stop").touch()
    outcomes = []
    for child in children:
        try:
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
        outcomes.append((child.returncode, err))
    return outcomes


def test_three_executors_one_killed_all_200_workflows_finish_once(project, postgres_url):
    ids = [f"w{i:03d}" for i in range(200)]
    shares = [ids[i::3] for i in range(3)]
    children = [
        spawn(project, postgres_url, f"machine-{i}", share) for i, share in enumerate(shares)
    ]
    store = open_store(postgres_url)
    try:
        for child in children:
            assert child.stdout.readline().strip() == "started", child.stderr.read()
        victim = children[1]
        # Mid-way: the victim has finished some of its steps, far from all of them.
        deadline = time.monotonic() + 60
        while ended_by(project, victim.pid) < len(shares[1]) * STEPS // 4:
            assert time.monotonic() < deadline and victim.poll() is None
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        assert victim.wait(timeout=30) == -signal.SIGKILL
        records = wait_all_succeeded(store, ids, timeout=90)
        outcomes = stop(children[::2], project)
        assert [code for code, _ in outcomes] == [0, 0], outcomes
        histories = {workflow_id: store.list_steps(workflow_id) for workflow_id in ids}
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate()
        store.close()

    expected = sum(position * position for position in range(1, STEPS + 1))
    assert all(record.output == str(expected) for record in records)
    victim_ids = executors_of(postgres_url, "machine-1")
    assert len(victim_ids) == 1
    last_heartbeat = next(iter(victim_ids.values()))
    adopted, interrupted = set(), 0
    for workflow_id in ids:
        history = histories[workflow_id]
        assert [(s.position, s.status, s.attempts) for s in history] == [
            (p, SUCCEEDED, 1) for p in range(1, STEPS + 1)
        ], workflow_id
        # Recorded owners: one executor, or the victim for a prefix and one adopter after.
        owners = [s.executor_id for s in history]
        blocks = [owner for i, owner in enumerate(owners) if i == 0 or owners[i - 1] != owner]
        assert len(blocks) <= 2, (workflow_id, owners)
        if len(blocks) == 2:
            assert blocks[0] in victim_ids and blocks[1] not in victim_ids, (workflow_id, owners)
            cut = owners.index(blocks[1])
            assert history[cut - 1].finished_at < history[cut].started_at
        lines = read_effects(project, workflow_id)
        starts = Counter(pos for what, pos, _, _ in lines if what == "start")
        pids = [pid for _, _, pid, _ in lines]
        if len(set(pids)) > 1:
            adopted.add(workflow_id)
        # Effects: one pid after the other, never interleaved (no two executors at once).
        runs = [pid for i, pid in enumerate(pids) if i == 0 or pids[i - 1] != pid]
        assert len(runs) == len(set(runs)) <= 2, (workflow_id, lines)
        if len(runs) == 2:
            assert runs[0] == victim.pid, (workflow_id, lines)
            first_adopted = min(at for _, _, pid, at in lines if pid == runs[1])
            last_victim = max(at for _, _, pid, at in lines if pid == runs[0])
            assert last_victim < killed_at < first_adopted
            # Adopted only once the lease had run out since the victim's last heartbeat
            # (server and processes share this machine's clock).
            assert first_adopted >= last_heartbeat + LEASE - 0.05, (workflow_id, lines)
        # Every recorded step ran once; only a step the kill interrupted ran twice.
        twice = [pos for pos, count in starts.items() if count > 1]
        assert sorted(starts) == list(range(1, STEPS + 1)), (workflow_id, lines)
        assert all(count <= 2 for count in starts.values()), (workflow_id, lines)
        if twice:
            # The step the victim was in when it died: the adopter's first, and recorded
            # by the adopter (no step the victim recorded ran again).
            assert len(twice) == 1 and len(runs) == 2, (workflow_id, lines)
            first = next(pid for what, pos, pid, _ in lines if pos == twice[0])
            assert first == victim.pid
            assert twice[0] == min(pos for _, pos, pid, _ in lines if pid == runs[1])
            assert history[twice[0] - 1].executor_id not in victim_ids
            interrupted += 1
    assert adopted, "the kill came after the victim had finished all its work"
    assert adopted <= set(shares[1])
    assert interrupted <= len(adopted)


RESTART = """
import os, sys
import autodurable, flow

autodurable.configure(database_url=os.environ["URL"], lease_seconds=float(os.environ["LEASE"]))
handles = [autodurable.start(autodurable.options(flow.job, workflow_id=w), w, int(sys.argv[1]))
           for w in sys.argv[2:]]
print("started", flush=True)
print(sorted({h.result(timeout=120) for h in handles}), flush=True)
"""


def test_a_server_restart_delays_workflows_but_loses_and_repeats_nothing(
    project, postgres_server, postgres_url
):
    write_script(project, "restart.py", RESTART)
    ids = [f"r{i:02d}" for i in range(30)]
    store, other = open_store(postgres_url), open_store(postgres_url)
    listening = store.subscribe(None)
    env = child_env(
        URL=postgres_url,
        LEASE=str(LEASE),
        STEP_SECONDS="0.05",
        PYTHONPATH=f"{project}{os.pathsep}{child_env()['PYTHONPATH']}",
    )
    child = subprocess.Popen(
        [sys.executable, str(project / "restart.py"), str(STEPS), *ids],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while ended_by(project, child.pid) < 60:  # a fifth of the steps
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.02)
        postgres_server.restart(down_for=1.0)
        out, err = child.communicate(timeout=90)
        assert child.returncode == 0, err
        expected = sum(position * position for position in range(1, STEPS + 1))
        assert out.split("\n")[0] == f"[{expected}]"
        assert "unreachable" in err and "reachable again" in err  # the outage was noticed

        # This process's stores reconnect too: reads work, and notifications arrive.
        wait_all_succeeded(store, ids, timeout=10)
        recorded = {w: {s.position for s in store.list_steps(w)} for w in ids}
        deadline = time.monotonic() + 30
        while not store._listener._listening.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        listening.wait(0)  # the wake-up every subscriber gets after a reconnection
        now = time.time()
        other.create_workflow(WorkflowRecord("unowned", "m:f", "pending", "{}", None, None,
                                             None, now, now))  # fmt: skip
        assert listening.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        listening.close()
        store.close()
        other.close()
    for workflow_id in ids:
        lines = read_effects(project, workflow_id)
        starts = Counter(pos for what, pos, _, _ in lines if what == "start")
        assert starts == Counter(range(1, STEPS + 1)), (workflow_id, lines)
    assert all(positions == set(range(1, STEPS + 1)) for positions in recorded.values())
