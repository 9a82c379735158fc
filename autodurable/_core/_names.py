"""Qualified names of functions and classes, and their resolution.

Invariants:
- A qualified name is ``"module:qualname"``; `resolve(qualified_name(x)) is x`
  for every importable module-level function, class, method or nested class.
- Resolution only imports modules and reads attributes; it never calls
  anything it finds.
- `resolve_loaded`, used for names read from stored data, imports nothing
  (except modules named in its allow-list) and reads attributes statically:
  no module ``__getattr__``, property or metaclass hook runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Collection
from typing import Any

# Where autodurable's own code lives (with a trailing separator): frames and
# tracebacks from files under it are the runtime's, never the user's.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

_cache: dict[str, Any] = {}
# resolve_loaded: name -> (its module object, the object found in it)
_loaded: dict[str, tuple[Any, Any]] = {}


class NotLoaded(LookupError):
    """The module of a qualified name is not imported (and not allowed to be)."""

    def __init__(self, name: str, module: str) -> None:
        super().__init__(f"module {module!r} is not imported")
        self.name = name
        self.module = module


def qualified_name(obj: Any) -> str:
    """Return ``"module:qualname"`` for a function, method or class."""
    return f"{obj.__module__}:{obj.__qualname__}"


def is_importable(name: str) -> bool:
    """Whether a qualified name can be resolved in principle (not a local object)."""
    return "<locals>" not in name and "<lambda>" not in name and ":" in name


def resolve(name: str) -> Any:
    """Import the object named by a qualified name.

    Raises `LookupError` with a readable reason when it cannot be found.
    """
    found = _cache.get(name)
    if found is not None:
        return found
    module_name, sep, qualname = name.partition(":")
    if not sep or not qualname:
        raise LookupError(f"{name!r} is not a qualified name of the form 'module:qualname'")
    if not is_importable(name):
        raise LookupError(f"{name!r} is defined inside a function and cannot be imported")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import can fail in any way
        raise LookupError(f"module {module_name!r} cannot be imported: {exc!r}") from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError(f"{module_name!r} has no attribute {qualname!r}") from None
    _cache[name] = obj
    return obj


def resolve_loaded(name: str, allowed_modules: Collection[str] = ()) -> Any:
    """Find the object named by a qualified name among the modules already imported.

    Imports nothing, unless the module is one of `allowed_modules`; raises
    `NotLoaded` when the module is not imported, `LookupError` when the name
    cannot be found. Attributes are read statically (``inspect.getattr_static``),
    so nothing the lookup passes through runs.
    """
    if type(name) is not str:
        raise LookupError(f"{name!r} is not a qualified name of the form 'module:qualname'")
    module_name, sep, qualname = name.partition(":")
    found = _loaded.get(name)
    if found is not None and sys.modules.get(module_name) is found[0]:
        return found[1]
    if not sep or not module_name or not qualname or "" in qualname.split("."):
        raise LookupError(f"{name!r} is not a qualified name of the form 'module:qualname'")
    if not is_importable(name):
        raise LookupError(f"{name!r} is defined inside a function and cannot be found")
    module = sys.modules.get(module_name)
    if module is None:
        if module_name not in allowed_modules:
            raise NotLoaded(name, module_name)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # an import can fail in any way
            raise LookupError(f"module {module_name!r} cannot be imported: {exc!r}") from exc
    from inspect import getattr_static  # here: inspect costs a rewritten module's import 4 ms

    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr_static(obj, part)
        except AttributeError:
            raise LookupError(f"{module_name!r} has no attribute {qualname!r}") from None
    _loaded[name] = (module, obj)
    return obj
