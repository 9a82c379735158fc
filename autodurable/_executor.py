"""Executors: the processes that run workflows, and how others tell they are dead.

Invariants:
- Each process (and each forked child) has its own executor id.
- On the same host, liveness is read from the process table (pid exists, is
  not a zombie, and started at the recorded time, so a reused pid does not
  count), so a killed process's workflows can be adopted at once. Across
  hosts, liveness is a lease: the heartbeat must be younger than the lease.
- The heartbeat thread never raises; a failed renewal is logged and retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from ._store import ExecutorRecord, Store

log = logging.getLogger("autodurable")
HOSTNAME = socket.gethostname()


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


def is_alive(executor: ExecutorRecord, lease_seconds: float, now: float | None = None) -> bool:
    """Whether `executor` may still be running its workflows."""
    if executor.hostname == HOSTNAME:
        if not _pid_running(executor.pid):
            return False
        started = process_started(executor.pid)
        return started is None or executor.process_started in (None, started)
    return (now or time.time()) - executor.heartbeat_at < lease_seconds


class Executor:
    """This process's identity in the store, kept alive by a heartbeat thread."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        now = time.time()
        pid = os.getpid()
        self.store = store
        self.lease_seconds = lease_seconds
        self.record = ExecutorRecord(
            executor_id=uuid.uuid4().hex,
            hostname=HOSTNAME,
            pid=pid,
            process_started=process_started(pid),
            started_at=now,
            heartbeat_at=now,
        )
        self._stop = threading.Event()
        store.register_executor(self.record)
        self._thread = threading.Thread(
            target=self._beat, name="autodurable-heartbeat", daemon=True
        )
        self._thread.start()

    @property
    def id(self) -> str:
        """The executor id recorded as owner of the workflows this process runs."""
        return self.record.executor_id

    def alive(self, other: ExecutorRecord) -> bool:
        """Liveness of another executor, with this executor's lease."""
        return other.executor_id == self.id or is_alive(other, self.lease_seconds)

    def _beat(self) -> None:
        interval = self.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                self.store.heartbeat(self.id, time.time())
            except Exception as exc:  # keep beating: the database may come back
                log.warning("autodurable: could not renew the executor lease: %s", exc)

    def stop(self, retire: bool = True) -> None:
        """Stop the heartbeat and, with `retire`, release this executor's workflows."""
        self._stop.set()
        if retire:
            try:
                self.store.retire_executor(self.id)
            except Exception as exc:
                log.warning("autodurable: could not release workflows on exit: %s", exc)
