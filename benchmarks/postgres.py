"""autodurable on PostgreSQL: per-step cost against a raw INSERT, and workflows/s.

Run ``python benchmarks/postgres.py [--url postgresql://...] [--steps 100]
[--repeats 7] [--workflows 200] [--workflow-steps 10] [--concurrency 1,4,16]``
(``--quick``: tiny sizes, one repeat, for the smoke test). Without ``--url`` a
throwaway server is started from the ``postgresql`` package's binaries (as the
tests do, with fsync on) and removed afterwards; with ``--url`` the benchmark
works in two schemas of its own (``autodurable_bench``, ``raw_bench``) that it
drops at the end.

Part 1, per-step cost, for a workflow of N steps, with ``time.perf_counter``:

- plain: N calls of the undecorated step function ``trivial(i) -> i``;
- autodurable: a ``@workflow`` calling the same function as a ``@step`` N
  times; the clock runs around the step loop inside the workflow body, so this
  is the marginal cost of a step (call, encode, one statement on a pooled
  connection);
- raw: N rows written by hand on one psycopg connection in autocommit mode
  with one cursor used again, one single-statement ``INSERT`` round trip
  each, into a table shaped like autodurable's steps table, on the same
  server: the least a program that records each step durably in PostgreSQL
  must pay.

The variants alternate within each repeat (in a rotating order) so that the
machine's noise is spread over them; every number is the median over the
repeats, in µs per call, step or row. "overhead" is autodurable minus plain;
"overhead/raw" divides it by the raw INSERT: 1.0x means a step costs what
writing its row by hand costs. The target is <= 1.3x.

Part 2, throughput: W workflows of S steps each, run by C threads of one
process at once (each thread runs its share one after the other), for each C;
workflows/s is W divided by the wall time (median over the repeats). The pool
has enough connections for every thread; commits of concurrent workflows
share the server's WAL flushes, so throughput should grow with C. Its baseline,
measured in the same repeats (alternating which goes first): the same W*S rows
written by hand with the raw INSERT by C threads on C connections. Where the raw
rows/s stop growing, the server and the machine (its cores, its disk's flushes)
are the limit, not autodurable; "steps/raw" compares the two at each C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

import autodurable

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.3
VARIANTS = ("plain", "durable", "raw")
RAW_SCHEMA, BENCH_SCHEMA = "raw_bench", "autodurable_bench"
RAW_INSERT = (
    f"INSERT INTO {RAW_SCHEMA}.steps (workflow_id, position, name, status, output) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def trivial(i: int) -> int:
    return i


durable_trivial = autodurable.step(trivial)
_loop = {"seconds": 0.0}


@autodurable.workflow
def run_steps(n: int) -> int:
    start = time.perf_counter()
    for i in range(n):
        durable_trivial(i)
    _loop["seconds"] = time.perf_counter() - start
    return n


@autodurable.workflow
def job(n: int) -> int:
    total = 0
    for i in range(n):
        total += durable_trivial(i)
    return total


def time_plain(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        trivial(i)
    return time.perf_counter() - start


def time_durable(n: int) -> float:
    autodurable.options(run_steps, workflow_id=uuid.uuid4().hex)(n)
    return _loop["seconds"]


def time_raw(cursor: psycopg.Cursor, n: int) -> float:
    workflow_id = uuid.uuid4().hex
    start = time.perf_counter()
    for i in range(n):
        cursor.execute(RAW_INSERT, (workflow_id, i + 1, "trivial", "succeeded", json.dumps(i)))
    return time.perf_counter() - start


def per_step(n: int, repeats: int, conn: psycopg.Connection) -> dict[str, list[float]]:
    """Samples in seconds per step (or row) of each variant."""
    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    cursor = conn.cursor()
    for _ in range(2):  # warm up: open the pool, register, prepare the statements
        time_plain(20)
        time_durable(20)
        time_raw(cursor, 20)
    for r in range(repeats):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for variant in order:
            if variant == "plain":
                samples["plain"].append(time_plain(n) / n)
            elif variant == "durable":
                samples["durable"].append(time_durable(n) / n)
            else:
                samples["raw"].append(time_raw(cursor, n) / n)
    return samples


def timed_threads(work: Callable[[int], None], threads: int) -> float:
    """Seconds for `threads` threads running ``work(index)`` at once; the first error raised."""
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # reported after the run
            failures.append(exc)

    runners = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    start = time.perf_counter()
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return elapsed


def throughput(workflows: int, steps: int, threads: int) -> float:
    """Workflows per second with `threads` workflows running at once."""
    ids = [uuid.uuid4().hex for _ in range(workflows)]

    def work(index: int) -> None:
        for workflow_id in ids[index::threads]:
            autodurable.options(job, workflow_id=workflow_id)(steps)

    return workflows / timed_threads(work, threads)


def raw_throughput(url: str, rows: int, threads: int) -> float:
    """Rows per second written by hand by `threads` threads, each on its own connection.

    The same single-statement INSERT as the per-step baseline: what the server
    and this process can do at that concurrency, with nothing of autodurable's.
    """
    conns = [psycopg.connect(url, autocommit=True) for _ in range(threads)]
    prefix = uuid.uuid4().hex

    def work(index: int) -> None:
        cursor = conns[index].cursor()
        for i in range(index, rows, threads):
            cursor.execute(RAW_INSERT, (f"{prefix}-{index}", i, "trivial", "succeeded", "1"))

    try:
        return rows / timed_threads(work, threads)
    finally:
        for conn in conns:
            conn.close()


def parse_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"values must be integers >= 1: {text!r}")
    return values


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """The base URL of the server to measure: the given one, or a throwaway one."""
    if url is not None:
        yield url
        return
    sys.path.insert(0, str(ROOT))
    from tests._postgres import temporary_server

    with temporary_server(fsync=True) as started:
        yield started.url()


def with_options(url: str, **options: object) -> str:
    joiner = "&" if "?" in url else "?"
    return url + joiner + "&".join(f"{key}={value}" for key, value in options.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing server (default: start a throwaway one)")
    parser.add_argument("--steps", type=int, default=100, help="N, steps per workflow (100)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    parser.add_argument("--workflows", type=int, default=200, help="W per concurrency (200)")
    parser.add_argument("--workflow-steps", type=int, default=10, help="S, steps each (10)")
    parser.add_argument(
        "--concurrency", type=parse_list, default=[1, 4, 16], help="C values (1,4,16)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.workflows, args.workflow_steps = 5, 1, 8, 2
    repeats = max(1, args.repeats)
    pool_size = max(args.concurrency) + 4  # the heartbeat and the listener need one too

    with server(args.url) as base:
        url = with_options(base, schema=BENCH_SCHEMA, pool_size=pool_size)
        with psycopg.connect(base, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("fsync", "synchronous_commit", "wal_sync_method")
            }
            conn.execute(f"DROP SCHEMA IF EXISTS {RAW_SCHEMA} CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE")
            conn.execute(f"CREATE SCHEMA {RAW_SCHEMA}")
            conn.execute(
                f'CREATE TABLE {RAW_SCHEMA}.steps (workflow_id TEXT COLLATE "C" NOT NULL, '
                "position INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, "
                "output TEXT, PRIMARY KEY (workflow_id, position))"
            )
            autodurable.configure(database_url=url, lease_seconds=30)
            print(f"autodurable {autodurable.__version__} PostgreSQL benchmark")
            print(
                f"Python {platform.python_version()} ({platform.python_implementation()}) "
                f"on {platform.platform()}; psycopg {psycopg.__version__}"
            )
            print(
                f"PostgreSQL {version} ({'throwaway server' if args.url is None else 'given'}"
                f"): " + " ".join(f"{k}={v}" for k, v in settings.items())
            )
            print(
                f"settings: steps={args.steps} repeats={repeats} workflows={args.workflows} "
                f"workflow_steps={args.workflow_steps} "
                f"concurrency={','.join(map(str, args.concurrency))} pool_size={pool_size}"
            )
            print()
            try:
                samples = per_step(args.steps, repeats, conn)
                rates: dict[int, list[float]] = {c: [] for c in args.concurrency}
                raw_rates: dict[int, list[float]] = {c: [] for c in args.concurrency}
                throughput(max(4, args.workflows // 10), args.workflow_steps, 4)  # warm up
                rows = args.workflows * args.workflow_steps
                for r in range(repeats):
                    for c in args.concurrency:
                        if r % 2:  # alternate which goes first
                            raw_rates[c].append(raw_throughput(base, rows, c))
                        rates[c].append(throughput(args.workflows, args.workflow_steps, c))
                        if not r % 2:
                            raw_rates[c].append(raw_throughput(base, rows, c))
            finally:
                # Retire the executor and close the pool before the schemas go.
                autodurable.configure(database_url="sqlite:///:memory:")
                conn.execute(f"DROP SCHEMA IF EXISTS {RAW_SCHEMA} CASCADE")
                conn.execute(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE")

    def med(values: list[float]) -> float:
        return statistics.median(values) * 1e6

    plain, durable, raw = med(samples["plain"]), med(samples["durable"]), med(samples["raw"])
    overhead = durable - plain
    ratio = overhead / raw if raw > 0 else float("inf")
    print(f"Per step, medians over {repeats} repeat(s) of N={args.steps}, µs:")
    print(
        f"{'plain µs/call':>13}  {'autodurable µs/step':>19}  {'raw INSERT µs/row':>17}  "
        f"{'overhead µs/step':>16}  {'overhead/raw':>12}"
    )
    mark = " *" if ratio > TARGET else "  "
    print(
        f"{plain:>13.3f}  {durable:>19.1f}  {raw:>17.1f}  {overhead:>16.1f}  {ratio:>10.2f}x{mark}"
    )
    print(f"target: overhead/raw <= {TARGET:.1f}x" + ("  (* above)" if ratio > TARGET else ""))
    print()
    print(
        f"Throughput, {args.workflows} workflows of {args.workflow_steps} steps, "
        f"medians over {repeats} repeat(s):"
    )
    print(
        f"{'concurrent':>10}  {'workflows/s':>11}  {'steps/s':>9}  {'vs 1':>6}  "
        f"{'raw rows/s':>10}  {'raw vs 1':>8}  {'steps/raw':>9}"
    )
    first = statistics.median(rates[args.concurrency[0]])
    raw_first = statistics.median(raw_rates[args.concurrency[0]])
    for c in args.concurrency:
        rate, raw_rate = statistics.median(rates[c]), statistics.median(raw_rates[c])
        steps = rate * args.workflow_steps
        print(
            f"{c:>10}  {rate:>11.1f}  {steps:>9.0f}  {rate / first:>5.2f}x  "
            f"{raw_rate:>10.0f}  {raw_rate / raw_first:>7.2f}x  {steps / raw_rate:>8.2f}x"
        )
    print(
        "raw rows/s: the per-step INSERT written by C threads on C connections of this "
        "process (the ceiling of this server and machine at that concurrency); a workflow "
        "also writes its start and its end."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
