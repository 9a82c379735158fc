"""The process-wide runtime: settings, codec, store, executor and worker threads.

Invariants:
- Nothing touches the database until the first workflow runs: importing
  autodurable and decorating functions is free.
- `configure()` replaces the runtime; the old one retires its executor, so
  that its unfinished workflows can be adopted at once.
- A forked child never uses its parent's connection or executor id: it gets a
  fresh runtime with the same settings (the parent's runtime is kept, unused, so
  that nothing in the child closes connections the parent still uses).
- At shutdown the watcher stops adopting first; then workflows started in the
  background finish (the worker threads are joined, at interpreter exit), then
  the executor retires, releasing what it still owns. Workflows that wait (in
  `recv` or `sleep`) do not hold up the exit: they stop waiting when it begins
  and are released, pending, to be resumed elsewhere or at the next start.
- With telemetry off (the default) `Runtime.telemetry` is None and nothing of
  OpenTelemetry is imported; `steps_watched` is true when steps must take the
  general path for a runtime's sake (limits on APIs, telemetry), so the step
  fast path pays one attribute read for both.
- The store is the configured URL resolved against the project root (see
  `_config_source`): the folder of the nearest pyproject.toml above the
  project's starting folder, which is the working directory unless
  `use_project` named another (``autodurable run script.py`` names the
  script's folder).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import itertools
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._store import Store, open_store
from ._codec import Codec
from ._config import Settings, load_settings, project_root, resolve_database_url
from ._executor import Executor
from ._large import OutOfLine
from ._options import CallOptions
from ._post_import import when_imported

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from ._limits import Limiter
    from ._telemetry import Telemetry

_generations = itertools.count(1)


class Background(Protocol):
    """A background service of a runtime (the adopting watcher), stopped at shutdown."""

    def stop(self) -> None:
        """Stop; called once, before the runtime's workflows are joined."""


class Runtime:
    """Everything a process needs to run workflows against one store."""

    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self.settings = settings
        # The project root, and the database URL resolved against it (what is opened).
        self.root = root if root is not None else project_root(_project_start)
        self.database_url = resolve_database_url(settings.database_url, self.root)
        self.generation = next(_generations)
        self.codec = Codec(
            allow_pickle=settings.allow_pickle, allowed_modules=settings.allowed_modules
        )
        # Values too large for their rows go out of line, into the store's own place.
        self.codec.out_of_line = OutOfLine(
            lambda: self.store, settings.large_value_threshold, settings.large_value_limit
        )
        self.step_defaults: CallOptions = settings.steps
        self._lock = threading.RLock()
        self._store: Store | None = None
        self._executor: Executor | None = None
        self._pool: ThreadPoolExecutor | None = None
        # Workflows this process is running now, by id, so that a second call with
        # the same id waits for the first instead of running it twice (the top-level
        # calls of `_workflows`, under `_lock`).
        self.active: dict[str, Any] = {}
        # Claims recorded for workflows and handed to calls not yet made, by id (under
        # `_lock`): the first call of an id that runs takes them all (`_workflows`).
        self.handed: dict[str, list[Any]] = {}
        self.watcher: Background | None = None
        self.workers = max(32, (os.cpu_count() or 1) * 8)
        # Set when the process exits: workflows that wait stop waiting (released).
        self.stopping = threading.Event()
        # Limits on the APIs steps call ([tool.autodurable.limits]); None without any,
        # so that steps pay nothing for them.
        self.limiter: Limiter | None = None
        if settings.limits:
            from ._limits import Limiter

            self.limiter = Limiter(self, settings.limits)
        # OpenTelemetry traces and metrics ([tool.autodurable.telemetry]); None when off.
        self.telemetry: Telemetry | None = None
        if settings.telemetry.active:
            from ._otel import OpenTelemetry  # imports OpenTelemetry: only when on

            self.telemetry = OpenTelemetry(self, settings.telemetry)
        # Steps go the general path, where limits and telemetry are applied.
        self.steps_watched = self.limiter is not None or self.telemetry is not None
        _apply_record_http(settings)

    @property
    def store(self) -> Store:
        """The store, opened on first use."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.database_url)
                store = self._store
        return store

    @property
    def executor(self) -> Executor:
        """This process's executor, registered on first use."""
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = Executor(self.store, self.settings.lease_seconds)
                executor = self._executor
        return executor

    @property
    def location(self) -> str:
        """Where the state lives, for people: the SQLite file's absolute path, or the URL
        (its password masked)."""
        from .._project import state_location

        return state_location(self.database_url)

    def state_exists(self) -> bool:
        """Whether the store may hold anything: its SQLite file exists (a server: always).

        Checked without opening the store, which would create the file.
        """
        from .._project import sqlite_file

        if self._store is not None or not self.database_url.startswith("sqlite:"):
            return True
        path = sqlite_file(self.database_url)
        return path is None or path.is_file()

    def submit(self, fn: Any) -> Future[Any]:
        """Run `fn` on a worker thread (workflows started in the background).

        Submitted from an empty context: a workflow started by workflow code is
        a workflow of its own, never work of its starter (see `_concurrency`).
        """
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="autodurable-workflow"
                )
            return contextvars.Context().run(self._pool.submit, fn)

    def retire_when_idle(self) -> None:
        """Replaced by a new configuration: adopt nothing more, let the workflows running
        here finish with this configuration (their executor keeps its heartbeat and its
        store), then shut down, on a thread of its own."""
        with self._lock:
            watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
        _retiring.add(self)

        def drain() -> None:
            try:
                with self._lock:
                    pool = self._pool
                if pool is not None:
                    pool.shutdown(wait=True)  # without `stopping`: waits go on to their end
                self.shutdown(wait=True)
            finally:
                _retiring.discard(self)

        threading.Thread(target=drain, name="autodurable-retire", daemon=True).start()

    def shutdown(self, wait: bool = True) -> None:
        """Finish background workflows (with `wait`), retire the executor, close the store."""
        self.stopping.set()
        with self._lock:
            watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
        with self._lock:
            pool, self._pool = self._pool, None
        # Waited for outside the lock: a workflow ending on a worker (stopped in
        # recv or sleep by `stopping`) takes the lock to release itself.
        if pool is not None:
            pool.shutdown(wait=wait)
        with self._lock:
            if self._executor is not None:
                self._executor.stop(retire=True)
                self._executor = None
            if self._store is not None:
                self._store.close()
                self._store = None


