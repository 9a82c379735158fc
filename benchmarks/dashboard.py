"""The dashboard (``autodurable ui``) on a big store: page times and query plans.

Run ``python benchmarks/dashboard.py [--backend sqlite|postgresql|both]
[--database-url postgresql://...] [--workflows 100000] [--steps 10000]
[--repeats 7]`` (``--quick``: small sizes, one repeat, for a smoke run).

It fills a fresh store (a temporary SQLite file; on PostgreSQL a schema of its
own, ``dashboard_bench``, dropped at the end, on the given server or on a
throwaway one started as the tests do) with W workflows created over 30 days
(statuses, names, versions and queues mixed) and one workflow of S steps (some
retried, some sleeping), inserted in bulk with plain SQL, then analysed.

Then it times, through the real application (Starlette's TestClient: routing,
the queries, the HTML), the median of the repeats, in milliseconds:

- the workflows page: the first page, a filtered page (status and name), a
  deep page (the keyset page after the 90 % mark) and, for comparison, the
  store's OFFSET read of that deep page (what a page number would cost);
- the page of the S-step workflow (its first page of steps, with the
  timeline and the overview of all steps) and a page in its middle;
- the counts query of the chart (30 days in 48 slices), alone.

Last it prints the database's query plan of each of the dashboard's reads, to
show that an index serves them (``USING INDEX`` / ``Index Scan``). No timing
is asserted anywhere: the numbers are for people.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autodurable import configure  # noqa: E402
from autodurable._core._runtime import _reset_overrides_for_tests, get_runtime  # noqa: E402
from autodurable._store import WorkflowFilter, open_store  # noqa: E402
from autodurable._store._dashboard import DashboardReads  # noqa: E402
from autodurable._ui._app import create_app  # noqa: E402
from autodurable._ui._options import UiOptions  # noqa: E402

STATUSES = ["succeeded"] * 14 + ["failed"] * 2 + ["cancelled", "pending", "pending", "enqueued"]
DAY = 86400.0
BIG = "big-workflow"
COLUMNS = (
    "workflow_id, name, status, inputs, output, error, executor_id, created_at, updated_at, "
    "app_version, queue_name"
)


def workflow_rows(count: int, now: float) -> Iterator[tuple[Any, ...]]:
    """`count` workflow rows created over the 30 days before `now`, oldest first."""
    rng = random.Random(7)
    for i in range(count):
        created = now - 30 * DAY + 30 * DAY * i / max(count, 1)
        status = rng.choice(STATUSES)
        error = None
        if status == "failed":
            error = '{"c":"builtins:ValueError","m":"boom","tb":"Traceback ..."}'
        yield (
            f"wf-{i:07d}", f"app.jobs:job{i % 20}", status,
            f'{{"args":[{i}, "customer-{i % 977}"],"kwargs":{{"password":"x"}}}}',
            '{"ok":true}' if status == "succeeded" else None, error, None,
            created, created + rng.random() * 60, f"v{i % 5}",
            f"q{i % 3}" if status == "enqueued" else None,
        )  # fmt: skip


def step_rows(steps: int, start: float) -> Iterator[tuple[Any, ...]]:
    """The steps of the big workflow: one every 0.1 s, some retried, some sleeping."""
    for position in range(1, steps + 1):
        begun = start + position * 0.1
        name = "autodurable.sleep" if position % 500 == 0 else f"app.jobs:fetch{position % 7}"
        attempts = 3 if position % 97 == 0 else 1
        yield (BIG, position, name, "succeeded", f'{{"row":{position},"token":"t"}}', None,
               attempts, begun, begun + 0.05, None, "")  # fmt: skip


def fill_sqlite(path: Path, workflows: int, steps: int, now: float) -> None:
    with sqlite3.connect(path) as conn:
        marks = ", ".join("?" * 11)
        conn.executemany(
            f"INSERT INTO workflows ({COLUMNS}) VALUES ({marks})", workflow_rows(workflows, now)
        )
        conn.execute(
            f"INSERT INTO workflows ({COLUMNS}) VALUES ({marks})",
            (BIG, "app.jobs:big", "pending", '{"args":[],"kwargs":{}}', None, None, None,
             now - 3600, now, "v1", None),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO steps (workflow_id, position, name, status, output, error, attempts, "
            f"started_at, finished_at, executor_id, branch) VALUES ({marks})",
            step_rows(steps, now - 3600),
        )
        conn.execute("ANALYZE")


def fill_postgres(url: str, workflows: int, steps: int, now: float) -> None:
    import psycopg

    from autodurable._store._postgres_url import parse_postgres_url

    parsed = parse_postgres_url(url)
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{parsed.schema}"')
        with conn.cursor().copy(f"COPY workflows ({COLUMNS}) FROM STDIN") as copy:
            for row in workflow_rows(workflows, now):
                copy.write_row(row)
            copy.write_row((BIG, "app.jobs:big", "pending", '{"args":[],"kwargs":{}}', None,
                            None, None, now - 3600, now, "v1", None))  # fmt: skip
        columns = (
            "workflow_id, position, name, status, output, error, attempts, started_at, "
            "finished_at, executor_id, branch"
        )
        with conn.cursor().copy(f"COPY steps ({columns}) FROM STDIN") as copy:
            for row in step_rows(steps, now - 3600):
                copy.write_row(row)
        conn.execute("VACUUM ANALYZE workflows")
        conn.execute("VACUUM ANALYZE steps")


def median_ms(action: Callable[[], Any], repeats: int) -> float:
    action()  # warm the caches and the connection once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(url: str, label: str, workflows: int, steps: int, repeats: int) -> None:
    now = time.time()
    store = open_store(url)  # creates the schema (every migration)
    started = time.perf_counter()
    if url.startswith("sqlite"):
        fill_sqlite(Path(url.removeprefix("sqlite:///")), workflows, steps, now)
    else:
        fill_postgres(url, workflows, steps, now)
    print(f"\n{label}: {workflows:,} workflows and one of {steps:,} steps inserted in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    store.close()
    _reset_overrides_for_tests()
    configure(database_url=url)
    from starlette.testclient import TestClient

    client = TestClient(create_app(UiOptions()), base_url="http://127.0.0.1:8080")
    reads = DashboardReads(get_runtime().store)
    deep_offset = int(workflows * 0.9)
    deep = get_runtime().store.find_workflows(WorkflowFilter(), 1, deep_offset)[0]
    cursor = f"{deep.created_at!r}~{deep.workflow_id}"

    def page(path: str, **params: str) -> Callable[[], None]:
        def get() -> None:
            response = client.get(path, params=params)
            assert response.status_code == 200, response.text[:500]

        return get

    everything = WorkflowFilter()
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("list: first page", page("/")),
        ("list: status=failed, name=app.jobs:job3",
         page("/", status="failed", name="app.jobs:job3")),
        ("list: version=v3, last 7 days", page("/", version="v3", range="7d")),
        (f"list: deep keyset page (after row {deep_offset:,})", page("/", after=cursor)),
        (f"  (store OFFSET {deep_offset:,}, for comparison)",
         lambda: get_runtime().store.find_workflows(everything, 50, deep_offset)),
        (f"workflow page, {steps:,} steps: first page", page("/workflow", id=BIG)),
        (f"workflow page, {steps:,} steps: middle page",
         page("/workflow", id=BIG, page=str(max(1, steps // 200)))),
        ("counts chart query (30 days, 48 slices)",
         lambda: reads.counts_over_time(everything, now - 30 * DAY, 30 * DAY / 48, 48)),
    ]  # fmt: skip
    print(f"{'median of ' + str(repeats) + ' runs':<52} {'ms':>9}")
    for name, action in cases:
        print(f"{name:<52} {median_ms(action, repeats):>9.1f}")
    print("\nquery plans:")
    plans = {
        "first page": reads.workflows_statement(everything, 51),
        "status=failed": reads.workflows_statement(WorkflowFilter(statuses=("failed",)), 51),
        "name=app.jobs:job3": reads.workflows_statement(WorkflowFilter(name="app.jobs:job3"), 51),
        "version=v3": reads.workflows_statement(WorkflowFilter(app_version="v3"), 51),
        "queue=q1": reads.workflows_statement(WorkflowFilter(queue_name="q1"), 51),
        "id starts with wf-00012": reads.workflows_statement(everything, 51, id_prefix="wf-00012"),
        "deep keyset page": reads.workflows_statement(
            everything, 51, (deep.created_at, deep.workflow_id)
        ),
        "counts over time": reads.counts_statement(everything, now - 30 * DAY, 54000.0, 48),
        "steps page": reads.steps_statement(BIG, 100, 5000),
    }
    for name, (text, params) in plans.items():
        print(f"  {name}:")
        for line in reads.plan(text, params)[:6]:
            print(f"    {line}")
    client.close()
    _reset_overrides_for_tests()


@contextlib.contextmanager
def postgres_url(given: str | None) -> Iterator[str]:
    """A URL with the benchmark's own schema: on `given`'s server, or a throwaway one."""
    server: contextlib.AbstractContextManager[Any] = contextlib.nullcontext(None)
    if given is None:
        from tests._postgres import temporary_server

        server = temporary_server()
    with server as started:
        base = given or started.url()
        joiner = "&" if "?" in base else "?"
        url = f"{base}{joiner}schema=dashboard_bench"
        try:
            yield url
        finally:
            _drop_schema(url)


def _drop_schema(url: str) -> None:
    import psycopg

    from autodurable._store._postgres_url import parse_postgres_url

    parsed = parse_postgres_url(url)
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(parsed.conninfo, autocommit=True) as conn,
    ):
        conn.execute(f'DROP SCHEMA IF EXISTS "{parsed.schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: a throwaway one)")
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke)")
    args = parser.parse_args(argv)
    if args.quick:
        args.workflows, args.steps, args.repeats = 2_000, 500, 1
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'state.db'}"
                measure(url, "SQLite", args.workflows, args.steps, args.repeats)
        else:
            with postgres_url(args.database_url) as url:
                measure(url, "PostgreSQL", args.workflows, args.steps, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
