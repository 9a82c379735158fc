"""autodurable side by side with DBOS Transact and plain Python, on SQLite and PostgreSQL.

Run ``python benchmarks/compare.py [--backend sqlite|postgres|both] [--repeats 5]
[--sizes 10,100,1000] [--workflows 200] [--workflow-steps 10] [--concurrency 16]
[--concurrent-steps 50] [--recovery-steps 10000] [--synchronous normal|full]
[--markdown]`` (``--quick``: tiny sizes and one repeat, for the smoke test).
Needs the ``bench`` extra (``pip install -e '.[bench]'``: DBOS Transact) and, for
PostgreSQL, the ``postgres`` extra and the server binaries: a throwaway server
is started from them (as the tests do, with ``fsync=on``) and removed at the end.

The workloads are written once, as plain Python functions, in
``_compare_worker.py``; each library decorates the same functions with its own
``step`` and ``workflow``, and "plain" calls them undecorated:

- (a) one workflow of N sequential trivial steps (``trivial(i) -> i``), for each
  N: the clock runs around the step loop inside the workflow body, so this is
  the marginal cost of a step; µs per step;
- (b) W workflows of S steps, one after the other: workflows/s (the start and
  finish of each workflow included);
- (c) C workflows of S' steps at once, on C threads, then as C asyncio tasks
  with ``async def`` steps: steps/s;
- (d) recovery: a process runs a workflow of R steps and dies (``os._exit``) in
  its next, new step; a new process then resumes it through the library's own
  restart path (autodurable: ``configure()`` + ``recover()``; DBOS:
  ``DBOS()`` + ``DBOS.launch()``). "resume" is the time from just before that
  call to the new step's body; "replay" the part from the workflow body's
  re-entry to the new step. Imports (the library and its database driver)
  happen before the clock starts: they belong to (e). The crashed state is
  recorded once, untimed, and every repeat resumes a fresh copy of it (a file
  copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL);
- (e) cold start: the wall time from starting ``python`` to the end of the first
  workflow (S steps) in that process, imports, configuration and schema set-up
  included; against a new database and against one an earlier process created.

Every measurement runs in a process of its own (DBOS is a process-wide
singleton, and cold starts need fresh processes), with a new database for (a)
to (c); the libraries alternate, in a rotating order, within every repeat, so
that the machine's noise is spread over all of them. Every number is the
median over the repeats; in (a) each process runs the sizes in alternation,
each at least three times and 1,000 steps in all, and reports their medians.
Databases are dropped at the end, not between measurements, and on PostgreSQL
a ``CHECKPOINT`` precedes every timed process, so that none starts while the
server still flushes the previous one's writes.

Settings, the same for both libraries: SQLite in WAL mode with the chosen
``synchronous`` (default NORMAL, autodurable's default). DBOS opens its SQLite
system database with SQLite's defaults (a rollback journal, FULL), so the
benchmark adds a SQLAlchemy ``connect`` listener that sets the two pragmas on
every connection; both libraries' values are read back from their own
connections and printed. Otherwise both libraries run with their defaults,
except the connection pool size, the same for both (at least 20, DBOS's
default). PostgreSQL: one server, a schema per measurement (a database per
recovery state, so that it can be copied).

How to read it: "autodurable/DBOS" and "autodurable/plain" divide
autodurable's median by the other's. On time rows (µs, ms) below 1.0x means
autodurable is faster; on rate rows (/s) above 1.0x does. For (a) the
autodurable/DBOS ratio divides the overheads (per-step time minus plain's), the
quantity of the target: at most 0.10x. The recovery target is "resume" below
0.10x. Absolute times on a shared machine vary by tens of percent between
runs; ratios measured in the same run are steadier.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_compare_worker.py"
RESULT = "RESULT "
LIBRARIES = ("plain", "autodurable", "dbos")
DURABLE = ("autodurable", "dbos")
TITLES = {"plain": "plain", "autodurable": "autodurable", "dbos": "DBOS"}
STEP_TARGET = 0.10  # autodurable's per-step overhead / DBOS's, at most
RECOVERY_TARGET = 0.10  # autodurable's resume time / DBOS's, below
Samples = dict[str, dict[str, list[float]]]  # library -> metric -> samples


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- backends --------------------------------------------------------------------


class Backend(Protocol):
    name: str

    def fresh(self, label: str) -> dict[str, Any]:
        """A new, empty database (or schema) for one measurement."""

    def fresh_database(self, label: str) -> dict[str, Any]:
        """A new database that `clone` can copy."""

    def seal(self, spec: dict[str, Any]) -> None:
        """Make a database written by a crashed process ready to be copied."""

    def clone(self, spec: dict[str, Any], label: str) -> dict[str, Any]:
        """A copy of a sealed database."""

    def drop(self, spec: dict[str, Any]) -> None:
        """Delete a database made by `fresh`, `fresh_database` or `clone`."""

    def settle(self) -> None:
        """Before a timed process: leave no work of earlier ones pending."""

    def describe(self) -> str:
        """Versions and settings, one line."""


class SQLiteBackend:
    """SQLite files in a temporary folder."""

    name = "sqlite"

    def __init__(self, folder: Path, synchronous: str) -> None:
        self.folder = folder
        self.synchronous = synchronous

    def fresh(self, label: str) -> dict[str, Any]:
        spec = {"backend": "sqlite", "path": str(self.folder / f"{label}.db")}
        self.drop(spec)
        return {**spec, "synchronous": self.synchronous}

    fresh_database = fresh

    def seal(self, spec: dict[str, Any]) -> None:
        conn = sqlite3.connect(spec["path"])  # moves the WAL's pages into the file
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def clone(self, spec: dict[str, Any], label: str) -> dict[str, Any]:
        copy = self.fresh(label)
        shutil.copyfile(spec["path"], copy["path"])
        return copy

    def drop(self, spec: dict[str, Any]) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(spec["path"] + suffix).unlink(missing_ok=True)

    def settle(self) -> None:
        pass  # every measurement has a file of its own

    def describe(self) -> str:
        return (
            f"SQLite {sqlite3.sqlite_version}, journal_mode=WAL, "
            f"synchronous={self.synchronous.upper()} for both libraries"
        )


class PostgresBackend:
    """One throwaway server: a schema per measurement, a database per recovery state."""

    name = "postgres"

    def __init__(self, url: str, pool_size: int) -> None:
        import psycopg

        self.psycopg = psycopg
        self.base = url
        self.pool_size = pool_size
        self.admin = psycopg.connect(url, autocommit=True)

    def _database_url(self, name: str) -> str:
        parts = urlsplit(self.base)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def _spec(self, url: str, schema: str, **extra: Any) -> dict[str, Any]:
        return {
            "backend": "postgres",
            "url": url,
            "schema": schema,
            "pool_size": self.pool_size,
            **extra,
        }

    def fresh(self, label: str) -> dict[str, Any]:
        schema = f"cmp_{label}"
        self.admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        return self._spec(self.base, schema)

    def fresh_database(self, label: str) -> dict[str, Any]:
        name = f"cmp_{label}"
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.execute(f"CREATE DATABASE {name}")
        return self._spec(self._database_url(name), "cmp", database=name)

    def seal(self, spec: dict[str, Any]) -> None:
        pass  # the crashed process's sessions end with it; `clone` waits for them

    def clone(self, spec: dict[str, Any], label: str) -> dict[str, Any]:
        name = f"cmp_{label}"
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        deadline = time.monotonic() + 30
        while True:
            try:
                self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {spec['database']}")
                break
            except self.psycopg.errors.ObjectInUse:  # a session of the dead process lingers
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return self._spec(self._database_url(name), spec["schema"], database=name)

    def drop(self, spec: dict[str, Any]) -> None:
        if "database" in spec:
            self.admin.execute(f"DROP DATABASE IF EXISTS {spec['database']} WITH (FORCE)")
        else:
            self.admin.execute(f"DROP SCHEMA IF EXISTS {spec['schema']} CASCADE")

    def settle(self) -> None:
        self.admin.execute("CHECKPOINT")  # the previous process's writes are flushed

    def describe(self) -> str:
        def show(name: str) -> str:
            row = self.admin.execute(f"SHOW {name}").fetchone()
            return str(row[0]) if row else "?"

        settings = " ".join(
            f"{name}={show(name)}" for name in ("fsync", "synchronous_commit", "wal_sync_method")
        )
        return (
            f"PostgreSQL {show('server_version')} (throwaway server, local TCP), {settings}; "
            f"psycopg {self.psycopg.__version__}; pool of {self.pool_size} connections each"
        )

    def close(self) -> None:
        self.admin.close()


def postgres_unavailable() -> str | None:
    """Why no throwaway PostgreSQL server can be started here, or None."""
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    sys.path.insert(0, str(ROOT))
    try:
        from tests._postgres import find_bindir
    except ImportError as exc:
        return f"the tests' server helper cannot be imported: {exc}"
    if find_bindir() is None:
        return "no PostgreSQL server binaries (apt-get install postgresql)"
    return None


@contextlib.contextmanager
def postgres_backend(pool_size: int) -> Iterator[PostgresBackend]:
    """A throwaway server (the tests' helper) and a backend on it."""
    sys.path.insert(0, str(ROOT))
    from tests._postgres import temporary_server

    with temporary_server(fsync=True) as server:
        backend = PostgresBackend(server.url(), pool_size)
        try:
            yield backend
        finally:
            backend.close()


# -- workers ---------------------------------------------------------------------


class Runner:
    """Starts worker processes and reads their results."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.env = dict(os.environ)
        self.env.pop("AUTODURABLE_DATABASE_URL", None)
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), self.env.get("PYTHONPATH", "")])
        )

    def command(self, task: str, library: str, spec: dict[str, Any]) -> list[str]:
        return [sys.executable, str(WORKER), task, library, json.dumps(spec)]

    def run(self, task: str, library: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Run a worker to its end; its last result."""
        done = subprocess.run(
            self.command(task, library, spec),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        results = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        if done.returncode != 0 or not results:
            raise RuntimeError(
                f"{task} worker for {library} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
            )
        return dict(json.loads(results[-1][len(RESULT) :]))

    def cold(self, library: str, spec: dict[str, Any]) -> float:
        """Seconds from starting a worker process to its first finished workflow."""
        with tempfile.TemporaryFile("w+") as errors:
            command = self.command("cold", library, spec)
            start = time.perf_counter()
            process = subprocess.Popen(
                command, env=self.env, stdout=subprocess.PIPE, stderr=errors, text=True
            )
            assert process.stdout is not None
            elapsed = None
            for line in process.stdout:
                if line.startswith(RESULT):
                    elapsed = time.perf_counter() - start
                    break
            process.stdout.read()
            code = process.wait(self.timeout)
            if code != 0 or elapsed is None:
                errors.seek(0)
                raise RuntimeError(f"cold start of {library} failed ({code}):\n{errors.read()}")
            return elapsed


# -- measuring -------------------------------------------------------------------


def measure(
    backend: Backend, runner: Runner, sizes: dict[str, Any], repeats: int
) -> tuple[Samples, dict[str, dict[str, str]]]:
    """Samples by library and metric, and the SQLite settings each library reported."""
    samples: Samples = {library: defaultdict(list) for library in LIBRARIES}
    settings: dict[str, dict[str, str]] = {}
    name = backend.name
    progress(f"{name}: recording {sizes['recovery_steps']} steps and a crash for (d), untimed")
    states = {}
    for library in DURABLE:
        spec = backend.fresh_database(f"rec_{library}")
        runner.run("prepare", library, {**spec, **sizes})
        backend.seal(spec)
        states[library] = spec
    existing = {}
    for library in LIBRARIES:  # untimed: creates the databases, warms the file caches
        spec = backend.fresh(f"cold_{library}")
        runner.cold(library, {**spec, **sizes})
        existing[library] = spec
    used = [*states.values(), *existing.values()]  # dropped at the end, not between runs
    for r in range(repeats):
        order = LIBRARIES[r % 3 :] + LIBRARIES[: r % 3]
        progress(f"{name}: repeat {r + 1}/{repeats} ({', '.join(order)})")
        for library in order:
            spec = backend.fresh(f"run_{library}_{r}")
            used.append(spec)
            backend.settle()
            got = runner.run("throughput", library, {**spec, **sizes})
            for n, seconds in got["per_step"].items():
                samples[library][f"a{n}"].append(seconds)
            samples[library]["b"].append(got["workflows_per_s"])
            samples[library]["c_threads"].append(got["threads_steps_per_s"])
            samples[library]["c_asyncio"].append(got["asyncio_steps_per_s"])
            settings[library] = got["settings"]
        for library in order:
            if library not in DURABLE:
                continue
            spec = backend.clone(states[library], f"rec_{library}_{r}")
            used.append(spec)
            backend.settle()
            got = runner.run("resume", library, {**spec, **sizes})
            samples[library]["d_resume"].append(got["resume_s"])
            samples[library]["d_replay"].append(got["replay_s"])
        for library in order:
            spec = backend.fresh(f"new_{library}_{r}")
            used.append(spec)
            backend.settle()
            samples[library]["e_new"].append(runner.cold(library, {**spec, **sizes}))
        for library in order:
            backend.settle()
            samples[library]["e_existing"].append(
                runner.cold(library, {**existing[library], **sizes})
            )
    for spec in used:
        backend.drop(spec)
    return samples, settings


# -- reporting -------------------------------------------------------------------


def rows(sizes: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    """(metric, workload, unit, scale from the samples' unit) of every row."""
    c, s2 = sizes["concurrency"], sizes["concurrent_steps"]
    w, s = sizes["workflows"], sizes["workflow_steps"]
    table = [(f"a{n}", f"(a) 1 workflow of {n:,} steps", "µs/step", 1e6) for n in sizes["sizes"]]
    return [
        *table,
        ("b", f"(b) {w:,} workflows of {s} steps, one at a time", "workflows/s", 1.0),
        ("c_threads", f"(c) {c} workflows of {s2} steps at once, threads", "steps/s", 1.0),
        ("c_asyncio", f"(c) {c} workflows of {s2} steps at once, asyncio", "steps/s", 1.0),
        (
            "d_resume",
            f"(d) resume after a crash, {sizes['recovery_steps']:,} steps recorded",
            "ms to new step",
            1e3,
        ),
        ("d_replay", "(d) of which replay (body re-entry to new step)", "ms", 1e3),
        ("e_new", "(e) cold start, new database", "ms to 1st workflow", 1e3),
        ("e_existing", "(e) cold start, existing database", "ms to 1st workflow", 1e3),
    ]


def med(samples: Samples, library: str, metric: str) -> float | None:
    values = samples[library].get(metric)
    return statistics.median(values) if values else None


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"{value:.3f}x"


def divide(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom <= 0:
        return None
    return top / bottom


def overhead_ratio(samples: Samples, metric: str) -> float | None:
    """autodurable's per-step overhead over DBOS's: (time - plain) / (time - plain)."""
    plain = med(samples, "plain", metric)
    ours, theirs = med(samples, "autodurable", metric), med(samples, "dbos", metric)
    if plain is None or ours is None or theirs is None:
        return None
    return divide(ours - plain, theirs - plain)


def table(samples: Samples, sizes: dict[str, Any], markdown: bool) -> list[str]:
    header = ["workload", "unit", *(TITLES[lib] for lib in LIBRARIES)]
    header += ["autodurable/DBOS", "autodurable/plain"]
    body = []
    for metric, workload, unit, scale in rows(sizes):
        values = [med(samples, library, metric) for library in LIBRARIES]
        scaled = [None if v is None else v * scale for v in values]
        versus_dbos = (
            overhead_ratio(samples, metric)
            if metric.startswith("a")
            else divide(values[1], values[2])
        )
        body.append(
            [
                workload,
                unit,
                *(number(v) for v in scaled),
                ratio(versus_dbos),
                ratio(divide(values[1], values[0])),
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return lines
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in body)]


def targets(name: str, samples: Samples, sizes: dict[str, Any]) -> list[str]:
    lines = []
    for n in sizes["sizes"]:
        value = overhead_ratio(samples, f"a{n}")
        verdict = "met" if value is not None and value <= STEP_TARGET else "MISSED"
        lines.append(
            f"  {name}: per-step overhead at N={n:,}, autodurable/DBOS {ratio(value)} "
            f"(target <= {STEP_TARGET:.2f}x): {verdict}"
        )
    resume = divide(med(samples, "autodurable", "d_resume"), med(samples, "dbos", "d_resume"))
    replay = divide(med(samples, "autodurable", "d_replay"), med(samples, "dbos", "d_replay"))
    verdict = "met" if resume is not None and resume < RECOVERY_TARGET else "MISSED"
    lines.append(
        f"  {name}: recovery of {sizes['recovery_steps']:,} steps, autodurable/DBOS "
        f"{ratio(resume)} (target < {RECOVERY_TARGET:.2f}x): {verdict}; "
        f"replay alone {ratio(replay)}"
    )
    return lines


def versions() -> str:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    sys.path.insert(0, str(ROOT))
    import autodurable

    return (
        f"autodurable {autodurable.__version__}, DBOS Transact {version('dbos')} "
        f"(SQLAlchemy {version('sqlalchemy')}), Python {platform.python_version()} "
        f"({platform.python_implementation()}) on {platform.platform()}, "
        f"{os.cpu_count()} CPUs"
    )


# -- command line ------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be integers >= 1: {text!r}")
    return values


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeats", type=positive, default=5, help="repeats (default 5)")
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[10, 100, 1000], help="(a): N (10,100,1000)"
    )
    parser.add_argument("--workflows", type=positive, default=200, help="(b): W (200)")
    parser.add_argument("--workflow-steps", type=positive, default=10, help="(b), (e): S (10)")
    parser.add_argument("--concurrency", type=positive, default=16, help="(c): C (16)")
    parser.add_argument("--concurrent-steps", type=positive, default=50, help="(c): S' (50)")
    parser.add_argument("--recovery-steps", type=positive, default=10_000, help="(d): R (10000)")
    parser.add_argument(
        "--synchronous",
        choices=["normal", "full"],
        default="normal",
        help="SQLite synchronous setting for both libraries (default normal)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--timeout", type=float, default=1800, help="per worker process, s")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.sizes, args.workflows, args.workflow_steps = 1, [5], 3, 2
        args.concurrency, args.concurrent_steps, args.recovery_steps = 2, 2, 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = {
        "sizes": args.sizes,
        "inner": 3,
        "min_steps": 30 if args.quick else 1000,
        "workflows": args.workflows,
        "workflow_steps": args.workflow_steps,
        "concurrency": args.concurrency,
        "concurrent_steps": args.concurrent_steps,
        "recovery_steps": args.recovery_steps,
        "timeout": args.timeout,
    }
    runner = Runner(args.timeout)
    wanted = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: dict[str, tuple[str, Samples, dict[str, dict[str, str]]]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="autodurable-compare-") as folder:
        if "sqlite" in wanted:
            sqlite_backend = SQLiteBackend(Path(folder), args.synchronous)
            samples, settings = measure(sqlite_backend, runner, sizes, args.repeats)
            results["sqlite"] = (sqlite_backend.describe(), samples, settings)
        reason = postgres_unavailable() if "postgres" in wanted else None
        if reason is not None:
            if args.backend == "postgres":
                print(f"cannot measure on PostgreSQL: {reason}", file=sys.stderr)
                return 2
            skipped["postgres"] = reason
        elif "postgres" in wanted:
            with postgres_backend(max(20, args.concurrency + 4)) as pg:
                description = pg.describe()
                samples, settings = measure(pg, runner, sizes, args.repeats)
                results["postgres"] = (description, samples, settings)

    print("autodurable compared with DBOS Transact and plain Python")
    print(versions())
    print(
        f"settings: repeats={args.repeats} sizes={','.join(map(str, args.sizes))} "
        f"workflows={args.workflows} workflow_steps={args.workflow_steps} "
        f"concurrency={args.concurrency} concurrent_steps={args.concurrent_steps} "
        f"recovery_steps={args.recovery_steps}"
    )
    verdicts: list[str] = []
    for name, (description, samples, settings) in results.items():
        print()
        print(f"{'SQLite' if name == 'sqlite' else 'PostgreSQL'}: {description}")
        read_back = "; ".join(
            f"{TITLES[lib]} " + " ".join(f"{k}={v}" for k, v in values.items())
            for lib, values in settings.items()
            if values
        )
        if read_back:
            print(f"read back from each library's connection: {read_back}")
        print(f"medians over {args.repeats} repeat(s):")
        print()
        for line in table(samples, sizes, args.markdown):
            print(line)
        verdicts += targets(name, samples, sizes)
    for name, reason in skipped.items():
        print()
        print(f"{name}: skipped ({reason})")
    print()
    print(
        "(a) autodurable/DBOS divides the overheads (per-step time minus plain's); "
        "on µs and ms rows below 1.0x, on /s rows above 1.0x favours autodurable."
    )
    print(
        "(d) DBOS resumes through its internal queue, polled every second: 'resume' "
        "includes that wait, 'replay' does not."
    )
    print()
    print("Targets:")
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
