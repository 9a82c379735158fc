"""Queues: autodurable side by side with DBOS Transact, on SQLite and PostgreSQL.

Run ``python benchmarks/queues.py [--backend sqlite|postgres|both] [--repeats 3]
[--samples 40] [--workflows 500] [--rated 200] [--rate 20] [--markdown]``
(``--quick``: tiny sizes and one repeat, for the smoke test). Needs the
``bench`` extra (DBOS Transact) and, for PostgreSQL, the ``postgres`` extra and
the server binaries: the throwaway server of ``compare.py`` (``fsync=on``) is
started and removed at the end.

Every library gets, per repeat and backend, a new database (a schema on
PostgreSQL) and four worker processes (``_queues_worker.py worker``: autodurable
through ``recover(watch=True, queues=...)``, as ``autodurable worker --queue``;
DBOS through ``DBOS.listen_queues`` and ``DBOS.launch()``), each warmed up by
one workflow run in-process; a separate client process enqueues (it serves
nothing) and reads the results:

- (a) enqueue-to-start latency: one workflow at a time onto an idle queue that
  one worker serves, after a random pause of ``--pause`` seconds (so that the
  worker waits at its longest interval, at a random phase of it); the time from
  just before ``enqueue`` to the first line of the workflow body, both taken with
  ``time.time()`` on this host. Median and p99 of ``--samples`` workflows (after
  ``--warmup`` more);
- (b) throughput: W workflows of one trivial step, enqueued at once by the
  client onto a queue that 1, 2 or 4 of the workers serve (after a few untimed
  ones, so that every worker has dequeued before); W divided by the time from
  the first enqueue to the end of the last workflow body. The client's own
  enqueue rate is shown too: a burst cannot finish faster than it is enqueued;
- (c) rate-limit accuracy: N workflows onto a queue limited to R per second,
  served by two workers. Both libraries start up to R at once and then up to R
  per second (a sliding window), so the rate achieved is (N - R) divided by the
  time from the first start to the last one; the error is its difference from
  R, in %. "Most in any 1 s" counts the starts (workflow bodies, a few ms after
  their dequeue) in the busiest one-second window: the limit, R, if it held.

Workers and clients of one library run alone; the libraries alternate, in an
order that rotates with every repeat, so that the machine's noise falls on
both. Every number in the table is the median over the repeats (for (a), of
each repeat's median and p99); the values of every repeat follow the table.

Settings, the same for both libraries: SQLite in WAL mode with
``synchronous=NORMAL`` (the pragmas DBOS is given by ``compare.py``'s
listener), PostgreSQL with a pool of 20 connections per process; otherwise each
library's defaults, among which how often an idle worker looks at its queues:
autodurable at once when PostgreSQL notifies an enqueue and, on SQLite,
within 5 ms of another process's commit (it polls ``PRAGMA data_version``),
DBOS every second (``polling_interval_sec``); and how much one worker takes
at once: autodurable up to its 32 worker threads, DBOS everything waiting.
Each DBOS process has an executor id of its own.

How to read it: "autodurable/DBOS" divides autodurable's median by DBOS's: on
time rows (ms) below 1.0x, on rate rows (/s) above 1.0x favours autodurable.
Targets: latency at most 0.10x, throughput at least 10x, rate error within 5%.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (  # the backends and the throwaway PostgreSQL server
    Backend,
    Runner,
    SQLiteBackend,
    divide,
    number,
    positive,
    postgres_backend,
    postgres_unavailable,
    progress,
    ratio,
    versions,
)

WORKER = Path(__file__).resolve().parent / "_queues_worker.py"
RESULT, READY = "RESULT ", "READY"
LIBRARIES = ("autodurable", "dbos")
TITLES = {"autodurable": "autodurable", "dbos": "DBOS"}
WORKER_COUNTS = (1, 2, 4)
# What each of the four workers serves: the first all, the second the queues of
# 2 and 4 workers and the rate-limited one, the others the queue of 4 workers.
SERVES = (
    ["latency", "burst1", "burst2", "burst4", "rated"],
    ["burst2", "burst4", "rated"],
    ["burst4"],
    ["burst4"],
)
LATENCY_TARGET = 0.10  # autodurable's latency / DBOS's, at most
# The batch rows, and the DBOS metric each is compared with (DBOS has no batch enqueue).
BATCH_BASELINE = {f"batch{k}": f"burst{k}" for k in WORKER_COUNTS} | {"batch_enqueue": "enqueue"}
THROUGHPUT_TARGET = 10.0  # autodurable's throughput / DBOS's, at least
RATE_TARGET = 5.0  # rate-limit error, %, at most (either way)
POOL_SIZE = 20
Samples = dict[str, dict[str, list[float]]]  # library -> metric -> one value per repeat


# -- processes -------------------------------------------------------------------


class Workers:
    """Four worker processes of one library on one database, until `stop`."""

    def __init__(self, runner: Runner, library: str, spec: dict[str, Any], timeout: float):
        self.processes: list[tuple[subprocess.Popen[str], IO[str]]] = []
        try:
            for index, serve in enumerate(SERVES):
                errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop)
                config = {**spec, "serve": serve, "label": f"worker-{index}"}
                process = subprocess.Popen(
                    [sys.executable, str(WORKER), "worker", library, json.dumps(config)],
                    env=runner.env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                )
                self.processes.append((process, errors))
            for process, errors in self.processes:
                self._wait_ready(library, process, errors, timeout)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _wait_ready(
        library: str, process: subprocess.Popen[str], errors: IO[str], timeout: float
    ) -> None:
        assert process.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        if not lines or lines[0].strip() != READY:
            process.kill()
            process.wait()
            errors.seek(0)
            raise RuntimeError(f"a {library} worker did not start:\n{errors.read()[-4000:]}")

    def stop(self) -> None:
        for process, _ in self.processes:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()  # the worker's signal to stop
        for process, errors in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
            errors.close()
        self.processes = []


def client(runner: Runner, library: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run the client process for one task; its result."""
    command = [sys.executable, str(WORKER), "client", library, json.dumps(spec)]
    done = subprocess.run(
        command, env=runner.env, capture_output=True, text=True, timeout=runner.timeout
    )
    results = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not results:
        raise RuntimeError(
            f"{spec['task']} client for {library} failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )
    return dict(json.loads(results[-1][len(RESULT) :]))


# -- measuring -------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def rate_figures(starts: list[float], limit: int, period: float) -> dict[str, float]:
    """Achieved rate (per s), its error against limit/period (%), most starts in a period."""
    span = starts[-1] - starts[0]
    achieved = (len(starts) - limit) / span if span > 0 else float("nan")
    configured = limit / period
    most, first = 0, 0
    for last, at in enumerate(starts):
        while at - starts[first] >= period:
            first += 1
        most = max(most, last - first + 1)
    return {
        "rate": achieved,
        "rate_error": (achieved / configured - 1) * 100,
        "rate_most": float(most),
    }


def measure(backend: Backend, runner: Runner, sizes: dict[str, Any], repeats: int) -> Samples:
    samples: Samples = {library: defaultdict(list) for library in LIBRARIES}
    used = []
    for r in range(repeats):
        order = LIBRARIES[r % 2 :] + LIBRARIES[: r % 2]
        progress(f"{backend.name}: repeat {r + 1}/{repeats} ({', '.join(order)})")
        for library in order:
            spec = {**backend.fresh(f"q_{library}_{r}"), **sizes}
            used.append(spec)
            backend.settle()
            workers = Workers(runner, library, spec, sizes["start_timeout"])
            try:
                measure_one(runner, library, spec, samples[library], r)
            finally:
                workers.stop()
    for spec in used:
        backend.drop(spec)
    return samples


def measure_one(
    runner: Runner, library: str, spec: dict[str, Any], into: dict[str, list[float]], r: int
) -> None:
    def run(task: str, **extra: Any) -> dict[str, Any]:
        return client(runner, library, {**spec, "task": task, "label": "client", **extra})

    got = run("latency", seed=r)
    latencies = got["latencies"]
    into["lat_median"].append(statistics.median(latencies))
    into["lat_p99"].append(percentile(latencies, 99))
    progress(
        f"  {library}: latency median {statistics.median(latencies) * 1e3:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1e3:.1f} ms"
    )
    for count in WORKER_COUNTS:
        # autodurable twice: one enqueue per workflow (as DBOS), then one enqueue_many.
        for batch in (False, True) if library == "autodurable" else (False,):
            got = run("burst", queue=f"burst{count}", warm=2 * count, batch=batch)
            into[f"batch{count}" if batch else f"burst{count}"].append(got["per_s"])
            into["batch_enqueue" if batch else "enqueue"].append(got["enqueue_per_s"])
            progress(
                f"  {library}: {spec['workflows']} workflows, {count} worker(s)"
                f"{', enqueue_many' if batch else ''}: {got['per_s']:.0f}/s (ran in "
                f"{got['processes']} process(es); enqueued at {got['enqueue_per_s']:.0f}/s)"
            )
    got = run("rate")
    figures = rate_figures(got["starts"], spec["rate_limit"], spec["rate_period"])
    for metric, value in figures.items():
        into[metric].append(value)
    progress(
        f"  {library}: rate limit {spec['rate_limit']}/s: {figures['rate']:.2f}/s "
        f"({figures['rate_error']:+.1f}%), at most {figures['rate_most']:.0f} in 1 s"
    )


# -- reporting -------------------------------------------------------------------


def rows(sizes: dict[str, Any]) -> list[tuple[str, str, str, float, bool]]:
    """(metric, workload, unit, scale, has a ratio) of every row."""
    w, n, limit = sizes["workflows"], sizes["rated"], sizes["rate_limit"]
    burst = [
        (
            f"burst{k}",
            f"(b) burst of {w:,} workflows, {k} worker{'s' if k > 1 else ''}",
            "workflows/s",
            1.0,
            True,
        )
        for k in WORKER_COUNTS
    ]
    batch = [
        (
            f"batch{k}",
            f"(b) burst of {w:,} by enqueue_many, {k} worker{'s' if k > 1 else ''} "
            "(DBOS: no batch, one enqueue each)",
            "workflows/s",
            1.0,
            True,
        )
        for k in WORKER_COUNTS
    ]
    return [
        ("lat_median", "(a) enqueue-to-start latency, idle, median", "ms", 1e3, True),
        ("lat_p99", "(a) enqueue-to-start latency, idle, p99", "ms", 1e3, True),
        *burst,
        ("enqueue", f"(b) enqueue of {w:,} by one client thread", "enqueues/s", 1.0, True),
        *batch,
        (
            "batch_enqueue",
            f"(b) enqueue_many of {w:,} (DBOS: no batch, one enqueue each)",
            "enqueues/s",
            1.0,
            True,
        ),
        ("rate", f"(c) {n:,} workflows limited to {limit}/s, 2 workers", "started/s", 1.0, False),
        ("rate_error", "(c) rate-limit error", "%", 1.0, False),
        ("rate_most", "(c) most started in any 1 s", "workflows", 1.0, False),
    ]


def med(samples: Samples, library: str, metric: str) -> float | None:
    if library == "dbos":  # no batch enqueue: its one enqueue per workflow
        metric = BATCH_BASELINE.get(metric, metric)
    values = samples[library].get(metric)
    return statistics.median(values) if values else None


def signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}"


