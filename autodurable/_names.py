"""Qualified names of functions and classes, and their resolution.

Invariants:
- A qualified name is ``"module:qualname"``; `resolve(qualified_name(x)) is x`
  for every importable module-level function, class, method or nested class.
- Resolution only imports modules and reads attributes; it never calls
  anything it finds.
"""

from __future__ import annotations

import importlib
from typing import Any

_cache: dict[str, Any] = {}


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
