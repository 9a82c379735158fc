"""``autodurable run``: run an unmodified program durably.

The project's modules are rewritten at import time (`_hook`), and for a script
or ``-m`` module the run itself is a workflow named after the program, with
the arguments as inputs.

Invariants:
- Running the same command again resumes an unfinished run (same program and
  arguments); a failed run is retried from the step that failed, with the
  earlier steps replayed; a finished run starts a fresh one. A run is
  finished only once its process exits cleanly (after the program's atexit
  handlers and threads): one killed after the program returned but before
  that is replayed to the end by the same command, not started afresh. ``--new`` always
  starts afresh and ``--run-id`` names the run explicitly.
- The program sees what plain ``python`` gives it: ``sys.argv``, ``sys.path[0]``,
  ``__main__``, its stdout and stderr, and its exit code (``sys.exit(n)`` exits
  with n; an uncaught exception prints its traceback and exits with 1).
- One line on stderr says new / resumed / retried, how many recorded steps
  will be replayed, and where the state lives, as an absolute path (``-q``
  silences it).
- The state of a script is found from the script's folder, as git finds its
  repository: ``<nearest pyproject.toml's folder>/.autodurable/state.db``, else
  ``<script's folder>/.autodurable/state.db`` (``-m`` and ``--``: from the
  working directory). A killed run started again from another working
  directory resumes.
- A cancelled run does not run: the command says how to resume it
  (``autodurable workflows resume ID``, then the same command again). A run
  cancelled while it runs stops at its next step and says the same.
- The run's version is a digest of the program's source file.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import importlib.util
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

from .._control._registry import RUN_PREFIX, is_program_run
from .._core._app_versions import VERSION_ATTRIBUTE
from .._core._config import load_settings
from .._core._decorators import workflow
from .._core._names import PACKAGE_DIR
from .._core._options import options
from .._core._runtime import Runtime, get_runtime, use_project
from .._core._workflows import FinishLater, finishing_later
from .._errors import AutodurableError, NondeterminismError, OwnershipLost, WorkflowCancelled
from .._light import sha256, uuid4_hex
from .._project import project_root
from .._records import Record
from .._store import CANCELLED, FAILED, PENDING, SUCCEEDED
from . import _collector
from ._cache import ProjectState
from ._finder import durable_code, install


class ScriptExit(Exception):
    """The program called ``sys.exit`` with a failure code (recorded as a failed run)."""

    def __init__(self, code: Any) -> None:
        super().__init__(f"exited with {code!r}")
        self.code = code


class Target(Record):
    """What to run: a script path, a module (``-m``) or any command (``--``)."""

    kind: str  # "script" | "module" | "command"
    value: str
    args: list[str]


def prepare_hook(root: Path) -> ProjectState:
    """Install the import hook (and the sentinel) for the project at `root`."""
    settings = get_runtime().settings
    state = ProjectState(root, settings.io, settings.roles, settings.exclude)
    _install_sentinel(settings.sentinel)
    _install_boundaries(settings.http_boundaries(launched=True))
    from .._web import _install

    _install.install()  # keyed requests to web applications become workflows (docs/web.md)
    # Last, so first on sys.meta_path: the post-import finders just installed watch
    # library modules only, and need not be asked about each of the project's.
    install(state)
    from .. import inline as _inline

    _inline.report_not_durable = True  # the program's modules name what is not durable
    return state


def _install_sentinel(mode: str) -> None:
    try:
        from .._core import _sentinel
    except ImportError:  # pragma: no cover - the sentinel ships with the package
        return
    _sentinel.install(mode)


def _install_boundaries(names: tuple[str, ...]) -> None:
    """Record HTTP requests at the transports of `names` in workflow code (docs/agents.md)."""
    if names:
        from .._core import _boundary_http

        _boundary_http.install(names)


def run(
    target: Target, *, new: bool = False, run_id: str | None = None, quiet: bool = False
) -> int:
    """Run `target` durably; returns the process exit code."""
    if target.kind == "command":
        from ._child import exec_command

        return exec_command(target.value, target.args)
    if target.kind == "script":
        path = Path(target.value).resolve()
        if not path.is_file():
            load_settings()  # a bad configuration fails first, as it always did
            print(f"autodurable: can't open file {target.value!r}: no such file", file=sys.stderr)
            return 2
        # The script's project, found from its folder: its state is found again
        # from any working directory (a restart by cron or systemd resumes).
        use_project(path.parent)  # validates the configuration, before anything runs
        sys.path[0] = str(path.parent)
        state = prepare_hook(project_root(path.parent))
        module, source_path, label = _script_module(path), str(path), str(path)
    else:
        load_settings()  # a bad configuration fails here, before anything runs
        sys.path[0] = os.getcwd()
        state = prepare_hook(project_root(Path.cwd()))
        found = _module_spec(target.value)
        if found is None:
            print(f"autodurable: no module named {target.value!r}", file=sys.stderr)
            return 1
        module, source_path = found
        label = f"-m {target.value}"
    sys.argv = [source_path, *target.args]
    source = Path(source_path).read_bytes()
    try:
        code = durable_code(state, source_path, True, source) or compile(
            source, source_path, "exec", dont_inherit=True
        )
    except SyntaxError as exc:  # printed as python prints it
        import traceback

        print("".join(traceback.format_exception_only(exc)), end="", file=sys.stderr)
        return 1
    version = sha256(source).hexdigest()[:12]
    return _run_workflow(code, module, label, target.args, new, run_id, quiet, version)


def _script_module(path: Path) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__file__ = str(path)
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    module.__spec__ = None
    return module


def _module_spec(name: str) -> tuple[types.ModuleType, str] | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is not None and spec.submodule_search_locations is not None:
        spec = importlib.util.find_spec(f"{name}.__main__")  # a package runs its __main__
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    module = types.ModuleType("__main__")
    module.__file__ = spec.origin
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    module.__spec__ = spec
    module.__package__ = spec.parent
    return module, spec.origin


def _run_workflow(
    code: types.CodeType,
    module: types.ModuleType,
    label: str,
    args: list[str],
    new: bool,
    run_id: str | None,
    quiet: bool,
    version: str | None = None,
) -> int:
    runtime = get_runtime()
    _recover_others(runtime)
    # A path that is not valid UTF-8 (lone surrogates from os.fsdecode) is named by
    # its bytes, escaped: the same name for the same path on every run.
    name = RUN_PREFIX + label.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    workflow_id, state = _choose_run(name, args, new, run_id)
    if state == "cancelled":
        print(
            f"autodurable: run {workflow_id} was cancelled; nothing runs. To continue it: "
            f"autodurable workflows resume {workflow_id}, then this command again (--new "
            "starts another run)",
            file=sys.stderr,
        )
        return 1
    if not quiet:
        if state == "finished":
            message = f"run {workflow_id} already finished; nothing runs (--new starts another)"
        elif state == "new":
            message = f"new run {workflow_id}"
        else:
            replayed = len(runtime.store.list_steps(workflow_id))
            message = f"{state} run {workflow_id}, replaying {replayed} recorded step(s)"
        print(f"autodurable: {message} (state in {runtime.location})", file=sys.stderr)
    sys.modules["__main__"] = module

    def body(argv: list[str]) -> int:
        _collector.resume()  # start-up is over: the program's objects are its own
        try:
            exec(code, module.__dict__)
        except SystemExit as exc:
            if exc.code in (None, 0):
                return 0
            raise ScriptExit(exc.code) from None
        return 0

    if version is not None:
        setattr(body, VERSION_ATTRIBUTE, version)
    program = workflow(name=name, unrecordable="rerun")(body)
    # The run is finished once the process has exited cleanly, not when the
    # program returns: registered before the program runs, this handler runs
    # after the program's own (atexit runs the last registered first).
    later = FinishLater(workflow_id)
    atexit.register(_finish_at_exit, later)
    try:
        with finishing_later(later):
            return int(options(program, workflow_id=workflow_id)(args))
    except ScriptExit as exc:
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except WorkflowCancelled as exc:
        print(
            f"autodurable: {exc}. To continue it: autodurable workflows resume "
            f"{exc.workflow_id}, then this command again",
            file=sys.stderr,
        )
        return 1
    except (AutodurableError, NondeterminismError) as exc:
        print(f"autodurable: {exc}", file=sys.stderr)
        return 1
    except OwnershipLost:
        print(
            f"autodurable: another executor took over run {workflow_id} (this process was "
            "presumed dead: no heartbeat within the lease); it continues the run, and this "
            "process stops here",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:
        _print_user_traceback(exc)
        return 1


def _finish_at_exit(later: FinishLater) -> None:
    """Record the program run as finished: its process is exiting cleanly."""
    for stream in (sys.stdout, sys.stderr):  # its output is out before it counts as done
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        later.finish()
    except (AutodurableError, OwnershipLost) as exc:
        print(
            f"autodurable: run {later.workflow_id} ended, but could not be recorded as "
            f"finished ({exc}); the same command again replays it to the end",
            file=sys.stderr,
        )


def _choose_run(name: str, args: list[str], new: bool, run_id: str | None) -> tuple[str, str]:
    """The id of the run to execute and whether it is new, resumed or retried."""
    store = get_runtime().store
    if run_id is None and not new:
        codec = get_runtime().codec
        for record in store.list_workflows(name=name, limit=50):
            if codec.decode(record.inputs) != {"args": [args], "kwargs": {}}:
                continue
            if record.status == SUCCEEDED:
                break  # finished: a fresh run
            run_id = record.workflow_id
            break
    if run_id is None:
        return f"run-{uuid4_hex()[:12]}", "new"
    existing = store.get_workflow(run_id)
    if existing is None:
        return run_id, "new"
    if existing.status == FAILED:
        store.reopen_workflow(run_id)
        return run_id, "retrying failed"
    if existing.status == PENDING:
        return run_id, "resuming"
    if existing.status == CANCELLED:
        return run_id, "cancelled"
    return run_id, "finished"


# How many pending workflows the launcher looks at before it starts recovery.
_GLANCE = 64


def _recover_others(runtime: Runtime) -> None:
    """Resume other unfinished workflows of this database in the background.

    Recovery (and its import) is skipped when a glance at the store finds nothing it
    could resume: no pending workflow but program runs, which only their own command
    resumes, and no upgrade to make. That is most runs, and it spares each of them
    the recovery thread's start-up.
    """
    if runtime.settings.upgrade == "never":
        pending = runtime.store.list_workflows(status=PENDING, limit=_GLANCE)
        if len(pending) < _GLANCE and all(is_program_run(r.name) for r in pending):
            return
    from ._child import recover_quietly

    threading.Thread(target=recover_quietly, name="autodurable-recover", daemon=True).start()


def _print_user_traceback(exc: BaseException) -> None:
    """Print a traceback as Python would, without autodurable's own frames."""
    import traceback  # loaded when a program fails, not by every run

    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(PACKAGE_DIR) and frame.filename != "<string>"
    ]
    print("Traceback (most recent call last):", file=sys.stderr)
    print("".join(traceback.format_list(frames)), end="", file=sys.stderr)
    print("".join(traceback.format_exception_only(exc)), end="", file=sys.stderr)
