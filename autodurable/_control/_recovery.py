"""Recovery: resume every unfinished workflow that nobody alive is running.

Invariants:
- A workflow owned by a live executor (another process, or this one) is left
  alone; one whose executor is dead, or that nobody owns, is resumed here in
  the background from its recorded inputs.
- Workflows that cannot be resumed are reported with the reason, never
  dropped: they stay pending in the store for a later attempt.
- The result is a value (`RecoveryReport`), not an exception.
- A workflow is claimed (atomically, in the store) before it is started, so
  executors recovering at the same moment never start the same workflow; the
  claim and its history are handed to the run.
- By default only workflows whose recorded version is the version of the code
  here (`_version`), or that have none, are resumed; the others are reported
  (`RecoveryReport.other_versions`) and left for executors running their code.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Collection
from concurrent.futures import Future
from typing import Any

from .._backoff import Backoff
from .._core._app_versions import version_for
from .._core._runtime import Runtime, get_runtime
from .._errors import AutodurableError, WorkflowCancelled
from .._store import Subscription, WorkflowRecord
from ._handle import WorkflowHandle
from ._launch import submit_claimed
from ._recovery_report import RecoveryReport, Unrecoverable
from ._registry import find_workflow, is_program_run
from ._schedules import declare_schedules, fire_due
from ._upgrade import upgrade_workflows
from ._worker import declare_queues, serve_queues

log = logging.getLogger("autodurable")
_LONGEST_TICK = 5.0  # seconds between looks for workflows to adopt, at most
_SLICE = 0.25  # the watcher notices stop() within this
_LONGEST_BACKOFF = 600.0
_FIRST_QUEUE_LOOK, _LAST_QUEUE_LOOK = 0.01, 0.2  # seconds between looks at the queues
_FIRE_EVERY = 0.5  # seconds between looks at the schedules' ticks
_CHANGE_POLL = 0.005  # seconds between looks for other processes' commits (SQLite workers)


def recover(
    *, watch: bool = False, all_versions: bool = False, queues: Collection[str] | None = None
) -> RecoveryReport:
    """Resume, in the background, every unfinished workflow that no live process runs.

    Call it at start-up of a long-running application (the launcher does).
    Returns a `RecoveryReport`; workflows it cannot resume (their function
    cannot be imported, their inputs cannot be decoded) are listed with the
    reason and logged as warnings.

    With ``watch=True`` this process also becomes a worker that keeps adopting:
    a background thread looks for workflows whose executor died (on this host,
    its process is gone; on another host, its lease of ``lease_seconds`` ran
    out) or that were released, every quarter lease (at most every 5 s) and at
    once when the store announces a release, claims them atomically and resumes
    them, up to as many at a time as this process has worker threads. It stops
    when the process exits or `configure()` replaces the configuration.

    Only workflows started by the same version of their code (see
    ``configure(app_version=...)``) are resumed, and those that have no
    version; the others are listed in ``report.other_versions``, for a process
    running their code. ``all_versions=True`` resumes them too, with the code
    here (a replay that no longer matches stops with `NondeterminismError`).
    With ``upgrade = "when-compatible"`` in ``[tool.autodurable]``, those whose
    recorded history replays on the code here are first moved to its version
    and resumed (`autodurable workflows upgrade` does it by hand).

    A watching process is also a queue worker: it serves every queue (or only
    those named in ``queues``), starting their workflows within each queue's
    limits as it has room, and looks for new ones often (at once when the
    store announces an enqueue).
    """
    runtime = get_runtime()
    report = RecoveryReport()
    if runtime.settings.upgrade == "when-compatible":
        for moved in upgrade_workflows():
            log.info("autodurable: %s", moved)
    _adopt(runtime, report, limit=_ALL, capacity=_ALL, skip=frozenset(), all_versions=all_versions)
    if watch:
        with runtime._lock:
            watcher = runtime.watcher
            if watcher is None:
                watcher = runtime.watcher = _Watcher(runtime, all_versions, queues)
                watcher.start()
        if isinstance(watcher, _Watcher):
            watcher.track(report)  # so that what fails again now is backed off from too
    return report


_ALL = 1_000_000_000


def _other_version(runtime: Runtime, record: WorkflowRecord, fn: Any) -> str | None:
    """Why `record` is left to other code (its version is not this code's), or None."""
    here = version_for(runtime.settings, fn)
    if record.app_version is None or here is None or record.app_version == here:
        return None
    return (
        f"started by version {record.app_version} of its code, and the code here is version "
        f"{here}: left pending for a process running that version (recover(all_versions=True) "
        f"or `autodurable workflows resume {record.workflow_id} --run` runs it with this code)"
    )


def _adopt(
    runtime: Runtime,
    report: RecoveryReport,
    limit: int,
    capacity: int,
    skip: Collection[str],
    all_versions: bool = False,
) -> None:
    """Claim and start up to `capacity` adoptable workflows, looking at up to `limit`."""
    executor = runtime.executor
    store = runtime.store
    for record, _owner in store.adoptable_workflows(executor, limit):
        if len(report.resumed) >= capacity:
            break
        workflow_id = record.workflow_id
        if workflow_id in runtime.active or workflow_id in skip:
            continue
        if is_program_run(record.name):
            continue  # a program run by `autodurable run`: running the command resumes it
        try:
            fn = find_workflow(record.name)
            other = None if all_versions else _other_version(runtime, record, fn)
            if other is not None:
                report.other_versions.append(Unrecoverable(workflow_id, record.name, other))
                log.info("autodurable: not resuming workflow %s: %s", workflow_id, other)
                continue
            inputs = runtime.codec.decode(record.inputs)
        except (LookupError, AutodurableError) as exc:
            report.unrecoverable.append(Unrecoverable(workflow_id, record.name, str(exc)))
            log.warning("autodurable: cannot resume workflow %s: %s", workflow_id, exc)
            continue
        claim = store.claim_workflow(workflow_id, executor, version_for(runtime.settings, fn))
        if claim is None or not claim.claimed:
            continue  # another executor was faster, or it finished meanwhile
        future = submit_claimed(runtime, fn, claim, inputs)
        report.resumed.append(WorkflowHandle(workflow_id, future))


class _Watcher:
    """The background thread of `recover(watch=True)`: adopts what dead executors leave.

    Invariants: it never holds more adopted workflows unfinished than the
    runtime has worker threads (the rest is left to other executors); a
    workflow it could not resume, or that stopped again because of an error of
    ours, is not looked at again for a while (backing off up to 10 minutes), so
    a broken workflow does not keep an executor busy.
    """

    def __init__(
        self, runtime: Runtime, all_versions: bool = False, queues: Collection[str] | None = None
    ) -> None:
        self.runtime = runtime
        self.all_versions = all_versions
        self.queues = None if queues is None else frozenset(queues)
        self.interval = max(0.05, min(runtime.settings.lease_seconds / 4, _LONGEST_TICK))
        # Queue workers look often, more so right after finding work: an enqueue
        # elsewhere on SQLite announces itself to nobody.
        self._queue_looks = Backoff(_FIRST_QUEUE_LOOK, _LAST_QUEUE_LOOK)
        self._last_adoption = 0.0
        self._last_firing = 0.0
        self._retry_at: float | None = None  # a rate window frees then (wall clock)
        # Serving queues on a store that cannot notify: watch for other processes'
        # commits instead of waiting out the interval.
        self._polls_for_changes = (queues is None or bool(queues)) and not runtime.store.notifies
        self._nudged = threading.Event()  # a workflow of ours ended: room to take more
        self._wakeups: Subscription | None = None  # what the loop sleeps on, while it runs
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, WorkflowHandle[Any]] = {}
        self._not_before: dict[str, float] = {}  # workflow id -> monotonic time
        self._backoff: dict[str, float] = {}
        self._thread = threading.Thread(target=self._loop, name="autodurable-watch", daemon=True)

    def start(self) -> None:
        """Start the background thread (storing the queues and schedules declared here)."""
        declare_queues(self.runtime)
        declare_schedules(self.runtime)
        self._thread.start()

    def stop(self) -> None:
        """Stop adopting (workflows already adopted keep running)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        try:
            wakeups = self.runtime.store.subscribe(None)
        except Exception as exc:  # the store may be unreachable now: poll instead
            log.warning("autodurable: adoption is not woken by the store: %s", exc)
            wakeups = None
        self._wakeups = wakeups
        try:
            while not self._stop.is_set() and not self.runtime.stopping.is_set():
                started = 0
                try:
                    started = self._tick()
                except Exception as exc:  # keep watching: the database may come back
                    log.warning("autodurable: looking for workflows to adopt failed: %s", exc)
                if started:
                    self._queue_looks.reset()  # more may be ready: look again soon
                else:
                    self._sleep(wakeups)
        finally:
            self._wakeups = None
            if wakeups is not None:
                wakeups.close()

    def _sleep(self, wakeups: Subscription | None) -> None:
        interval = min(self.interval, _FIRE_EVERY)
        if self.queues is None or self.queues:
            interval = min(interval, self._queue_looks.next())
            if self._retry_at is not None:  # look right when the rate window frees
                interval = min(interval, max(0.0, self._retry_at - time.time()))
        deadline = time.monotonic() + interval
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._nudged.is_set():
                self._nudged.clear()
                return
            # Short slices so that stop() is noticed; a release wakes us at once
            # (from any process where the store notifies, else from this one).
            if self._polls_for_changes and self.runtime.store.changed_elsewhere():
                return  # another process wrote (an enqueue, perhaps): look now
            if wakeups is None:
                self._stop.wait(min(left, _SLICE))
            elif wakeups.wait(min(left, _CHANGE_POLL if self._polls_for_changes else _SLICE)):
                if wakeups.took_release():  # a release: adopt at once (an enqueue: queues only)
                    self._last_adoption = 0.0
                return

    def _tick(self) -> int:
        """Adopt what dead executors left (every interval), then serve the queues; how
        many workflows were started from queues."""
        now = time.monotonic()
        with self._lock:
            self._not_before = {k: t for k, t in self._not_before.items() if t > now}
            skip = set(self._not_before)
            capacity = self.runtime.workers - len(self._running)
        if capacity <= 0:
            return 0
        report = RecoveryReport()
        if now - self._last_adoption >= self.interval:
            self._last_adoption = now
            _adopt(
                self.runtime,
                report,
                limit=capacity + len(skip),
                capacity=capacity,
                skip=skip,
                all_versions=self.all_versions,
            )
        started = 0
        if now - self._last_firing >= _FIRE_EVERY:  # schedules' ticks, twice a second
            self._last_firing = now
            started += fire_due(self.runtime, report)
        if self.queues is None or self.queues:
            room = capacity - len(report.resumed)
            served = serve_queues(self.runtime, room, self.queues, report)
            started += served.started
            self._retry_at = served.retry_at
        self.track(report)
        return started

    def track(self, report: RecoveryReport) -> None:
        """Follow what a recovery pass resumed, and postpone what it could not resume."""
        with self._lock:
            for unrecoverable in [*report.unrecoverable, *report.other_versions]:
                self._postpone(unrecoverable.workflow_id)
            for handle in report.resumed:
                self._running[handle.workflow_id] = handle
        for handle in report.resumed:
            future = handle._future
            if future is not None:
                future.add_done_callback(functools.partial(self._finished, handle.workflow_id))

    def _finished(self, workflow_id: str, future: Future[Any]) -> None:
        self._nudged.set()  # room for another: look at the queues now
        wakeups = self._wakeups
        if wakeups is not None:  # asleep on it between its looks at the queues: wake it
            wakeups.wake(released=False)
        error = future.exception()
        with self._lock:
            self._running.pop(workflow_id, None)
            if error is not None and (
                isinstance(error, AutodurableError)
                or not isinstance(error, Exception | WorkflowCancelled)
            ):
                self._postpone(workflow_id)  # left pending by an error of ours: back off
            else:
                self._backoff.pop(workflow_id, None)

    def _postpone(self, workflow_id: str) -> None:
        delay = min(self._backoff.get(workflow_id, self.interval * 2) * 2, _LONGEST_BACKOFF)
        self._backoff[workflow_id] = delay
        self._not_before[workflow_id] = time.monotonic() + delay
