"""examples/ingest: a batch fanned out to a rate-limited queue served by worker
processes, with workers and the parent SIGKILLed along the way, on each store.

The demo is run for real (quick mode: 100 documents, 2 kills). Its exit code
is not taken on trust: the test reads the endpoint's call log, the kill log,
the results table and the workflow store itself, and checks every document
summarized and stored once (a second call only for a document whose caller
was killed during its first), the limits as the endpoint saw them, and the
queue's rate as the store recorded the starts. Its `check` is also fed logs
with a repeat nobody explains and with too many calls in a second, to show
that it would notice them.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from autodurable._store import SUCCEEDED, open_store

from .helpers import ROOT, child_env

EXAMPLE = ROOT / "examples" / "ingest"
DOCUMENTS = 100
IN_FLIGHT, PER_SECOND = 8, 60  # the endpoint's limits
CONCURRENCY, WORKER_CONCURRENCY, RATE = 8, 4, 48  # the queue's


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def most_within(times: list[float], period: float, closed: bool = False) -> int:
    """The most of `times` in any window of `period` seconds ([t, t + period), or
    [t, t + period] when `closed`)."""
    times = sorted(times)
    find = bisect.bisect_right if closed else bisect.bisect_left
    return max(find(times, t + period) - i for i, t in enumerate(times))


def dequeue_times(database_url: str) -> list[float]:
    """When each workflow of the queue was started (dequeued), from the store's table."""
    query = "SELECT dequeued_at FROM {}workflows WHERE queue_name = 'summaries'"
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            rows = conn.execute(query.format("")).fetchall()
    else:
        import psycopg

        from autodurable._store._postgres_url import parse_postgres_url

        url = parse_postgres_url(database_url)
        with psycopg.connect(url.conninfo) as conn:
            rows = conn.execute(query.format(f'"{url.schema}".')).fetchall()
    return [row[0] for row in rows]


def run_demo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run demo.py to the end in a session of its own: if it hangs, it is killed
    with the endpoint and the workers it started."""
    demo = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "demo.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = demo.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        out, err = demo.communicate()
        pytest.fail(f"the demo did not finish within 100 s:\n{out}{err}")
    return subprocess.CompletedProcess(demo.args, demo.returncode, out, err)


def test_the_demo_summarizes_every_document_once_through_kills_within_the_limits(
    tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "demo"
    done = run_demo(
        "--quick", f"--folder={folder}", env=child_env(AUTODURABLE_DATABASE_URL=database_url)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 100 documents summarized" in done.stdout
    found = re.search(r"`ingest\.py (\S+) --documents 100`", done.stdout)
    assert found is not None, done.stdout
    batch = found.group(1)
    expected = {f"{batch}-doc-{n:05d}" for n in range(DOCUMENTS)}

    # The kills really happened: the parent once at least, a worker once at least.
    kills = read_jsonl(folder / "kills.jsonl")
    assert len(kills) == 2
    assert {kill["victim"].split()[0] for kill in kills} == {"parent", "worker"}
    assert done.stdout.count("with SIGKILL") == 2

    # The endpoint's log: nothing refused, every document asked, and asked again
    # only when the worker that asked first was killed after asking.
    calls = read_jsonl(folder / "calls.jsonl")
    assert {call["status"] for call in calls} == {200}
    by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in sorted(calls, key=lambda call: call["start"]):
        by_doc[call["doc"]].append(call)
    assert set(by_doc) == expected
    killed_workers = [kill for kill in kills if kill["victim"] != "parent"]
    for doc, its_calls in by_doc.items():
        assert len(its_calls) <= 1 + len(killed_workers), (doc, its_calls)
        for earlier, later in itertools.pairwise(its_calls):
            assert any(
                # The first call was made by a worker killed before the second: a
                # killed process made all its calls before its kill.
                str(kill["pid"]) == earlier["pid"] and kill["at"] <= later["start"]
                for kill in killed_workers
            ), (doc, its_calls, kills)
    repeated = sum(len(its_calls) - 1 for its_calls in by_doc.values())
    assert repeated <= WORKER_CONCURRENCY * len(killed_workers)
    assert len(calls) == DOCUMENTS + repeated

    # The limits, as the endpoint saw them (from the log's times, not its counter).
    assert most_at_once([(call["start"], call["end"]) for call in calls]) <= CONCURRENCY
    assert max(call["in_flight"] for call in calls) <= IN_FLIGHT
    assert most_within([call["start"] for call in calls], 1.0) <= PER_SECOND
    # And the queue's own rule, from the starts the store recorded: exactly.
    started = dequeue_times(database_url)
    assert len(started) == DOCUMENTS
    assert most_within(started, 1.0, closed=True) <= RATE

    # The results table: one row per document, holding the answer of its last call.
    with contextlib.closing(sqlite3.connect(folder / "results.db")) as conn:
        rows = conn.execute("SELECT doc_id, call, writes, pid FROM summaries").fetchall()
    assert Counter(doc for doc, *_ in rows) == dict.fromkeys(expected, 1)
    for doc, call, writes, pid in rows:
        assert call == by_doc[doc][-1]["call"]
        assert writes == 1 or pid in {kill["pid"] for kill in killed_workers}

    # The store: the parent and one child per document (none enqueued twice), all
    # succeeded, and the parent's fan-in counted every document.
    store = open_store(database_url)
    try:
        workflows = store.list_workflows(limit=1000)
        assert Counter(w.name for w in workflows) == {"ingest": 1, "summarize_document": DOCUMENTS}
        assert {w.status for w in workflows} == {SUCCEEDED}
        (parent,) = [w for w in workflows if w.name == "ingest"]
        assert parent.workflow_id == f"ingest-{batch}"
        result = json.loads(parent.output)
        assert (result["documents"], result["distinct"]) == (DOCUMENTS, DOCUMENTS)
    finally:
        store.close()


@pytest.fixture
def demo() -> Iterator[ModuleType]:
    """The demo module, imported here; the modules it imports are forgotten afterwards."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import demo as module

        yield module
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in ("demo", "model_limits"):
            sys.modules.pop(name, None)


