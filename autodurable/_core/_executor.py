"""Executors: the processes that run workflows, and how others tell they are dead.

Invariants:
- Each process (and each forked child) has its own executor id.
- On the same host, liveness is read from the process table (pid exists, is
  not a zombie, and started at the recorded time, so a reused pid does not
  count), so a killed process's workflows can be adopted at once. Across
  hosts, liveness is a lease: the heartbeat, aged by the store's clock, must be
  younger than the lease. The stores apply the same rule inside their claims.
- The heartbeat renews the lease every third of it; the heartbeat thread never
  raises: a failed renewal is logged and retried, and once the lease has run
  out without renewal the log says that others may adopt this executor's
  workflows (its writes to adopted ones are then refused by the store). An
  executor whose row has disappeared registers again at its next heartbeat.
"""

from __future__ import annotations

import os
import threading
import time

from .._light import uuid4_hex
from .._records import Record
from .._store import ExecutorRecord, Store
from ._report import logger


def _hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it (without importing
    socket, 3 ms of every run's start, where the system can say)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # pragma: no cover - Windows

    return socket.gethostname()  # pragma: no cover - Windows


HOSTNAME = _hostname()


def process_started(pid: int) -> str | None:
    """The kernel's start time of process `pid` (Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # a zombie has exited, its parent just has not reaped it


def is_alive(
    executor: ExecutorRecord,
    lease_seconds: float,
    now: float | None = None,
    hostname: str | None = None,
) -> bool:
    """Whether `executor` may still be running its workflows, seen from `hostname`."""
    if executor.hostname == (hostname or HOSTNAME):
        if not _pid_running(executor.pid):
            return False
        started = process_started(executor.pid)
        return started is None or executor.process_started in (None, started)
    age = executor.heartbeat_age
    if age is None:
        age = (now or time.time()) - executor.heartbeat_at
    return age < lease_seconds


class Lease(Record, frozen=True):
    """One executor's view of liveness (the store's `Liveness`), without a heartbeat."""

    executor_id: str
    lease_seconds: float
    hostname: str

    def alive(self, executor: ExecutorRecord) -> bool:
        """Whether `executor` may still run its workflows (this executor always may)."""
        return executor.executor_id == self.executor_id or is_alive(
            executor, self.lease_seconds, hostname=self.hostname
        )


class Executor:
    """This process's identity in the store, kept alive by a heartbeat thread.

    It is the `Liveness` the stores use when this process claims workflows.
    """

    def __init__(self, store: Store, lease_seconds: float) -> None:
        now = time.time()
        pid = os.getpid()
        self.store = store
        self.record = ExecutorRecord(
            executor_id=uuid4_hex(),
            hostname=HOSTNAME,
            pid=pid,
            process_started=process_started(pid),
            started_at=now,
            heartbeat_at=now,
        )
        self.lease = Lease(self.record.executor_id, lease_seconds, self.record.hostname)
        self._stop = threading.Event()
        store.register_executor(self.record)
        self._renewed = time.monotonic()
        self._thread = threading.Thread(
            target=self._beat, name="autodurable-heartbeat", daemon=True
        )
        self._thread.start()

    @property
    def id(self) -> str:
        """The executor id recorded as owner of the workflows this process runs."""
        return self.record.executor_id

    @property
    def executor_id(self) -> str:
        """The same as `id` (the name the stores' `Liveness` protocol uses)."""
        return self.record.executor_id

    @property
    def hostname(self) -> str:
        """The host this executor runs on, as recorded."""
        return self.record.hostname

    @property
    def lease_seconds(self) -> float:
        """How long this executor's workflows stay its own without a heartbeat."""
        return self.lease.lease_seconds

    def alive(self, other: ExecutorRecord) -> bool:
        """Liveness of another executor, with this executor's lease."""
        return self.lease.alive(other)

    def _beat(self) -> None:
        interval = self.lease_seconds / 3
        expired_warned = False
        while not self._stop.wait(interval):
            try:
                if not self.store.heartbeat(self.id):
                    # Our row was deleted: without it our workflows look orphaned.
                    logger().warning("autodurable: this executor's row was gone; registering again")
                    self.store.register_executor(self.record)
            except Exception as exc:  # keep beating: the database may come back
                logger().warning("autodurable: could not renew the executor lease: %s", exc)
                late = time.monotonic() - self._renewed
                if late > self.lease_seconds and not expired_warned:
                    expired_warned = True
                    logger().warning(
                        "autodurable: this executor's lease (%.1fs) ran out %.1fs ago; other "
                        "executors may adopt its workflows, and its writes to those are refused",
                        self.lease_seconds,
                        late - self.lease_seconds,
                    )
                continue
            self._renewed = time.monotonic()
            expired_warned = False

    def stop(self, retire: bool = True) -> None:
        """Stop the heartbeat and, with `retire`, release this executor's workflows."""
        self._stop.set()
        if retire:
            try:
                self.store.retire_executor(self.id)
            except Exception as exc:
                logger().warning("autodurable: could not release workflows on exit: %s", exc)