def table(samples: Samples, sizes: dict[str, Any], markdown: bool) -> list[str]:
    header = ["workload", "unit", *(TITLES[lib] for lib in LIBRARIES), "autodurable/DBOS"]
    body = []
    for metric, workload, unit, scale, has_ratio in rows(sizes):
        values = [med(samples, library, metric) for library in LIBRARIES]
        show = signed if metric == "rate_error" else number
        cells = [show(None if v is None else v * scale) for v in values]
        versus = ratio(divide(values[0], values[1])) if has_ratio else "—"
        body.append([workload, unit, *cells, versus])
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
        return lines + ["| " + " | ".join(row) + " |" for row in body]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in body)]


def per_repeat(samples: Samples, sizes: dict[str, Any]) -> list[str]:
    lines = []
    for metric, workload, unit, scale, _ in rows(sizes):
        show = signed if metric == "rate_error" else number
        for library in LIBRARIES:
            if library == "dbos" and metric in BATCH_BASELINE:
                continue  # no batch enqueue: its values are those of the rows above
            values = samples[library].get(metric, [])
            if metric in ("enqueue", "batch_enqueue"):  # one per burst: each repeat's median
                step = len(WORKER_COUNTS)
                values = [
                    statistics.median(values[i : i + step]) for i in range(0, len(values), step)
                ]
            text = " / ".join(show(v * scale) for v in values)
            lines.append(f"  {workload}, {TITLES[library]} ({unit}): {text}")
    return lines