def _apply_record_http(settings: Settings) -> None:
    """``record_http = true`` records HTTP requests at their client's transport without
    the launcher (which installs that itself); false turns it off (`_boundary_http`)."""
    if settings.record_http:
        from . import _boundary_http  # wrapt: imported only when asked for

        _boundary_http.install(settings.http_boundaries(launched=False))
    elif settings.record_http is False:
        module = sys.modules.get("autodurable._core._boundary_http")
        if module is not None:
            module.uninstall()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()
# Runtimes replaced by `configure()` whose workflows are still running (`retire_when_idle`).
_retiring: set[Runtime] = set()
_overrides: dict[str, Any] = {}
_project_start: Path | None = None  # where the project root is searched from (None: cwd)


def get_runtime() -> Runtime:
    """The current runtime, created from the configuration on first use."""
    runtime = _runtime
    if runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _set_runtime(Runtime(load_settings(_overrides, cwd=_project_start)))
            runtime = _runtime
    assert runtime is not None
    return runtime


def _set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def configure(
    database_url: str | None = None,
    *,
    allow_pickle: bool | None = None,
    allowed_modules: Iterable[str] | None = None,
    lease_seconds: float | None = None,
    steps: CallOptions | dict[str, Any] | None = None,
    app_version: str | None = None,
    limits: Mapping[str, Mapping[str, Any]] | None = None,
    telemetry: bool | Mapping[str, Any] | None = None,
    record_http: bool | None = None,
) -> None:
    """Configure autodurable for this process; overrides pyproject and environment.

    ``database_url`` is ``sqlite:///relative/path.db`` (relative to the project
    root: the folder of the nearest ``pyproject.toml``; by default
    ``.autodurable/state.db`` there) or ``sqlite:////abs/path.db`` (add
    ``?synchronous=full`` for power-loss durability), or
    ``postgresql://user:password@host:port/dbname`` (options ``?schema=``,
    ``pool_size=``, ``retry_seconds=``). ``lease_seconds`` is how long a workflow
    stays its executor's without a heartbeat before executors on other hosts may
    adopt it. ``allow_pickle`` lets the codec fall back to pickle (only for
    databases you trust). ``allowed_modules`` names modules that decoding may import
    to find a recorded class (by default decoding imports nothing and finds only
    classes of modules the program has imported). ``steps`` sets default step
    options (for example ``{"retries": 3, "timeout": 30}``). ``app_version`` is the
    version recorded on every workflow started here (a release tag, a commit); by
    default each workflow records a digest of the source file that defines it, and
    `recover()` resumes only workflows whose recorded version is the code's.
    ``limits`` maps API names or prefixes to limits on every step that calls them,
    across processes (``{"openai.*": {"concurrency": 8, "rate": "60/min"}}``, as
    ``[tool.autodurable.limits]``; it replaces that table). ``telemetry=True`` (or a
    table such as ``{"metrics": False}``) emits OpenTelemetry spans and metrics
    through the global tracer and meter providers (``pip install
    'autodurable[otel]'``; see docs/telemetry.md). ``record_http=True`` records every
    request that workflow code, or a library it calls, sends through httpx, urllib3
    (requests) or aiohttp as a step at the client's transport, as `autodurable run` does by
    default (see docs/agents.md); ``False`` turns that off. Invalid
    values raise `ConfigError` at once; workflows already running keep the previous
    configuration.
    """
    given = {
        "database_url": database_url,
        "allow_pickle": allow_pickle,
        "allowed_modules": None if allowed_modules is None else _names(allowed_modules),
        "lease_seconds": lease_seconds,
        "steps": steps,
        "app_version": app_version,
        "limits": None if limits is None else {k: dict(v) for k, v in limits.items()},
        "telemetry": _switch_or_table(telemetry),
        "record_http": record_http,
    }
    new_overrides = {**_overrides, **{k: v for k, v in given.items() if v is not None}}
    settings = load_settings(new_overrides, cwd=_project_start)  # validates first
    with _runtime_lock:
        old = _runtime
        _overrides.clear()
        _overrides.update(new_overrides)
        _set_runtime(Runtime(settings))
    if old is not None:
        old.retire_when_idle()


