"""Where the configuration comes from, read but not validated (that is `_config`'s job).

Kept apart so that ``autodurable run -- CMD``, which starts every command run
under the hook, can see that a project configures nothing and go on with the
defaults without importing the validation (pydantic).

Invariants: reads files and the environment only; a file that cannot be read
is a `ConfigError` naming it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ._errors import ConfigError

DEFAULT_STATE_PATH = ".autodurable/state.db"  # relative to the working directory
DEFAULT_DATABASE_URL = "sqlite:///" + DEFAULT_STATE_PATH
DEFAULT_SENTINEL = "warn"
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


def read_pyproject_section(path: Path | None) -> dict[str, Any]:
    """The ``[tool.autodurable]`` table of `path`, or {} when there is none."""
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
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
