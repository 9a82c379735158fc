"""The ingest example end to end: a batch of documents summarized through a
rate-limited queue by several workers, with workers and the parent killed with
SIGKILL along the way.

    python examples/ingest/demo.py [--documents 1000] [--workers 3] [--kills 5] [--seed 7]
    python examples/ingest/demo.py --quick          # 100 documents, 2 kills

1. starts the fake LLM endpoint (llm_endpoint.py) on a free port: it logs
   every call it receives, and refuses (429) calls beyond its limits;
2. starts the workers: ``autodurable worker --import pipeline``, each a process;
3. runs the parent, ``ingest.py BATCH --documents N``: it enqueues one workflow
   per document on the queue ``summaries`` and waits for them all;
4. as the summaries are stored, kills a worker or the parent with SIGKILL at
   moments drawn from a random generator seeded with ``--seed`` (the same seed
   gives the same plan: which process, after how many documents, how long
   before it is started again), and starts it again;
5. once the parent prints the batch's result, stops everything and checks,
   from the endpoint's log (calls.jsonl) and the results table (results.db):
   every document summarized and its summary stored exactly once; a document
   called twice only when the worker making its first call was killed during
   it; never more calls in flight, nor more in any second, than the endpoint
   allows; no call refused. Prints the numbers and the time taken.

The workflow state is in the demo's folder on SQLite, or in PostgreSQL when
``AUTODURABLE_DATABASE_URL=postgresql://...`` is set (in a schema of its own,
dropped at the end, unless the URL names one). The folder is new and removed
at the end, unless --keep is given (or --folder names one). Exits 1 if any
check fails.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
INDENT = "     "
LATENCY = 0.1  # seconds the fake model takes per call

sys.path.insert(0, str(HERE))  # model_limits.py sits next to this file
from model_limits import CONCURRENCY, MODEL_MAX_IN_FLIGHT, MODEL_MAX_PER_SECOND, RATE  # noqa: E402

# -- where the state goes -----------------------------------------------------------


def state_url(folder: Path) -> tuple[str, str | None]:
    """The database URL for the workflow state, and a schema made for this run (or None).

    SQLite in `folder` by default; ``$AUTODURABLE_DATABASE_URL`` when set. A
    PostgreSQL URL naming no schema gets a new one, so that nothing of an
    earlier run (or of another application) is in the demo's queue.
    """
    url = os.environ.get("AUTODURABLE_DATABASE_URL")
    if not url:
        return f"sqlite:///{folder / 'state.db'}", None
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if parts.scheme not in ("postgresql", "postgres") or any(k == "schema" for k, _ in query):
        return url, None
    schema = f"ingest_demo_{secrets.token_hex(4)}"
    query.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query))), schema


def drop_schema(url: str, schema: str) -> None:
    """Drop the schema `state_url` made (psycopg is installed with PostgreSQL support)."""
    import psycopg

    parts = urlsplit(url)
    ours = ("schema", "pool_size", "retry_seconds")  # autodurable's options, not libpq's
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ours]
    with psycopg.connect(urlunsplit(parts._replace(query=urlencode(query)))) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# -- the processes ----------------------------------------------------------------


@dataclass
class Kill:
    """One planned kill: when (after how many stored summaries), whom, how long down."""

    after: int
    victim: str  # "parent" or "worker N"
    pause: float


def plan_kills(seed: int, kills: int, documents: int, workers: int) -> list[Kill]:
    """The kills, reproducibly: between 5% and 85% of the batch, the parent at least
    once and a worker at least once (when there are two kills or more)."""
    rng = random.Random(seed)
    low, high = max(1, documents * 5 // 100), max(2, documents * 85 // 100)
    points = sorted(rng.sample(range(low, high), min(kills, high - low)))
    names = ["parent"] + [f"worker {n}" for n in range(1, workers + 1)]
    victims = [rng.choice(names) for _ in points]
    if len(victims) >= 2 and "parent" not in victims:
        victims[rng.randrange(len(victims))] = "parent"
    if len(victims) >= 2 and workers and all(v == "parent" for v in victims):
        victims[rng.randrange(len(victims))] = rng.choice(names[1:])
    return [
        Kill(after, victim, rng.uniform(0.1, 0.8))
        for after, victim in zip(points, victims, strict=True)
    ]


class Cluster:
    """The endpoint, the workers and the parent, started and killed by the demo."""

    def __init__(self, folder: Path, env: dict[str, str], batch: str, documents: int) -> None:
        self.folder = folder
        self.env = env
        self.batch = batch
        self.documents = documents
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.parent: subprocess.Popen[str] | None = None
        self.parent_runs = 0
        self.endpoint: subprocess.Popen[str] | None = None
        self.started = time.time()

    def clock(self) -> str:
        return f"[{time.time() - self.started:5.1f} s]"

    def start_endpoint(self) -> str:
        """Start llm_endpoint.py on a free port; its URL."""
        self.endpoint = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "llm_endpoint.py"),
                "--port=0",
                f"--log={self.folder / 'calls.jsonl'}",
                f"--latency={LATENCY}",
                f"--max-in-flight={MODEL_MAX_IN_FLIGHT}",
                f"--max-per-second={MODEL_MAX_PER_SECOND}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.endpoint.stdout is not None
        first_line = self.endpoint.stdout.readline()  # "listening on PORT"
        if not first_line.startswith("listening on "):
            raise RuntimeError(f"the endpoint did not start: {first_line!r}")
        url = f"http://127.0.0.1:{first_line.split()[-1]}"
        self.env["INGEST_LLM_URL"] = url
        return url

    def start_worker(self, name: str) -> int:
        """Start ``autodurable worker --import pipeline``; its pid."""
        log = (self.folder / f"{name.replace(' ', '-')}.log").open("ab")
        with log:  # the worker's stderr (its status line), appended across restarts
            worker = subprocess.Popen(
                [sys.executable, "-m", "autodurable", "worker", "--import", "pipeline"],
                cwd=self.folder,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.workers[name] = worker
        return worker.pid

    def start_parent(self) -> int:
        """Run ``ingest.py BATCH --documents N`` in the background; its pid."""
        with (self.folder / "parent.log").open("a") as log:
            self.parent = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "ingest.py"),
                    self.batch,
                    f"--documents={self.documents}",
                ],
                cwd=self.folder,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.parent_runs += 1
        return self.parent.pid

    def kill(self, victim: str) -> int:
        """SIGKILL the parent or a worker (no cleanup runs: a power cut); its pid."""
        process = self.parent if victim == "parent" else self.workers[victim]
        assert process is not None
        when = time.time()
        process.send_signal(signal.SIGKILL)
        process.wait()
        if victim == "parent" and self.parent is not None and self.parent.stdout is not None:
            self.parent.stdout.close()
        with (self.folder / "kills.jsonl").open("a") as log:
            log.write(json.dumps({"victim": victim, "pid": process.pid, "at": when}) + "\n")
        return process.pid

    def stop(self) -> None:
        """Stop the workers (SIGTERM: what they run stays pending) and the endpoint."""
        for worker in self.workers.values():
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers.values():
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if self.parent is not None and self.parent.poll() is None:
            self.parent.kill()
            self.parent.wait()
        if self.parent is not None and self.parent.stdout is not None:
            self.parent.stdout.close()
        if self.endpoint is not None:
            self.endpoint.send_signal(signal.SIGINT)  # it closes its log and exits
            try:
                self.endpoint.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.endpoint.kill()
                self.endpoint.wait()
            assert self.endpoint.stdout is not None
            self.endpoint.stdout.close()


def stored(folder: Path) -> int:
    """How many summaries results.db holds (0 before the first is stored)."""
    path = folder / "results.db"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM summaries").fetchone()[0])
    except sqlite3.Error:  # the table is not there yet
        return 0


def run(cluster: Cluster, plan: list[Kill], timeout: float) -> tuple[dict[str, Any], float]:
    """Run the parent to the end, killing as planned; its result and the seconds taken."""
    pid = cluster.start_parent()
    began = time.time()
    print(f"{INDENT}{cluster.clock()} started the parent (pid {pid})")
    plan = list(plan)
    while True:
        parent = cluster.parent
        assert parent is not None and parent.stdout is not None
        if parent.poll() is not None:
            output = parent.stdout.read()
            if parent.returncode != 0:
                raise RuntimeError(
                    f"the parent failed (exit code {parent.returncode}); see parent.log"
                )
            took = time.time() - began
            print(f"{INDENT}{cluster.clock()} the parent finished: {output.strip()}")
            return json.loads(output), took
        for name, worker in cluster.workers.items():
            if worker.poll() is not None:
                raise RuntimeError(f"{name} exited by itself (exit code {worker.returncode})")
        done = stored(cluster.folder)
        if plan and done >= plan[0].after:
            kill = plan.pop(0)
            pid = cluster.kill(kill.victim)
            print(
                f"{INDENT}{cluster.clock()} {done:>5} stored: killed {kill.victim} "
                f"(pid {pid}) with SIGKILL; starting it again in {kill.pause:.1f} s"
            )
            time.sleep(kill.pause)
            again = (
                cluster.start_parent()
                if kill.victim == "parent"
                else cluster.start_worker(kill.victim)
            )
            print(f"{INDENT}{cluster.clock()}{'':>14}{kill.victim} is pid {again} now")
        if time.time() - began > timeout:
            raise RuntimeError(f"the batch did not finish within {timeout:.0f} s")
        time.sleep(0.02)


# -- the checks -------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def most_in_any_second(times: list[float]) -> int:
    """The most of `times` in any window [t, t + 1 s)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most of the (start, end) spans open at the same moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in edges:  # an end before a start at the same time: -1 sorts first
        running += change
        peak = max(peak, running)
    return peak


