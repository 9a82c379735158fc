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

import _imp
import importlib.machinery
import importlib.util
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
                if os.path.isfile(path):
                    return _load_extension(folder, path)
    except (ImportError, OSError):  # pragma: no cover - a broken install: the package says why
        return None
    return None  # pragma: no cover - a build of wrapt without its extension


def _load_extension(folder: str, path: str) -> ModuleType | None:
    # wrapt 2.5 and later: the extension takes an exception class from
    # ``wrapt.exceptions`` (a module that imports nothing), through an import that
    # imports the package first. So that one is loaded first, alone, and a
    # placeholder of the package stands in ``sys.modules`` while the extension
    # loads, under the global import lock: no other thread imports meanwhile, and
    # the placeholder is gone before anyone else can see it.
    _imp.acquire_lock()
    try:
        if "wrapt" in sys.modules:  # imported meanwhile by another thread
            return sys.modules.get("wrapt._wrappers")
        placeholder = ModuleType("wrapt")
        placeholder.__path__ = [folder]
        sys.modules["wrapt"] = placeholder
        try:
            exceptions = os.path.join(folder, "exceptions.py")
            if os.path.isfile(exceptions) and "wrapt.exceptions" not in sys.modules:
                _load("wrapt.exceptions", importlib.machinery.SourceFileLoader, exceptions)
            module = _load("wrapt._wrappers", importlib.machinery.ExtensionFileLoader, path)
        finally:
            if sys.modules.get("wrapt") is placeholder:
                del sys.modules["wrapt"]
    finally:
        _imp.release_lock()
    # The package, if the program imports it later, takes these modules from
    # sys.modules; its attributes naming them are set then, as an import would.
    from ._post_import import when_imported

    when_imported("wrapt", _name_submodules)
    return module


def _load(name: str, kind: Any, path: str) -> ModuleType:
    loader = kind(name, path)
    spec = importlib.machinery.ModuleSpec(name, loader, origin=path)
    spec.has_location = True
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _name_submodules(package: ModuleType) -> None:
    for name in ("exceptions", "_wrappers"):
        module = sys.modules.get(f"wrapt.{name}")
        if module is not None and not hasattr(package, name):
            setattr(package, name, module)


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
