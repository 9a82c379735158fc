"""Application versions: which code a workflow was started with.

Every workflow records a version. When one is configured (``app_version`` in
``[tool.autodurable]``, ``AUTODURABLE_APP_VERSION``, ``configure(app_version=
...)``), it is that string, for every workflow. Otherwise it is computed from
the code: the first 12 hex digits of the SHA-256 of the source file that
defines the workflow's function. Every process that imports that file agrees
on it, whatever else it imports, and a change to the workflow's module (a
deploy) changes it. `recover()` resumes a workflow only when its recorded
version is the version of the code that would run it.

Invariants:
- A module's digest is taken once per process, at its first use, so it stays
  the version of the code that was loaded even if the file changes later.
- Code without a source file (typed into an interpreter) has no version
  (None), and a workflow without a version may be run by any code.
- `source_version` finds a module's file on disk without importing anything.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

from .._light import sha256
from ._config import Settings

_digests: dict[str, str | None] = {}
_lock = threading.Lock()
VERSION_ATTRIBUTE = "__autodurable_version__"  # set on a function to name its version


def file_digest(path: str) -> str | None:
    """The version of the code in the file at `path`, or None if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return sha256(fh.read()).hexdigest()[:12]
    except OSError:
        return None


def code_version(fn: Any) -> str | None:
    """The version computed from the code of the workflow function `fn`."""
    explicit = getattr(fn, VERSION_ATTRIBUTE, None)
    if isinstance(explicit, str):
        return explicit
    module_name = getattr(fn, "__module__", None)
    if not isinstance(module_name, str):
        return None
    if module_name in _digests:
        return _digests[module_name]
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    digest = file_digest(path) if isinstance(path, str) else None
    with _lock:
        return _digests.setdefault(module_name, digest)


def version_for(settings: Settings, fn: Any) -> str | None:
    """The version to record for a workflow of `fn`: the configured one, or its code's."""
    return settings.app_version or code_version(fn)


def source_version(name: str, search: Iterable[str]) -> str | None:
    """The computed version of workflow `name` ("module:qualname") as its file is on disk.

    The module is looked for in the folders of `search` (as ``sys.path`` lists
    them), without importing it or its packages; None when it is not found.
    """
    module, sep, _ = name.partition(":")
    if not sep or not module or not all(part.isidentifier() for part in module.split(".")):
        return None
    relative = os.path.join(*module.split("."))
    for folder in search:
        for candidate in (relative + ".py", os.path.join(relative, "__init__.py")):
            path = os.path.join(folder or ".", candidate)
            if os.path.isfile(path):
                return file_digest(path)
    return None
