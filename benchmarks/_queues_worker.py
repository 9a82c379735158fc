"""One process of `queues.py`: a queue worker or the enqueuing client, for one library.

Run by ``benchmarks/queues.py``, not by hand:
``python benchmarks/_queues_worker.py ROLE LIBRARY SPEC`` where LIBRARY is
``autodurable`` or ``dbos``, SPEC a JSON object (the database, as in
``_compare_worker.Database``, plus the sizes) and ROLE one of:

- ``worker``: serves the queues named in ``SPEC["serve"]`` (autodurable:
  ``recover(watch=True, queues=...)``, what ``autodurable worker --queue``
  does; DBOS: ``DBOS.listen_queues(...)`` + ``DBOS.launch()``), after running
  one workflow in-process to warm up; prints ``READY`` once it is serving and
  exits when its standard input closes;
- ``client``: declares the queues, serves none, and runs ``SPEC["task"]``:
  ``latency`` (one enqueue at a time onto an idle queue, a pause between them;
  the seconds from just before each enqueue to the first line of the workflow
  body, both read with ``time.time()`` on the same host), ``burst`` (W
  workflows of one trivial step enqueued at once onto the queue that
  ``SPEC["queue"]`` workers serve; from the first enqueue to the end of the
  last body; with ``SPEC["batch"]``, autodurable enqueues them with one
  ``Queue.enqueue_many`` call, which DBOS has no equivalent of) or ``rate``
  (N workflows onto the rate-limited queue; the start time of each). Its
  result is one line ``RESULT {json}`` on stdout.

The workflows are written once, as plain functions; each library decorates
them with its own ``workflow`` and ``step``. The queues, the same for both
libraries: ``latency``, ``burst1``, ``burst2``, ``burst4`` (no limits; served
by 1, 2 and 4 workers) and ``rated`` (``SPEC["rate_limit"]`` per
``SPEC["rate_period"]`` seconds, nothing else). Everything else is each
library's default: autodurable takes at most as many workflows at a time as it
has worker threads (32), DBOS as many as are waiting (its thread pool is
unbounded) and looks at each queue every second (its default
``polling_interval_sec``).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _compare_worker import (  # the database settings, shared with compare.py
    APP,
    Database,
    _sqlite_pragmas_for_sqlalchemy,
    _sqlite_settings,
)

RESULT = "RESULT "
READY = "READY"
QUEUES = ("latency", "burst1", "burst2", "burst4", "rated")


# -- the workflows, written once ------------------------------------------------


def trivial(i: int) -> int:
    return i


class Steps:
    step: Callable[[int], int] = trivial


STEPS = Steps()


def probe(sent: float) -> float:
    """Latency: when the body started (``sent`` is when the client was about to enqueue)."""
    return time.time()


def job(i: int) -> list[float]:
    """Throughput: one trivial step; when the body started and ended, and where it ran."""
    start = time.time()
    STEPS.step(i)
    return [start, time.time(), float(os.getpid())]


def rated(i: int) -> float:
    """Rate limit: when the body started."""
    return time.time()


# -- the libraries --------------------------------------------------------------


class Autodurable:
    name = "autodurable"

    def __init__(self, spec: dict[str, Any]) -> None:
        import autodurable

        self.lib = autodurable
        STEPS.step = autodurable.step(name="queues.trivial")(trivial)
        self.fns = {
            "probe": autodurable.workflow(name="queues.probe")(probe),
            "job": autodurable.workflow(name="queues.job")(job),
            "rated": autodurable.workflow(name="queues.rated")(rated),
        }
        rate = f"{spec['rate_limit']}/{spec['rate_period']:g}s"
        self.queues = {
            name: autodurable.Queue(name, rate=rate if name == "rated" else None) for name in QUEUES
        }

    def open(self, db: Database, serve: list[str] | None, label: str) -> None:
        if db.backend == "sqlite":
            url = f"sqlite:///{db.path}?synchronous={db.synchronous}"
        else:
            joiner = "&" if "?" in db.url else "?"
            url = f"{db.url}{joiner}schema={db.schema}&pool_size={db.pool_size}"
        self.lib.configure(database_url=url)
        self.fns["job"](0)  # warm up: the store, the executor, the runtime's imports
        for queue in self.queues.values():
            queue.declare()
        if serve is not None:
            self.lib.recover(watch=True, queues=serve)

    def enqueue(self, queue: str, fn: str, *args: Any) -> Any:
        return self.queues[queue].enqueue(self.fns[fn], *args)

    def enqueue_many(self, queue: str, fn: str, args_list: list[tuple[Any, ...]]) -> list[Any]:
        return self.queues[queue].enqueue_many(self.fns[fn], args_list)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def settings(self) -> dict[str, str]:
        from autodurable._core._runtime import get_runtime

        conn = getattr(get_runtime().store, "_conn", None)
        return _sqlite_settings(conn.execute) if conn is not None else {}

    def close(self) -> None:
        self.lib.configure(database_url="sqlite:///:memory:")  # retires the executor


class Dbos:
    name = "dbos"

    def __init__(self, spec: dict[str, Any]) -> None:
        from dbos import DBOS

        self.DBOS = DBOS
        self.spec = spec
        STEPS.step = DBOS.step(name="queues.trivial")(trivial)
        self.fns = {
            "probe": DBOS.workflow(name="queues.probe")(probe),
            "job": DBOS.workflow(name="queues.job")(job),
            "rated": DBOS.workflow(name="queues.rated")(rated),
        }
        self.queues: dict[str, Any] = {}

    def open(self, db: Database, serve: list[str] | None, label: str) -> None:
        config: dict[str, Any] = {
            "name": APP,
            "application_version": APP,  # the same in every process: all dequeue all
            "executor_id": label,  # one per process, as autodurable's executors
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
        self.DBOS.listen_queues(serve or [])  # the client serves none
        self.DBOS.launch()
        self.fns["job"](0)  # warm up
        limiter = {"limit": self.spec["rate_limit"], "period": float(self.spec["rate_period"])}
        for name in QUEUES:
            self.queues[name] = _retry(
                lambda name=name: self.DBOS.register_queue(
                    name, limiter=limiter if name == "rated" else None
                )
            )
        # Its queue manager starts a polling thread per queue within a second.
        wanted = {f"queue-worker-{name}" for name in serve or []}
        deadline = time.monotonic() + 30
        while wanted - {thread.name for thread in threading.enumerate()}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"DBOS did not start its queue threads {sorted(wanted)}")
            time.sleep(0.02)

    def enqueue(self, queue: str, fn: str, *args: Any) -> Any:
        return self.queues[queue].enqueue(self.fns[fn], *args)

    def result(self, handle: Any) -> Any:
        return handle.get_result(polling_interval_sec=0.05)

    def settings(self) -> dict[str, str]:
        from dbos._dbos import _get_dbos_instance

        engine = _get_dbos_instance()._sys_db.engine
        if engine.dialect.name != "sqlite":
            return {}
        with engine.connect() as conn:
            return _sqlite_settings(lambda sql: conn.exec_driver_sql(sql))

    def close(self) -> None:
        self.DBOS.destroy()


def _retry(action: Callable[[], Any], attempts: int = 20) -> Any:
    """`action`, again after a short pause if it fails (workers declare their queues at
    the same moment; on SQLite one of them may find the file locked)."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 + random.random() * 0.1)
    raise AssertionError("unreachable")


LIBRARIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "autodurable": Autodurable,
    "dbos": Dbos,
}


# -- the roles ------------------------------------------------------------------


def run_worker(lib: Any, db: Database, spec: dict[str, Any]) -> None:
    lib.open(db, list(spec["serve"]), spec["label"])
    print(READY, flush=True)
    sys.stdin.read()  # until the caller closes it
    lib.close()


def task_latency(lib: Any, spec: dict[str, Any]) -> dict[str, Any]:
    low, high = spec["pause"]
    rng = random.Random(spec.get("seed", 0))
    latencies = []
    for n in range(spec["warmup"] + spec["samples"]):
        time.sleep(rng.uniform(low, high))  # the worker is idle, at its longest wait
        sent = time.time()
        started = lib.result(lib.enqueue("latency", "probe", sent))
        if n >= spec["warmup"]:
            latencies.append(started - sent)
    return {"latencies": latencies}


def task_burst(lib: Any, spec: dict[str, Any]) -> dict[str, Any]:
    queue = spec["queue"]
    warm = [lib.enqueue(queue, "job", -n) for n in range(spec["warm"])]
    for handle in warm:  # untimed: every worker has dequeued a few
        lib.result(handle)
    time.sleep(spec["settle"])  # the workers are idle again
    count = spec["workflows"]
    first = time.time()
    if spec.get("batch"):  # one call, one transaction (autodurable only: DBOS has none)
        handles = lib.enqueue_many(queue, "job", [(n,) for n in range(count)])
    else:
        handles = [lib.enqueue(queue, "job", n) for n in range(count)]
    enqueued = time.time()
    results = [lib.result(handle) for handle in handles]
    last = max(end for _, end, _ in results)
    return {
        "per_s": count / (last - first),
        "enqueue_per_s": count / (enqueued - first),
        "processes": len({int(pid) for _, _, pid in results}),
    }


def task_rate(lib: Any, spec: dict[str, Any]) -> dict[str, Any]:
    handles = [lib.enqueue("rated", "rated", n) for n in range(spec["rated"])]
    return {"starts": sorted(lib.result(handle) for handle in handles)}


TASKS = {"latency": task_latency, "burst": task_burst, "rate": task_rate}


def run_client(lib: Any, db: Database, spec: dict[str, Any]) -> None:
    lib.open(db, None, spec["label"])
    result = TASKS[spec["task"]](lib, spec)
    result["settings"] = lib.settings()
    sys.stdout.write(RESULT + json.dumps(result) + "\n")
    sys.stdout.flush()
    lib.close()


def main(argv: list[str]) -> int:
    role, library, raw_spec = argv
    spec = json.loads(raw_spec)
    lib = LIBRARIES[library](spec)
    if role == "worker":
        run_worker(lib, Database(spec), spec)
    else:
        run_client(lib, Database(spec), spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