def fake_run(folder: Path, calls: list[dict[str, Any]], kills: list[dict[str, Any]]) -> None:
    """The files of a finished run of two documents, as the demo's check reads them."""
    folder.mkdir(exist_ok=True)
    (folder / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls))
    (folder / "kills.jsonl").write_text("".join(json.dumps(k) + "\n" for k in kills))
    last = {call["doc"]: call["call"] for call in sorted(calls, key=lambda c: c["start"])}
    with contextlib.closing(sqlite3.connect(folder / "results.db")) as conn, conn:
        conn.execute("CREATE TABLE summaries (doc_id, call, writes, pid)")
        conn.executemany("INSERT INTO summaries VALUES (?, ?, 1, 1)", list(last.items()))


def call(n: int, doc: int, pid: str, start: float, took: float = 0.1) -> dict[str, Any]:
    return {
        "call": n, "doc": f"b-doc-{doc:05d}", "pid": pid, "status": 200, "start": start,
        "end": start + took, "in_flight": 1,
    }  # fmt: skip


def test_the_check_accepts_a_repeat_only_after_a_kill(demo: ModuleType, tmp_path: Path) -> None:
    result = {"documents": 2, "distinct": 2}
    calls = [call(1, 0, "11", 10.0), call(2, 1, "11", 10.05), call(3, 1, "12", 11.0)]
    fake_run(tmp_path / "killed", calls, [{"victim": "worker 1", "pid": 11, "at": 10.1}])
    lines, problems = demo.check(tmp_path / "killed", "b", 2, result)
    assert problems == []
    assert any(line.startswith("called twice: 1") for line in lines)

    fake_run(tmp_path / "not-killed", calls, [])
    (problem,) = demo.check(tmp_path / "not-killed", "b", 2, result)[1]
    assert problem.startswith("b-doc-00001 was called again without a kill")


def test_the_check_notices_more_calls_in_a_second_than_the_endpoint_allows(
    demo: ModuleType, tmp_path: Path
) -> None:
    calls = [call(n, n, "11", 10.0 + n / 100, took=0.001) for n in range(PER_SECOND + 1)]
    fake_run(tmp_path, calls, [])
    result = {"documents": PER_SECOND + 1, "distinct": PER_SECOND + 1}
    (problem,) = demo.check(tmp_path, "b", PER_SECOND + 1, result)[1]
    assert problem == f"{PER_SECOND + 1} calls in one second, more than {PER_SECOND}"
