"""wrapt's proxy types, without importing the ``wrapt`` package.

Importing ``wrapt`` imports ``importlib.metadata`` (for its entry points) and
``inspect``: about 25 ms, paid by every process that imports a module the hook
rewrote and by every process started under ``autodurable run -- CMD``. The
types autodurable uses live in wrapt's C extension, ``wrapt._wrappers``, which
imports nothing when loaded. Loaded alone, under its own name, it is the very
module the package takes from ``sys.modules`` if the program imports ``wrapt``
later: the types stay the same objects either way.

Invariants:
- When the package is imported already, its extension is disabled
  (``WRAPT_DISABLE_EXTENSIONS``) or it has none, the package is imported as
  usual and its types are used.
- Only autodurable's modules that run without workflow code (the wrappers of
  rewritten code, the sentinel, the boundaries, the concurrency patches) use
  this facade; code loaded for workflows may import ``wrapt`` itself.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any


def _extension() -> ModuleType | None:
    """wrapt's C extension, loaded without its package; None if that is not possible."""
    loaded = sys.modules.get("wrapt._wrappers")
    if loaded is not None or "wrapt" in sys.modules or os.environ.get("WRAPT_DISABLE_EXTENSIONS"):
        return loaded
    try:
        spec = importlib.machinery.PathFinder.find_spec("wrapt")
        folders = list(spec.submodule_search_locations or ()) if spec is not None else []
        for folder in folders:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(folder, "_wrappers" + suffix)
                if not os.path.isfile(path):
                    continue
                loader = importlib.machinery.ExtensionFileLoader("wrapt._wrappers", path)
                found = importlib.machinery.ModuleSpec("wrapt._wrappers", loader, origin=path)
                module = loader.create_module(found)
                if module is None:  # pragma: no cover - extension modules create themselves
                    return None
                module.__spec__, module.__file__ = found, path
                loader.exec_module(module)
                sys.modules["wrapt._wrappers"] = module
                return module
    except (ImportError, OSError):  # pragma: no cover - a broken install: the package says why
        return None
    return None  # pragma: no cover - a build of wrapt without its extension


def _types() -> tuple[Any, Any, str]:
    """(FunctionWrapper, BoundFunctionWrapper, the package's folder)."""
    extension = _extension()
    if extension is None:
        import wrapt

        return wrapt.FunctionWrapper, wrapt.BoundFunctionWrapper, os.path.dirname(wrapt.__file__)
    folder = os.path.dirname(str(extension.__file__))
    return extension.FunctionWrapper, extension.BoundFunctionWrapper, folder


FunctionWrapper, BoundFunctionWrapper, PACKAGE_DIR = _types()


def resolve_path(target: Any, path: str) -> tuple[Any, str, Any]:
    """(owner, attribute, value) of the dotted attribute `path` of `target` (a module or a
    module's name).

    On a class, the attribute is read from the class dictionaries along its MRO,
    as defined (a ``staticmethod`` stays one), so that setting it back restores it.
    """
    if isinstance(target, str):
        __import__(target)
        target = sys.modules[target]
    owner, value = None, target
    attribute = ""
    for attribute in path.split("."):
        owner = value
        value = _lookup(owner, attribute)
    return owner, attribute, value


def _lookup(owner: Any, attribute: str) -> Any:
    if isinstance(owner, type):
        for cls in owner.__mro__:
            if attribute in vars(cls):
                return vars(cls)[attribute]
    return getattr(owner, attribute)
