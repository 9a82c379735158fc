"""One measurement of `compare.py` in a process of its own: one library, one task.

Run by ``benchmarks/compare.py``, not by hand:
``python benchmarks/_compare_worker.py TASK LIBRARY SPEC`` where LIBRARY is
``plain``, ``autodurable`` or ``dbos``, SPEC is a JSON object describing the
database (see `Database`) and the sizes, and TASK is one of:

- ``throughput``: workloads (a) to (c) after a warm-up, in this order: one
  workflow of N sequential trivial steps for every N (the clock runs around the
  step loop *inside* the workflow body: the marginal cost of a step); W
  workflows of S steps one after the other (workflows/s, start and finish
  included); C workflows of S' steps at once on C threads, then as C asyncio
  tasks with ``async def`` steps (steps/s);
- ``prepare``: runs a workflow of R trivial steps under a fixed id, then
  ``os._exit`` inside its next, new step: a crash with R steps recorded;
- ``resume``: in a new process on a copy of that state, the library's own
  restart path resumes it (autodurable: ``configure`` + ``recover()``; DBOS:
  ``DBOS()`` + ``DBOS.launch()``, which re-enqueues the pending workflows of
  its executor). Measured from just before that call to the new step's body
  ("resume"), and from the body's re-entry to the new step ("replay"). The
  library and its database driver are imported before the clock starts (DBOS
  imports psycopg with itself, autodurable when it is configured): imports are
  what ``cold`` measures;
- ``cold``: runs one workflow of S steps and says so at once; the caller times
  the whole process from its start to that line.

The workloads are written once, below, as plain Python; each library's adapter
decorates the same functions with its own ``step`` and ``workflow``. A worker
imports only the library it measures (the cold start would count the others
otherwise). The result is one line ``RESULT {json}`` on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

RESULT = "RESULT "
RECOVERY_ID = "compare-recovery"
APP = "autodurable-compare"


# -- the workloads, written once ----------------------------------------------


def trivial(i: int) -> int:
    return i


async def trivial_async(i: int) -> int:
    return i


def next_step(n: int) -> int:
    """The first step a resumed workflow has not run yet (workload d)."""
    MARKS["next_step"] = time.perf_counter()
    ON_NEXT_STEP[0]()
    return n


class Steps:
    """The steps the bodies call: the plain functions, or the library's decorated ones."""

    def __init__(self) -> None:
        self.step: Callable[[int], int] = trivial
        self.step_async: Callable[[int], Awaitable[int]] = trivial_async
        self.next_step: Callable[[int], int] = next_step


STEPS = Steps()
MARKS: dict[str, float] = {}
ON_NEXT_STEP: list[Callable[[], None]] = [lambda: None]


def sequential(n: int) -> int:
    """Workloads (a), (b), (c) on threads and (e): n trivial steps one after the other."""
    step = STEPS.step
    total = 0
    start = time.perf_counter()
    for i in range(n):
        total += step(i)
    MARKS["loop"] = time.perf_counter() - start
    return total


async def sequential_async(n: int) -> int:
    """Workload (c) on asyncio: n trivial ``async def`` steps one after the other."""
    step = STEPS.step_async
    total = 0
    for i in range(n):
        total += await step(i)
    return total


def long_workflow(n: int) -> int:
    """Workload (d): n recorded steps, then a new one."""
    MARKS["body"] = time.perf_counter()
    step = STEPS.step
    total = 0
    for i in range(n):
        total += step(i)
    return total + STEPS.next_step(n)


# -- the libraries -------------------------------------------------------------