@contextlib.contextmanager
def scratch_runtime(database_url: str) -> Iterator[Runtime]:
    """A runtime of its own on `database_url` for the block (the configuration's other
    settings kept), then the one before it again, untouched.

    For tools that run workflow code against a scratch store (a replay check):
    other threads of the process see the scratch runtime while it is in place.
    Telemetry is off in it.
    """
    with _runtime_lock:
        old = _runtime
    # A replay against a scratch store is not the application's work: it reports no
    # spans or metrics (configure's values come last, so this wins over every source).
    scratch_overrides = {**_overrides, "database_url": database_url, "telemetry": False}
    settings = load_settings(scratch_overrides, cwd=_project_start)
    scratch = Runtime(settings, old.root if old is not None else None)
    with _runtime_lock:
        _set_runtime(scratch)
    try:
        yield scratch
    finally:
        with _runtime_lock:
            _set_runtime(old)
        scratch.shutdown(wait=True)


def _switch_or_table(telemetry: bool | Mapping[str, Any] | None) -> bool | dict[str, Any] | None:
    """``configure(telemetry=...)`` as the settings take it (a table is copied)."""
    return telemetry if telemetry is None or isinstance(telemetry, bool) else dict(telemetry)


def _names(modules: Iterable[str]) -> tuple[str, ...]:
    # One name is a common slip for a list of one; accept it rather than split letters.
    return (modules,) if isinstance(modules, str) else tuple(modules)


def use_project(start: Path) -> None:
    """Find the project (its pyproject.toml, its state) from `start` instead of the cwd.

    ``autodurable run script.py`` calls it with the script's folder, so that the
    script finds its state from any working directory. A runtime already made
    is replaced (with the same `configure()` overrides).
    """
    global _project_start
    start = start.resolve()
    settings = load_settings(_overrides, cwd=start)  # validates before anything changes
    with _runtime_lock:
        old = _runtime
        _project_start = start
        _set_runtime(Runtime(settings) if old is not None else None)
    if old is not None:
        old.retire_when_idle()


def _reset_overrides_for_tests() -> None:
    """Forget `configure()` calls (tests start each case from the environment)."""
    global _project_start
    with _runtime_lock:
        old = _runtime
        _overrides.clear()
        _project_start = None
        _set_runtime(None)
    if old is not None:
        old.shutdown(wait=True)


_forked_away: list[Runtime] = []


def _after_fork_in_child() -> None:
    global _runtime
    # The parent's connection and threads do not exist here; start afresh. The
    # parent's runtime stays referenced: finalising it here could close sockets
    # that the parent process still uses.
    old = _runtime
    if old is not None:
        _forked_away.append(old)
    _runtime = Runtime(old.settings, old.root) if old is not None else None


def _at_exit() -> None:
    runtime = _runtime
    if runtime is not None:
        runtime.shutdown(wait=True)


def _stop_waiting() -> None:
    """At exit, before worker threads are joined: waiting workflows stop waiting
    (those of runtimes that a new configuration replaced too)."""
    for runtime in [_runtime, *list(_retiring)]:
        if runtime is not None:
            runtime.stopping.set()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
# `_stop_waiting` must run before the thread pools join their workers (atexit runs
# after that). These hooks run last registered first: ours is registered now, for
# plain threads, and again after concurrent.futures.thread registers its own when it
# is imported (it costs a sync program 5 ms, with logging, so it is not imported here).
# Running it twice is harmless.
_register = getattr(threading, "_register_atexit", None)


def _stop_waiting_first(module: Any) -> None:
    """Post-import hook of concurrent.futures.thread: ours runs before its own."""
    with contextlib.suppress(RuntimeError):  # imported while the interpreter shuts down
        _register(_stop_waiting)  # type: ignore[misc]


if _register is not None:
    _register(_stop_waiting)
    when_imported("concurrent.futures.thread", _stop_waiting_first)