def targets(name: str, samples: Samples) -> list[str]:
    lines = []
    for metric, what in (("lat_median", "latency median"), ("lat_p99", "latency p99")):
        value = divide(med(samples, "autodurable", metric), med(samples, "dbos", metric))
        verdict = "met" if value is not None and value <= LATENCY_TARGET else "MISSED"
        lines.append(
            f"  {name}: {what}, autodurable/DBOS {ratio(value)} "
            f"(target <= {LATENCY_TARGET:.2f}x): {verdict}"
        )
    for k in WORKER_COUNTS:
        value = divide(med(samples, "autodurable", f"burst{k}"), med(samples, "dbos", f"burst{k}"))
        verdict = "met" if value is not None and value >= THROUGHPUT_TARGET else "MISSED"
        lines.append(
            f"  {name}: throughput with {k} worker{'s' if k > 1 else ''}, autodurable/DBOS "
            f"{ratio(value)} (target >= {THROUGHPUT_TARGET:.0f}x): {verdict}"
        )
    for k in WORKER_COUNTS:
        value = divide(med(samples, "autodurable", f"batch{k}"), med(samples, "dbos", f"batch{k}"))
        verdict = "met" if value is not None and value >= THROUGHPUT_TARGET else "MISSED"
        lines.append(
            f"  {name}: throughput with {k} worker{'s' if k > 1 else ''}, autodurable's "
            f"enqueue_many/DBOS's enqueue {ratio(value)} (target >= {THROUGHPUT_TARGET:.0f}x): "
            f"{verdict}"
        )
    ours, theirs = med(samples, "autodurable", "rate_error"), med(samples, "dbos", "rate_error")
    verdict = "met" if ours is not None and abs(ours) <= RATE_TARGET else "MISSED"
    lines.append(
        f"  {name}: rate-limit error, autodurable {signed(ours)}% (target within "
        f"{RATE_TARGET:.0f}%): {verdict}; DBOS {signed(theirs)}%"
    )
    return lines