class Database:
    """The SPEC's database: an SQLite file, or a PostgreSQL database and schema."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.backend: str = spec["backend"]
        self.path: str = spec.get("path", "")
        self.synchronous: str = spec.get("synchronous", "normal")
        self.url: str = spec.get("url", "")
        self.schema: str = spec.get("schema", "")
        self.pool_size: int = int(spec.get("pool_size", 20))


class Plain:
    """Plain Python: the same bodies and steps, undecorated, nothing recorded."""

    name = "plain"

    def preload(self, db: Database) -> None:
        pass

    def open(self, db: Database) -> None:
        pass

    def sequential(self, n: int) -> int:
        return sequential(n)

    def sequential_async(self, n: int) -> Awaitable[int]:
        return sequential_async(n)

    def settings(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


class Autodurable:
    """autodurable with its defaults; the database from the SPEC."""

    name = "autodurable"

    def __init__(self) -> None:
        import autodurable

        self.lib = autodurable
        STEPS.step = autodurable.step(trivial)
        STEPS.step_async = autodurable.step(trivial_async)
        STEPS.next_step = autodurable.step(next_step)
        self._sequential = autodurable.workflow(name="compare.sequential")(sequential)
        self._sequential_async = autodurable.workflow(name="compare.sequential_async")(
            sequential_async
        )
        self._long = autodurable.workflow(name="compare.long")(long_workflow)
        self._report: Any = None

    def preload(self, db: Database) -> None:
        """Import the database driver, which autodurable imports when it is configured."""
        if db.backend == "sqlite":
            import sqlite3  # noqa: F401
        else:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401

    def open(self, db: Database) -> None:
        if db.backend == "sqlite":
            url = f"sqlite:///{db.path}?synchronous={db.synchronous}"
        else:
            joiner = "&" if "?" in db.url else "?"
            url = f"{db.url}{joiner}schema={db.schema}&pool_size={db.pool_size}"
        self.lib.configure(database_url=url)

    def sequential(self, n: int) -> int:
        return self._sequential(n)

    def sequential_async(self, n: int) -> Awaitable[int]:
        return self._sequential_async(n)

    def run_long(self, n: int) -> int:
        return self.lib.options(self._long, workflow_id=RECOVERY_ID)(n)

    def resume(self, db: Database) -> None:
        """The restart path: configure, then recover() resumes it in the background."""
        self.open(db)
        self._report = self.lib.recover()

    def resumed_result(self, timeout: float) -> int:
        return self.lib.get_workflow(RECOVERY_ID).result(timeout)

    def settings(self) -> dict[str, str]:
        from autodurable._core._runtime import get_runtime  # reads back what the store set

        store: Any = get_runtime().store
        conn = getattr(store, "_conn", None)
        return _sqlite_settings(conn.execute) if conn is not None else {}

    def close(self) -> None:
        self.lib.configure(database_url="sqlite:///:memory:")  # retires the executor


class Dbos:
    """DBOS Transact with its defaults, except the SQLite pragmas and the pool size."""

    name = "dbos"

    def __init__(self) -> None:
        from dbos import DBOS, SetWorkflowID

        self.DBOS = DBOS
        self.SetWorkflowID = SetWorkflowID
        STEPS.step = DBOS.step(name="trivial")(trivial)
        STEPS.step_async = DBOS.step(name="trivial_async")(trivial_async)
        STEPS.next_step = DBOS.step(name="next_step")(next_step)
        self._sequential = DBOS.workflow(name="compare.sequential")(sequential)
        self._sequential_async = DBOS.workflow(name="compare.sequential_async")(sequential_async)
        self._long = DBOS.workflow(name="compare.long")(long_workflow)

    def preload(self, db: Database) -> None:
        pass  # ``import dbos`` imports SQLAlchemy and psycopg

    def open(self, db: Database) -> None:
        config: dict[str, Any] = {
            "name": APP,
            "application_version": APP,  # the same in every process: recovery finds its own
            "log_level": "WARNING",
            "sys_db_pool_size": db.pool_size,
        }
        if db.backend == "sqlite":
            _sqlite_pragmas_for_sqlalchemy(db.synchronous)
            config["system_database_url"] = f"sqlite:///{db.path}"
        else:
            config["system_database_url"] = db.url
            config["dbos_system_schema"] = db.schema
        self.DBOS(config=config)  # type: ignore[arg-type]
        self.DBOS.launch()

    def sequential(self, n: int) -> int:
        return self._sequential(n)

    def sequential_async(self, n: int) -> Awaitable[int]:
        return self._sequential_async(n)

    def run_long(self, n: int) -> int:
        with self.SetWorkflowID(RECOVERY_ID):
            return self._long(n)

    def resume(self, db: Database) -> None:
        """The restart path: launch recovers the pending workflows of this executor."""
        self.open(db)

    def resumed_result(self, timeout: float) -> int:
        return self.DBOS.retrieve_workflow(RECOVERY_ID).get_result(polling_interval_sec=0.05)

    def settings(self) -> dict[str, str]:
        from dbos._dbos import _get_dbos_instance  # reads back what the engine's connections use

        engine = _get_dbos_instance()._sys_db.engine
        if engine.dialect.name != "sqlite":
            return {}
        with engine.connect() as conn:
            return _sqlite_settings(lambda sql: conn.exec_driver_sql(sql))

    def close(self) -> None:
        self.DBOS.destroy()


def _sqlite_pragmas_for_sqlalchemy(synchronous: str) -> None:
    """Give every SQLite connection SQLAlchemy opens the journal and synchronous we measure.

    DBOS opens its SQLite system database with SQLite's defaults (a rollback
    journal, ``synchronous=FULL``) and adds only ``busy_timeout`` and
    ``foreign_keys``; this listener runs besides its own on every new connection.
    """
    import sqlite3

    import sqlalchemy
    from sqlalchemy import event

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous.upper()}")

    event.listen(sqlalchemy.engine.Engine, "connect", on_connect)


def _sqlite_settings(execute: Callable[[str], Any]) -> dict[str, str]:
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    journal = execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": str(journal).upper(), "synchronous": names.get(synchronous, "?")}


LIBRARIES: dict[str, Callable[[], Any]] = {"plain": Plain, "autodurable": Autodurable, "dbos": Dbos}


# -- the tasks -----------------------------------------------------------------


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def on_threads(lib: Any, workflows: int, steps: int) -> float:
    """Seconds for `workflows` workflows of `steps` steps, each on a thread of its own."""
    barrier = threading.Barrier(workflows + 1)
    failures: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            lib.sequential(steps)
        except BaseException as exc:  # reported after the run
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workflows)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return elapsed


async def on_asyncio(lib: Any, workflows: int, steps: int) -> float:
    """Seconds for `workflows` async workflows of `steps` steps gathered on one event loop."""
    import asyncio

    async def one() -> int:
        return await lib.sequential_async(steps)

    await asyncio.gather(*(one() for _ in range(min(workflows, 2))))  # warm up the loop's path
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(workflows)))
    return time.perf_counter() - start


def task_throughput(lib: Any, db: Database, spec: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    lib.open(db)
    for _ in range(3):  # warm up: open the store, register the executor, fill caches
        lib.sequential(5)
    on_threads(lib, 2, 2)
    # Sizes alternate, round after round; each runs at least `inner` workflows and
    # `min_steps` steps in all, so that small N are not a handful of samples.
    sizes = spec["sizes"]
    runs = {n: max(spec["inner"], -(-spec["min_steps"] // n)) for n in sizes}
    loops: dict[int, list[float]] = {n: [] for n in sizes}
    for round_ in range(max(runs.values())):
        for n in sizes:
            if round_ < runs[n]:
                lib.sequential(n)
                loops[n].append(MARKS["loop"] / n)
    per_step = {str(n): median(loops[n]) for n in sizes}
    workflows, steps = spec["workflows"], spec["workflow_steps"]
    start = time.perf_counter()
    for _ in range(workflows):
        lib.sequential(steps)
    sequential_rate = workflows / (time.perf_counter() - start)
    concurrency, concurrent_steps = spec["concurrency"], spec["concurrent_steps"]
    total = concurrency * concurrent_steps
    threads_rate = total / on_threads(lib, concurrency, concurrent_steps)
    asyncio_rate = total / asyncio.run(on_asyncio(lib, concurrency, concurrent_steps))
    result = {
        "per_step": per_step,
        "workflows_per_s": sequential_rate,
        "threads_steps_per_s": threads_rate,
        "asyncio_steps_per_s": asyncio_rate,
        "settings": lib.settings(),
    }
    lib.close()
    return result


def task_prepare(lib: Any, db: Database, spec: dict[str, Any]) -> None:
    def crash() -> None:
        report({"recorded_steps": spec["recovery_steps"]})
        os._exit(0)  # a crash: nothing is flushed, closed or released

    ON_NEXT_STEP[0] = crash
    lib.open(db)
    lib.run_long(spec["recovery_steps"])
    raise RuntimeError("the workflow finished instead of crashing in its new step")


def task_resume(lib: Any, db: Database, spec: dict[str, Any]) -> dict[str, Any]:
    n = spec["recovery_steps"]
    reached = threading.Event()
    ON_NEXT_STEP[0] = reached.set
    lib.preload(db)  # imports are (e)'s business: the clock starts after them
    start = time.perf_counter()
    lib.resume(db)
    if not reached.wait(spec.get("timeout", 600)):
        raise RuntimeError(f"{lib.name} did not resume the workflow within the timeout")
    result = lib.resumed_result(spec.get("timeout", 600))
    if result != n * (n - 1) // 2 + n:
        raise RuntimeError(f"{lib.name} resumed the workflow with a wrong result: {result}")
    outcome = {
        "resume_s": MARKS["next_step"] - start,
        "replay_s": MARKS["next_step"] - MARKS["body"],
    }
    lib.close()
    return outcome


def task_cold(lib: Any, db: Database, spec: dict[str, Any]) -> None:
    lib.open(db)
    steps = spec["workflow_steps"]
    if lib.sequential(steps) != steps * (steps - 1) // 2:
        raise RuntimeError("wrong result")
    report({"finished": True})  # the caller's clock stops at this line
    lib.close()


TASKS: dict[str, Callable[[Any, Database, dict[str, Any]], dict[str, Any] | None]] = {
    "throughput": task_throughput,
    "prepare": task_prepare,
    "resume": task_resume,
    "cold": task_cold,
}


def report(values: dict[str, Any]) -> None:
    sys.stdout.write(RESULT + json.dumps(values) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    task, library, raw_spec = argv
    spec = json.loads(raw_spec)
    lib = LIBRARIES[library]()
    result = TASKS[task](lib, Database(spec), spec)
    if result is not None:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
