"""Which files make up a project, and the analyser's version.

Kept apart from the analyser so that a warm start of the import hook (every
module's rewritten code cached) imports neither the analyser nor pydantic.

Invariants: discovery reads directory listings only; it skips hidden folders,
caches, virtual environments (a folder holding ``pyvenv.cfg``), site-packages
and the paths matching the exclude patterns.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path

ANALYSER_VERSION = "4"  # bump when the analysis or the rewrite changes what they produce
_SKIP_DIRS = frozenset(
    {"__pycache__", "site-packages", "dist-packages", "node_modules", "build", "dist", ".git"}
)


def discover(root: Path, exclude: Iterable[str] = ()) -> dict[str, Path]:
    """Module name -> path of every Python module under `root`."""
    patterns = tuple(exclude)
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = here / name
            relative = path.relative_to(root).as_posix()
            if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
                continue
            parts = relative[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and all(p.isidentifier() for p in parts):
                found[".".join(parts)] = path
    return found
