"""Where the configuration comes from, read but not validated (that is `_config`'s job).

Kept apart so that ``autodurable run -- CMD``, which starts every command run
under the hook, can see that a project configures nothing and go on with the
defaults without importing the validation (pydantic).

Where state lives is found as git finds its repository: the *project root* is
the folder of the nearest pyproject.toml at or above a starting folder (the
script's folder for ``autodurable run script.py``, the working directory
otherwise), else the starting folder itself; the default SQLite file is
``<project root>/.autodurable/state.db``, and a relative SQLite path in any
configuration source is relative to the project root. So a program started
again from another working directory (cron, systemd) finds its state.

Invariants: reads files and the environment only; a file that cannot be read
is a `ConfigError` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from ._errors import ConfigError

DEFAULT_STATE_PATH = ".autodurable/state.db"  # relative to the project root
DEFAULT_DATABASE_URL = "sqlite:///" + DEFAULT_STATE_PATH
DEFAULT_SENTINEL: Final = "warn"
ENV_DATABASE_URL = "AUTODURABLE_DATABASE_URL"
ENV_APP_VERSION = "AUTODURABLE_APP_VERSION"


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above `start` (the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def project_root(start: Path | None = None) -> Path:
    """The folder of the nearest pyproject.toml at or above `start` (the working
    directory), else `start` itself: where the default state lives."""
    found = find_pyproject(start)
    return found.parent if found is not None else (start or Path.cwd()).resolve()


def resolve_database_url(url: str, root: Path) -> str:
    """`url` with a relative SQLite path made absolute against the project `root`.

    Other URLs (absolute paths, ``:memory:``, servers, malformed ones, which the
    store's own parsing reports) come back unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        return url
    raw = parts.path[1:] if parts.path.startswith("/") else parts.path
    path = unquote(raw)
    if not path or path == ":memory:" or os.path.isabs(path):
        return url
    folder = str(root.resolve())
    for char, escaped in (("%", "%25"), ("?", "%3F"), ("#", "%23")):
        folder = folder.replace(char, escaped)  # read back by the store's unquote
    query = f"?{parts.query}" if parts.query else ""
    return f"sqlite:///{folder.rstrip('/')}/{raw}{query}"


def sqlite_file(url: str) -> Path | None:
    """The file an absolute ``sqlite:`` URL names; None for other stores and ``:memory:``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        return None
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path or path == ":memory:":
        return None
    return Path(path)


def state_location(url: str) -> str:
    """Where the state lives, for people: a SQLite file's path, or the URL without its password."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    password = urlsplit(url).password
    return url if password is None else url.replace(f":{password}@", ":***@", 1)


def read_pyproject_section(path: Path | None) -> dict[str, Any]:
    """The ``[tool.autodurable]`` table of `path`, or {} when there is none."""
    if path is None:
        return {}
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}. Fix the file or remove it.") from exc
    if b"autodurable" not in raw:
        # No table of ours, however it is spelt: not parsed (tomllib costs every run
        # and every command about 5 ms to import).
        return {}
    import tomllib

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}. Fix the file or remove it.") from exc
    section = data.get("tool", {}).get("autodurable", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.autodurable] in {path} must be a table")
    return section


def configures_nothing(cwd: Path | None = None) -> bool:
    """Whether neither pyproject.toml nor the environment sets anything: the defaults hold."""
    if os.environ.get(ENV_DATABASE_URL) or os.environ.get(ENV_APP_VERSION):
        return False
    return not read_pyproject_section(find_pyproject(cwd))
