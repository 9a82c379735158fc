"""Functions run right after a module is imported: how autodurable patches libraries.

`when_imported(name, hook)` calls `hook(module)` at once when the module is
imported already, else right after its code has run the first time it is
imported. The sentinel, the HTTP boundaries, the concurrency patches and the
web frameworks' patches all go through it.

Invariants:
- One finder for the process, put on ``sys.meta_path`` when the first hook is
  registered for a module not imported yet. It answers None at once for any
  name without a hook (one dictionary lookup), so other imports pay nothing
  more; for a name with hooks it asks the other finders and chains the loader
  they found.
- The module is the one the normal finders find, its code runs unchanged, and
  it sees its own loader (``__loader__`` and ``__spec__.loader``), not ours.
- A hook runs once; hooks for one module run in the order they were registered,
  after the module's code and before the import statement returns. If the
  module's code raises, no hook runs and they wait for the next import.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Loader as _LoaderBase
else:  # importlib.abc imports importlib.resources: a loader by protocol
    _LoaderBase = object

Hook = Callable[[ModuleType], None]

_hooks: dict[str, list[Hook]] = {}
_lock = threading.RLock()
_finder: _Finder | None = None


def when_imported(name: str, hook: Hook) -> None:
    """Call `hook(module)` now if module `name` is imported, else right after its import."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
            _install()
            return
    hook(module)


def _install() -> None:
    global _finder
    if _finder is None or _finder not in sys.meta_path:
        _finder = _finder or _Finder()
        sys.meta_path.insert(0, _finder)


class _Finder:
    """Finds nothing itself: chains the loader of the modules that have hooks.

    (A finder and a loader by protocol: ``importlib.abc`` imports
    ``importlib.resources``, which no process should pay for this.)
    """

    def __init__(self) -> None:
        self._searching = threading.local()  # names this thread is asking the others about

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _hooks:
            return None
        searching: set[str] = self._searching.__dict__.setdefault("names", set())
        if fullname in searching:
            return None
        searching.add(fullname)
        try:
            spec = _find_elsewhere(self, fullname, path, target)
        finally:
            searching.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ChainedLoader(spec.loader, fullname)
        return spec


def _find_elsewhere(
    me: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is me or find is None:
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


class _ChainedLoader(_LoaderBase):
    """The module's own loader, followed by its hooks."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        # The module sees its own loader, as without us (resources, reload, pickling).
        module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        with _lock:
            hooks = _hooks.pop(self._name, [])
        for hook in hooks:
            hook(sys.modules.get(self._name, module))

    def __getattr__(self, name: str) -> Any:
        # Anything else asked of the loader while the spec holds us (is_package...).
        return getattr(self._loader, name)
