"""Steps per second with many workflows at once, on threads and on asyncio, on both
stores, against a raw baseline measured in the same run.

Run ``python benchmarks/concurrency.py [--stores sqlite,postgresql]
[--concurrency 1,4,16,64] [--workflows 128] [--steps 20] [--repeats 3]``
(``--quick``: small sizes, one repeat, for the smoke test). PostgreSQL is a
throwaway server started from the ``postgresql`` package's binaries (fsync on,
as the tests start it), or ``--url``.

For each store and each concurrency C, W workflows of S trivial steps each
run C at a time: C threads (``@workflow`` and ``@step`` functions), or C
asyncio tasks on one loop (``async def`` workflows and steps whose body yields
to the loop once, as I/O would: without it the tasks would not interleave),
each running its share of the W one after the other. Steps per second is W*S over the wall time.
Each store runs in a child process of its own (a process has one runtime).

The baselines, in the same child and the same repeats (alternating which goes
first), write the same W*S rows into a table shaped like the steps table, on
the same store settings (SQLite: WAL, ``synchronous=NORMAL``; PostgreSQL: the
same server), by C threads on C connections:

- raw single rows: one INSERT and one commit per row (what a step must pay to
  be durable before its workflow goes on);
- raw batches: S rows per commit, one ``executemany`` (what sharing commits
  between workflows could approach).

Every number is the median over the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postgres import server, timed_threads  # benchmarks/postgres.py: this script's folder

import autodurable

ROOT = Path(__file__).resolve().parent.parent
ROW = "(workflow_id, position, name, status, output)"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS raw_steps (workflow_id TEXT NOT NULL, position INTEGER NOT NULL,"
    " name TEXT NOT NULL, status TEXT NOT NULL, output TEXT, PRIMARY KEY (workflow_id, position))"
)


@autodurable.step
def trivial(i: int) -> int:
    return i


@autodurable.workflow
def job(n: int) -> int:
    return sum(trivial(i) for i in range(n))


@autodurable.step
async def trivial_async(i: int) -> int:
    await asyncio.sleep(0)  # yields to the loop once, as a step doing I/O would
    return i


@autodurable.workflow
async def job_async(n: int) -> int:
    total = 0
    for i in range(n):
        total += await trivial_async(i)
    return total


def threads_rate(workflows: int, steps: int, concurrency: int) -> float:
    ids = [uuid.uuid4().hex for _ in range(workflows)]

    def work(index: int) -> None:
        for workflow_id in ids[index::concurrency]:
            autodurable.options(job, workflow_id=workflow_id)(steps)

    return workflows * steps / timed_threads(work, concurrency)


def asyncio_rate(workflows: int, steps: int, concurrency: int) -> float:
    ids = [uuid.uuid4().hex for _ in range(workflows)]

    async def share(index: int) -> None:
        for workflow_id in ids[index::concurrency]:
            await autodurable.options(job_async, workflow_id=workflow_id)(steps)

    async def everything() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(share(k) for k in range(concurrency)))
        return time.perf_counter() - started

    return workflows * steps / asyncio.run(everything())


class Raw:
    """The baselines: rows written by hand on `connections` connections of one store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql")
        with self.connect() as conn:
            conn.execute(SCHEMA)
            if not self.postgres:
                conn.commit()

    def connect(self) -> Any:
        if self.postgres:
            import psycopg

            from autodurable._store._postgres_url import parse_postgres_url

            # Without autodurable's own options (schema=, pool_size=...), which libpq refuses.
            return psycopg.connect(parse_postgres_url(self.url).conninfo)
        # A file of its own, next to the state: autodurable refuses a file with other tables.
        path = Path(self.url.removeprefix("sqlite:///")).with_name("raw.db")
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def rate(self, rows: int, concurrency: int, batch: int) -> float:
        """Rows per second, `batch` rows per commit, by `concurrency` threads."""
        mark = "%s" if self.postgres else "?"
        insert = f"INSERT INTO raw_steps {ROW} VALUES ({', '.join([mark] * 5)})"
        conns = [self.connect() for _ in range(concurrency)]
        prefix = uuid.uuid4().hex

        def work(index: int) -> None:
            conn: Any = conns[index]
            mine = list(range(index, rows, concurrency))
            for start in range(0, len(mine), batch):
                values = [
                    (f"{prefix}-{index}", i, "trivial", "succeeded", "1")
                    for i in mine[start : start + batch]
                ]
                if self.postgres:
                    with conn.cursor() as cursor:
                        cursor.executemany(insert, values)
                    conn.commit()
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(insert, values)
                    conn.execute("COMMIT")

        try:
            return rows / timed_threads(work, concurrency)
        finally:
            for conn in conns:
                conn.close()

    def drop(self) -> None:
        """Remove the baselines' table (a server given with --url keeps nothing of it)."""
        with self.connect() as conn:
            conn.execute("DROP TABLE raw_steps")
            if not self.postgres:
                conn.commit()