# -- command line ------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeats", type=positive, default=3, help="repeats (default 3)")
    parser.add_argument("--samples", type=positive, default=40, help="(a): workflows (40)")
    parser.add_argument("--warmup", type=int, default=3, help="(a): untimed first ones (3)")
    parser.add_argument(
        "--pause", type=float, nargs=2, default=[0.35, 1.35], metavar=("MIN", "MAX"),
        help="(a): seconds between enqueues, uniformly random (0.35 1.35)",
    )  # fmt: skip
    parser.add_argument("--workflows", type=positive, default=500, help="(b): W (500)")
    parser.add_argument("--rated", type=positive, default=200, help="(c): workflows (200)")
    parser.add_argument("--rate", type=positive, default=20, help="(c): limit per second (20)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--timeout", type=float, default=900, help="per client process, s")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.samples, args.warmup, args.pause = 1, 3, 1, [0.05, 0.1]
        args.workflows, args.rated, args.rate = 8, 8, 4
    if args.rated <= args.rate:
        parser.error("--rated must be larger than --rate (a rate needs more than one window)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = {
        "samples": args.samples,
        "warmup": args.warmup,
        "pause": args.pause,
        "workflows": args.workflows,
        "rated": args.rated,
        "rate_limit": args.rate,
        "rate_period": 1.0,
        "settle": 0.5,
        "start_timeout": 120.0,
        "synchronous": "normal",
    }
    runner = Runner(args.timeout)
    wanted = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: dict[str, tuple[str, Samples]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="autodurable-queues-") as folder:
        if "sqlite" in wanted:
            sqlite_backend = SQLiteBackend(Path(folder), "normal")
            samples = measure(sqlite_backend, runner, sizes, args.repeats)
            results["sqlite"] = (sqlite_backend.describe(), samples)
        reason = postgres_unavailable() if "postgres" in wanted else None
        if reason is not None:
            if args.backend == "postgres":
                print(f"cannot measure on PostgreSQL: {reason}", file=sys.stderr)
                return 2
            skipped["postgres"] = reason
        elif "postgres" in wanted:
            with postgres_backend(POOL_SIZE) as pg:
                description = pg.describe()
                results["postgres"] = (description, measure(pg, runner, sizes, args.repeats))

    print("Queues: autodurable compared with DBOS Transact")
    print(versions())
    print(
        f"settings: repeats={args.repeats} samples={args.samples} warmup={args.warmup} "
        f"pause={args.pause[0]:g}-{args.pause[1]:g}s workflows={args.workflows} "
        f"rated={args.rated} rate={args.rate}/s; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    verdicts: list[str] = []
    for name, (description, samples) in results.items():
        print()
        print(f"{'SQLite' if name == 'sqlite' else 'PostgreSQL'}: {description}")
        print(f"medians over {args.repeats} repeat(s):")
        print()
        for line in table(samples, sizes, args.markdown):
            print(line)
        print()
        print("every repeat:")
        for line in per_repeat(samples, sizes):
            print(line)
        verdicts += targets(name, samples)
    for name, reason in skipped.items():
        print()
        print(f"{name}: skipped ({reason})")
    print()
    print(
        "autodurable/DBOS: on ms rows below 1.0x, on /s rows above 1.0x favours autodurable. "
        "An idle DBOS worker looks at a queue every second; autodurable's at once on a "
        "PostgreSQL notification, and on SQLite within 5 ms of another process's commit."
    )
    print()
    print("Targets:")
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
