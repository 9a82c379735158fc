"""Plain helper functions shared by the test files (no fixtures: those live in conftest.py).

- `selected_stores`: the stores chosen by ``AUTODURABLE_TEST_STORES``.
- `ROOT`, `child_env`, `write_script`, `run_python`, `run_command`: run code in
  child processes with the project importable.
- `serving`: the URL of a local HTTP service started as a child process.
- `wait_until`: poll a condition with a deadline.
- `count_lines`: how often each word of an "effects" file was written.
- `run_workflow`: start a workflow under a given id.
- `Backend`, `executor`, `lease`, `workflow`, `step`, `lost`: records for tests of the stores.
- `Crash`, `crash_points`, `maybe_crash`: simulated crashes inside one process
  (conftest disarms `crash_points` around every test).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import autodurable
from autodurable._core._executor import HOSTNAME, Lease, process_started
from autodurable._store import (
    PENDING,
    SUCCEEDED,
    ExecutorRecord,
    StepRecord,
    Store,
    WorkflowRecord,
    open_store,
)

ROOT = Path(__file__).resolve().parent.parent

KNOWN_STORES = ("sqlite", "postgresql")


def selected_stores() -> list[str]:
    """The stores named by ``AUTODURABLE_TEST_STORES`` (comma list; default: all), in order.

    Raises ValueError for an empty list or an unknown name.
    """
    raw = os.environ.get("AUTODURABLE_TEST_STORES", ",".join(KNOWN_STORES))
    names = list(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = sorted(set(names) - set(KNOWN_STORES))
    if unknown or not names:
        raise ValueError(
            f"AUTODURABLE_TEST_STORES={raw!r}: expected a comma list of {', '.join(KNOWN_STORES)}"
        )
    return names


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: the project importable, no inherited URL.

    `extra` is added last, so ``child_env(AUTODURABLE_DATABASE_URL=url)`` points the
    child at a database.
    """
    env = dict(os.environ)
    env.pop("AUTODURABLE_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def write_script(folder: Path, name: str, source: str) -> Path:
    """Write a dedented Python script into `folder`; its path."""
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def run_command(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in `cwd` to completion, capturing text output (`child_env()` by default)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_python(
    script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a script with this interpreter in its folder and wait for it (killed ones too)."""
    return run_command(
        [sys.executable, str(script), *args], cwd=script.parent, env=env, timeout=timeout
    )


@contextlib.contextmanager
def serving(service: subprocess.Popen[str]) -> Iterator[str]:
    """The URL of a local service that prints "listening on PORT"; stops it afterwards."""
    try:
        assert service.stdout is not None
        first_line = service.stdout.readline()
        assert first_line.startswith("listening on "), first_line
        yield f"http://127.0.0.1:{first_line.split()[-1]}"
    finally:
        service.kill()
        service.wait()
        if service.stdout is not None:
            service.stdout.close()


def wait_until(
    condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.01
) -> None:
    """Poll `condition` every `interval` seconds; fail the test if still false after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        time.sleep(interval)


def count_lines(path: Path) -> Counter[str]:
    """How often each whitespace-separated word occurs in `path` (empty if it does not exist)."""
    return Counter(path.read_text().split()) if path.exists() else Counter()


def run_workflow(fn: Callable[..., Any], workflow_id: str, *args: Any, **kwargs: Any) -> Any:
    """Call workflow `fn` with `args`/`kwargs` under the workflow id `workflow_id`."""
    return autodurable.options(fn, workflow_id=workflow_id)(*args, **kwargs)


class Crash(BaseException):
    """Stands for the process dying at this point: the workflow stays pending."""


crash_points: set[str] = set()


def maybe_crash(point: str) -> None:
    """Raise `Crash` once at `point` if a test armed it (``crash_points.add(point)``)."""
    if point in crash_points:
        crash_points.discard(point)
        raise Crash(point)


# -- records for tests of the stores -------------------------------------------------


@dataclass
class Backend:
    """One database; `open()` gives another store (another 'process') on it."""

    url: str
    stores: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        opened = open_store(self.url)
        self.stores.append(opened)
        return opened


def executor(executor_id: str, pid: int | None = None, host: str = HOSTNAME) -> ExecutorRecord:
    """A live executor record (this process by default), seen now."""
    pid = pid or os.getpid()
    now = time.time()
    return ExecutorRecord(executor_id, host, pid, process_started(pid), now, now)


def lease(executor_id: str, seconds: float = 30.0) -> Lease:
    """The liveness rule of executor `executor_id` on this host."""
    return Lease(executor_id, seconds, HOSTNAME)


def lost(workflow_id: str) -> str:
    """A `pytest.raises` match for the `OwnershipLost` a store raises about `workflow_id`."""
    return f"^workflow {re.escape(repr(workflow_id))} is no longer owned by this executor$"


def workflow(workflow_id: str, owner: str | None, name: str = "m:f", at: float = 0.0):
    """A pending workflow record without arguments, created at `at` (default: now)."""
    now = at or time.time()
    return WorkflowRecord(workflow_id, name, PENDING, '{"args":[],"kwargs":{}}', None, None,
                          owner, now, now)  # fmt: skip


def step(position: int, status: str = SUCCEEDED, output: str | None = None) -> StepRecord:
    """A step record ``s<position>`` with `status` and `output` (default: the position)."""
    return StepRecord(position, f"s{position}", status, output or str(position), None, 1, 1.5, 2.5)


@contextlib.contextmanager
def sqlite_at_schema(path: Path, version: int) -> Iterator[sqlite3.Connection]:
    """An SQLite database at `path` as migrations 1..`version` left it (a database
    written by an older autodurable); the block adds its rows."""
    from autodurable._store._migrations import load_migrations

    with sqlite3.connect(path) as conn:
        for number, script in load_migrations("sqlite")[:version]:
            conn.executescript(script)
            conn.execute(f"PRAGMA user_version = {number}")
        yield conn


@contextlib.contextmanager
def postgres_at_schema(url: str, version: int) -> Iterator[Any]:
    """The schema of `url` as PostgreSQL migrations 1..`version` left it; the block
    adds its rows (an autocommit connection with the schema on its search path)."""
    import psycopg

    from autodurable._store._migrations import load_migrations
    from autodurable._store._postgres_url import parse_postgres_url

    parsed = parse_postgres_url(url)
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{parsed.schema}"')
        conn.execute(f'SET search_path TO "{parsed.schema}"')
        for number, script in load_migrations("postgresql")[:version]:
            conn.execute(script)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
        yield conn
