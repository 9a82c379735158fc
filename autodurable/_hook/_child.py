"""``autodurable run -- CMD``: the import hook in every Python process of a command.

The launcher's side (`exec_command`) validates the configuration once, then
replaces itself with CMD, with a ``sitecustomize`` on its path that calls
`bootstrap()` in every Python process CMD starts (a test runner, its workers,
a server's children).

Invariants:
- Light: the settings come validated from the launcher, in the environment, so
  a child imports neither pydantic nor the runtime to install the hook; only a
  process that runs workflow code loads them. The sentinel (and wrapt's C
  extension, not its package) and the HTTP boundaries (`_core._boundary_http`)
  are installed when the first project module is imported: I/O references a
  module took before that are not watched.
- Silent: the launcher prints one status line (``-q`` silences it) before it
  becomes CMD; nothing else is printed, so programs reading their children's
  stderr see what they would see without the launcher.
- Unfinished workflows are recovered in the background only when the launcher
  found existing state: a command of a project that never recorded anything (a
  test suite, say) creates no database and runs nothing it did not ask for.
- Web applications (Starlette/FastAPI, Flask, Django) get the idempotency
  middleware when their framework is imported (`autodurable._web._install`).
- Without the launcher's environment (the bootstrap folder put on
  ``PYTHONPATH`` by hand), nothing happens.
- The launcher's side imports what validating the configuration needs and
  nothing of the runtime: it runs before every command.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

BOOTSTRAP_DIR = str(Path(__file__).resolve().parent.parent / "_bootstrap")
ENV_ROOT = "AUTODURABLE_PROJECT_ROOT"
ENV_SETTINGS = "AUTODURABLE_HOOK_SETTINGS"
RECOVERY_DELAY = 1.0  # seconds: the program starts first
# The HTTP boundaries on when nothing is configured (`BoundarySettings().names()`,
# kept here so that a child imports no pydantic to know them).
DEFAULT_BOUNDARIES = ("httpx", "urllib3", "aiohttp")


def hook_environment(root: Path) -> dict[str, str]:
    """The environment variables that hand the hook's settings to CMD's processes.

    The configuration is validated here, once; a project that configures nothing
    gets the defaults without the validation being imported.
    """
    return _hook_settings(root)[0]


def _hook_settings(root: Path) -> tuple[dict[str, str], str]:
    """`hook_environment`, and the URL of the state it found (resolved against `root`)."""
    from .._project import (
        DEFAULT_SENTINEL,
        DEFAULT_STATE_PATH,
        configures_nothing,
        resolve_database_url,
    )

    values: dict[str, Any]
    if configures_nothing(root):
        values = {
            "io": [],
            "roles": {},
            "exclude": [],
            "sentinel": DEFAULT_SENTINEL,
            "boundaries": list(DEFAULT_BOUNDARIES),
        }
        url = f"sqlite:///{root / DEFAULT_STATE_PATH}"
        recover = (root / DEFAULT_STATE_PATH).exists()  # the default store, without loading it
    else:
        from .._core._config import load_settings

        settings = load_settings(cwd=root)  # a bad configuration fails here, before anything runs
        values = {
            "io": list(settings.io),
            "roles": dict(settings.roles),
            "exclude": list(settings.exclude),
            "sentinel": settings.sentinel,
            "boundaries": list(settings.http_boundaries(launched=True)),
        }
        url = resolve_database_url(settings.database_url, root)
        recover = _state_exists(url)
    values["recover"] = recover
    return {ENV_ROOT: str(root), ENV_SETTINGS: json.dumps(values)}, url


def exec_command(command: str, args: list[str], quiet: bool = False) -> int:
    """Replace this process with `command` run under the hook; an exit code if it cannot.

    Unless `quiet`, one status line on stderr first names the command, the
    project and where the state of its workflows lives (the command's own
    processes print nothing of autodurable's).
    """
    import shutil
    import sys

    from .._project import project_root, state_location

    if not command:
        print("autodurable: run -- needs a command to run", file=sys.stderr)
        return 2
    root = Path(os.environ.get(ENV_ROOT) or project_root(Path.cwd()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [BOOTSTRAP_DIR, env.get("PYTHONPATH")]))
    hook_env, url = _hook_settings(root)
    env.update(hook_env)
    if os.sep not in command and shutil.which(command, path=env.get("PATH")) is None:
        print(f"autodurable: cannot run {command!r}: no such command on PATH", file=sys.stderr)
        return 127
    if not quiet:
        print(
            f"autodurable: running {command} with the modules of {root} made durable "
            f"(state in {state_location(url)})",
            file=sys.stderr,
            flush=True,
        )
    try:
        os.execvpe(command, [command, *args], env)
    except OSError as exc:
        print(f"autodurable: cannot run {command!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # pragma: no cover - execvpe does not return


def _state_exists(url: str) -> bool:
    """Whether the store at `url` may hold workflows (a SQLite file that exists; a server)."""
    if not url.startswith("sqlite:"):
        return True
    from .._store._sqlite import parse_sqlite_url

    return os.path.exists(parse_sqlite_url(url)[0])


def bootstrap() -> None:
    """Install the hook (and the sentinel) in this process, as the launcher set it up."""
    root, raw = os.environ.get(ENV_ROOT), os.environ.get(ENV_SETTINGS)
    if not root or not raw:
        return
    values = json.loads(raw)
    from . import _cache, _finder

    state = _cache.ProjectState(
        Path(root), tuple(values["io"]), values["roles"], tuple(values["exclude"])
    )
    _finder.install(
        state,
        on_first_module=lambda: _install_sentinel(values["sentinel"], values.get("boundaries", ())),
    )
    from .._web import _install

    _install.install()  # keyed requests to web applications become workflows (docs/web.md)
    if values["recover"]:
        timer = threading.Timer(RECOVERY_DELAY, recover_quietly)
        timer.daemon = True
        timer.start()


def _install_sentinel(mode: str, boundaries: Any = ()) -> None:
    # Only workflow code can need it, and only code that imports the project's
    # modules can be workflow code here; wrapt alone takes 20 to 80 ms to import,
    # which a child that runs none of the project (a helper script, a worker of
    # another tool) should not pay. The HTTP boundaries (docs/agents.md) likewise.
    from .._core import _sentinel

    _sentinel.install(mode)
    if boundaries:
        from .._core import _boundary_http

        _boundary_http.install(boundaries)


def recover_quietly() -> None:
    """Resume this store's unfinished workflows; problems are logged, never raised."""
    import contextlib

    from .._control._recovery import recover

    with contextlib.suppress(Exception):  # recover() logs its problems; the program goes on
        recover()