def check(
    folder: Path, batch: str, documents: int, result: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """What the endpoint's log and the results table show: (lines to print, problems)."""
    lines: list[str] = []
    problems: list[str] = []
    expected = {f"{batch}-doc-{n:05d}" for n in range(documents)}
    calls = read_jsonl(folder / "calls.jsonl")
    kills = read_jsonl(folder / "kills.jsonl")
    answered = [call for call in calls if call["status"] == 200]
    refused = [call for call in calls if call["status"] == 429]
    other = [call for call in calls if call["status"] not in (200, 429)]
    by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in sorted(answered, key=lambda call: call["start"]):
        by_doc[call["doc"]].append(call)

    # Every document called; a second call only after a kill cut the first short.
    if set(by_doc) - expected:
        problems.append(f"calls for documents not in the batch: {sorted(set(by_doc) - expected)}")
    if expected - set(by_doc):
        problems.append(f"{len(expected - set(by_doc))} documents were never summarized")
    repeats: list[str] = []
    for doc, its_calls in sorted(by_doc.items()):
        for earlier, later in itertools.pairwise(its_calls):
            # A killed process made its calls before the kill (the endpoint may log
            # one a moment after: it starts timing when its thread picks the call up).
            cut = [
                kill
                for kill in kills
                if str(kill["pid"]) == earlier["pid"] and kill["at"] <= later["start"]
            ]
            if not cut:
                problems.append(f"{doc} was called again without a kill: calls {its_calls}")
            else:
                repeats.append(f"{doc} ({cut[0]['victim']}, pid {cut[0]['pid']})")
    lines.append(
        f"calls answered: {len(answered)} for {len(by_doc)} documents; "
        f"refused (429): {len(refused)}; other: {len(other)}"
    )
    if repeats:
        lines.append(
            f"called twice: {len(repeats)} document(s). Each time the worker making the first "
            "call was\n   killed before the call's step returned, so the resumed workflow "
            "asked again\n   (a step cut short runs again: once per kill at most):"
        )
        lines.extend(
            textwrap.wrap(", ".join(repeats), 86, initial_indent="  ", subsequent_indent="  ")
        )
    else:
        lines.append("called twice: none (no kill caught a worker in the middle of a call)")
    if refused:
        problems.append(f"the endpoint refused {len(refused)} calls: its limits were exceeded")
    if other:
        problems.append(f"{len(other)} calls were answered neither 200 nor 429")

    # Every summary stored once, and it is the answer to the document's last call.
    with contextlib.closing(sqlite3.connect(folder / "results.db")) as conn:
        rows = conn.execute("SELECT doc_id, call, writes, pid FROM summaries").fetchall()
    killed_pids = {kill["pid"] for kill in kills}
    stored_docs = {doc for doc, *_ in rows}
    again = [doc for doc, _, writes, pid in rows if writes > 1]
    lines.append(
        f"summaries stored: {len(rows)} rows for {len(stored_docs)} documents, each the answer "
        f"to its last call;\n   stored again (a store cut short by a kill; the key "
        f"absorbs it): {len(again)}"
    )
    if stored_docs != expected or len(rows) != documents:
        problems.append(f"results.db holds {len(rows)} rows, expected one per document")
    for doc, call, writes, pid in rows:
        last = by_doc.get(doc, [{}])[-1].get("call")
        if call != last:
            problems.append(f"{doc}: stored the answer of call {call}, its last call was {last}")
        if writes > 1 and pid not in killed_pids:
            problems.append(f"{doc} was stored {writes} times, and its writer was not killed")

    # The limits, as the endpoint saw them.
    peak = max((call["in_flight"] for call in answered), default=0)
    swept = most_at_once([(call["start"], call["end"]) for call in answered])
    per_second = most_in_any_second([call["start"] for call in answered])
    lines.append(
        f"most calls in flight at once: {peak} (swept from the log's times: {swept});\n"
        f"   queue concurrency {CONCURRENCY}, endpoint limit {MODEL_MAX_IN_FLIGHT}"
    )
    lines.append(
        f"most calls in any 1 s window: {per_second}; queue rate {RATE} (started), "
        f"endpoint limit {MODEL_MAX_PER_SECOND}/s"
    )
    if max(peak, swept) > CONCURRENCY:
        problems.append(f"{max(peak, swept)} calls in flight at once, more than {CONCURRENCY}")
    if per_second > MODEL_MAX_PER_SECOND:
        problems.append(f"{per_second} calls in one second, more than {MODEL_MAX_PER_SECOND}")

    # The parent's fan-in.
    if result.get("documents") != documents or result.get("distinct") != documents:
        problems.append(f"the parent gathered {result}, expected {documents} documents")
    return lines, problems


def show_queue(env: dict[str, str], folder: Path) -> None:
    """``autodurable queues show summaries``, as an operator would look."""
    done = subprocess.run(
        [sys.executable, "-m", "autodurable", "queues", "show", "summaries"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(INDENT + line)


# -- the demo ---------------------------------------------------------------------


def demo(folder: Path, args: argparse.Namespace) -> list[str]:
    """Run the demo in `folder`; the problems found (none when all is well)."""
    url, schema = state_url(folder)
    batch = f"batch{args.seed}-{secrets.token_hex(2)}"  # a new batch every run
    env = dict(os.environ)
    env.update(
        AUTODURABLE_DATABASE_URL=url,
        INGEST_DATA=str(folder),
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
    )
    plan = plan_kills(args.seed, args.kills, args.documents, args.workers)
    cluster = Cluster(folder, env, batch, args.documents)
    print(
        f"Ingesting {args.documents} documents with {args.workers} workers, "
        f"{len(plan)} kills (seed {args.seed})."
    )
    print(f"State: {masked(url)}. Files: {folder}")
    try:
        endpoint = cluster.start_endpoint()
        print()
        print(f"1. Started the fake LLM endpoint at {endpoint}: {LATENCY:.2f} s a call; it")
        print(
            f"   allows {MODEL_MAX_IN_FLIGHT} calls at once and {MODEL_MAX_PER_SECOND} a second "
            "(429 beyond)."
        )
        pids = [cluster.start_worker(f"worker {n}") for n in range(1, args.workers + 1)]
        print(f"2. Started {args.workers} workers (`autodurable worker --import pipeline`):")
        print(f"   pids {', '.join(map(str, pids))}. Queue `summaries`: concurrency {CONCURRENCY},")
        print(f"   rate {RATE}, in all workers together.")
        print(f"3. Running `ingest.py {batch} --documents {args.documents}`, with kills:")
        timeout = max(120.0, 10 * args.documents / float(RATE.split("/")[0]))
        result, took = run(cluster, plan, timeout)
    finally:
        cluster.stop()
    print()
    print("4. The queue, as `autodurable queues show summaries` shows it:")
    show_queue(env, folder)
    print()
    print("5. What the endpoint saw (calls.jsonl) and what was stored (results.db):")
    lines, problems = check(folder, batch, args.documents, result)
    for line in lines:
        print(f"   {line}")
    rate = args.documents / took
    print(
        f"   time: {took:.1f} s from the parent's first start to its result, {rate:.1f} "
        f"documents/s; the parent ran {cluster.parent_runs} times"
    )
    if schema is not None and not args.keep:
        drop_schema(url, schema)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, help="documents in the batch (default 1000)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    parser.add_argument("--kills", type=int, help="SIGKILLs along the way (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="seeds the kill plan (default 7)")
    parser.add_argument("--quick", action="store_true", help="100 documents, 2 kills")
    parser.add_argument("--keep", action="store_true", help="keep the demo's folder")
    parser.add_argument("--folder", type=Path, help="work in this (new or empty) folder; kept")
    args = parser.parse_args(argv)
    if args.documents is None:
        args.documents = 100 if args.quick else 1000
    if args.kills is None:
        args.kills = 2 if args.quick else 5
    if args.documents < 1 or args.workers < 1 or args.kills < 0:
        parser.error("--documents and --workers must be at least 1, --kills at least 0")
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
        folder, args.keep = args.folder.resolve(), True
    else:
        folder = Path(tempfile.mkdtemp(prefix="autodurable-ingest-")).resolve()
    try:
        problems = demo(folder, args)
    finally:
        if args.keep:
            print(f"\nKept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1
    print(
        f"OK: {args.documents} documents summarized and stored once each, through "
        "SIGKILLed workers and parent; the endpoint's limits were never exceeded."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