def measure_store(url: str, options: argparse.Namespace) -> dict[str, dict[int, float]]:
    """Medians of every variant at every concurrency, for the store at `url`."""
    autodurable.configure(database_url=url)
    raw = Raw(url)
    rows = options.workflows * options.steps
    variants: dict[str, Callable[[int], float]] = {
        "threads": lambda c: threads_rate(options.workflows, options.steps, c),
        "asyncio": lambda c: asyncio_rate(options.workflows, options.steps, c),
        "raw single rows": lambda c: raw.rate(rows, c, 1),
        "raw batches": lambda c: raw.rate(rows, c, options.steps),
    }
    for run in variants.values():
        run(2)  # warm up: connections, prepared statements, code paths
    found: dict[str, dict[int, list[float]]] = {name: {} for name in variants}
    names = list(variants)
    for repeat in range(options.repeats):
        for concurrency in options.concurrency:
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                found[name].setdefault(concurrency, []).append(variants[name](concurrency))
    raw.drop()
    return {
        name: {c: statistics.median(values) for c, values in by_c.items()}
        for name, by_c in found.items()
    }


def _list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"values must be integers >= 1: {text!r}")
    return values


def _report(store: str, results: dict[str, dict[int, float]]) -> None:
    levels = sorted(next(iter(results.values())))
    print(f"{store}: steps (rows) per second, medians")
    print("  " + f"{'concurrency':18}" + "".join(f"{c:>10}" for c in levels))
    for name, by_c in results.items():
        print("  " + f"{name:18}" + "".join(f"{by_c[c]:>10,.0f}" for c in levels))
    for name in ("threads", "asyncio"):
        ratios = "".join(
            f"{results[name][c] / results['raw single rows'][c]:>10.2f}" for c in levels
        )
        print("  " + f"{name + '/raw rows':18}" + ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--concurrency", type=_list, default=[1, 4, 16, 64])
    parser.add_argument("--workflows", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="a PostgreSQL server to use instead of a throwaway one")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one store's URL, in a child
    options = parser.parse_args()
    if options.quick:
        options.concurrency, options.workflows, options.steps, options.repeats = [1, 4], 8, 5, 1
    if options.child:
        print(json.dumps(measure_store(options.child, options)))
        return
    print(
        f"{options.workflows} workflows x {options.steps} steps, concurrency "
        f"{','.join(map(str, options.concurrency))}, {options.repeats} repeat(s)"
    )
    for store in options.stores.split(","):
        with tempfile.TemporaryDirectory() as folder, _store_url(store, folder, options) as url:
            argv = [sys.executable, __file__, "--child", url]
            argv += ["--concurrency", ",".join(map(str, options.concurrency))]
            argv += ["--workflows", str(options.workflows), "--steps", str(options.steps)]
            argv += ["--repeats", str(options.repeats)]
            done = subprocess.run(argv, capture_output=True, text=True, cwd=folder)
            if done.returncode != 0:
                sys.exit(f"{store}: the measuring child failed:\n{done.stderr}")
            results = json.loads(done.stdout.splitlines()[-1])
            _report(store, {k: {int(c): v for c, v in by.items()} for k, by in results.items()})


def _store_url(store: str, folder: str, options: argparse.Namespace) -> Any:
    if store == "sqlite":
        return contextlib.nullcontext(f"sqlite:///{folder}/state.db")
    if store != "postgresql":
        sys.exit(f"unknown store {store!r}: sqlite or postgresql")
    return server(options.url)


if __name__ == "__main__":
    main()
