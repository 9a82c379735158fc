"""The ``sys.meta_path`` finder: decides *whether* a module is rewritten.

Invariants:
- Only the project's own source files are rewritten: files under the project
  root that the analyser discovered (not excluded, not in a virtual
  environment, site-packages or the standard library), and never autodurable.
- The finder only changes the loader of a spec the normal path finder found:
  the module's name, file, package and ``__spec__`` stay what they would be.
- A module that does not parse is compiled by the normal loader, so importing
  it raises exactly the error it raises without the hook. So is a module whose
  plan changes nothing (it then uses Python's own bytecode cache).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from types import CodeType, ModuleType
from typing import Any

from .. import _wiring
from .._analysis._discover import import_name
from ._cache import ProjectState, code_key, collector_paused, read_code, write_code


class DurableLoader(importlib.machinery.SourceFileLoader):
    """Loads a project module with the durability plan applied."""

    def __init__(self, fullname: str, path: str, state: ProjectState, script: bool = False):
        super().__init__(fullname, path)
        self.state = state
        self.script = script

    def get_code(self, fullname: str) -> CodeType | None:
        """The module's rewritten code, from the cache when it is current."""
        path = self.get_filename(fullname)
        return durable_code(self.state, path, self.script) or super().get_code(fullname)


def durable_code(
    state: ProjectState, path: str, script: bool, source: bytes | None = None
) -> CodeType | None:
    """Rewritten code for `path`, or None when it is not to be rewritten or does not parse.

    The source is read only when the cache misses (`source`, if given, is it).
    """
    planned = state.plan_digest(path)
    if planned is None or not (planned[1] or script):
        return None  # not analysed, or nothing to change: plain Python's loader and cache
    try:
        stat = os.stat(path)
    except OSError:
        return None  # the normal loader reports it
    key = code_key(stat.st_mtime_ns, stat.st_size, planned[0], script)
    cache = state.code_path(path)
    cached = read_code(cache, key)
    if cached is not None:
        return cached
    module_plan = state.module_plan(path)
    if module_plan is None:
        return None
    from ._rewrite import rewrite  # only when the cache misses: keeps warm starts light

    if source is None:
        try:
            with open(path, "rb") as fh:
                source = fh.read()
        except OSError:
            return None
    with collector_paused():
        tree = state.take_tree(path, source)
        if tree is None:
            try:
                import ast  # only for a module the cache cannot answer for

                tree = ast.parse(source, filename=path)
            except SyntaxError:
                return None  # let the normal loader raise the very same error
        code = compile(rewrite(tree, module_plan, script=script), path, "exec", dont_inherit=True)
    write_code(cache, key, code)
    return code


class DurableFinder:
    """Finds the project's modules and gives them a `DurableLoader`.

    (A finder by protocol, not an ``importlib.abc.MetaPathFinder``: that module
    imports ``importlib.resources``, 6 ms of every process under the launcher.)
    """

    def __init__(self, state: ProjectState) -> None:
        self.state = state
        self.on_first_module: Callable[[], None] | None = None
        # The answers of `autodurable._wiring` before `install` set this project's.
        self.wiring: tuple[Any, Any] | None = None
        self._paths = {str(path) for path in state.modules.values()}
        # Top-level names of the project's modules, as imported (from a src layout's
        # src/, a scripts folder...): anything else is not ours, and answering None
        # at once spares every other import a second path search. Which file a name
        # is depends on sys.path: the file found is ours if its path is (`owns`).
        self._tops = {import_name(name).partition(".")[0] for name in state.modules}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec with our loader for project modules; None (not ours) otherwise."""
        if fullname.partition(".")[0] not in self._tops:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.origin is None:
            return None
        if not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        if not self.owns(spec.origin):
            return None
        spec.loader = DurableLoader(fullname, spec.origin, self.state)
        if self.on_first_module is not None:
            first, self.on_first_module = self.on_first_module, None
            first()
        return spec

    def owns(self, filename: str) -> bool:
        """Whether `filename` is one of the project's modules."""
        if filename in self._paths:
            return True
        try:  # reached through a symlink or a relative sys.path entry
            return os.path.realpath(filename) in self._paths
        except OSError:
            return False


def install(
    state: ProjectState, on_first_module: Callable[[], None] | None = None
) -> DurableFinder:
    """Put a finder for `state`'s project first on ``sys.meta_path``.

    `on_first_module` is called once, when the first project module is found
    (before it is loaded): work that only a process importing the project's
    code needs waits until then.
    """
    finder = DurableFinder(state)
    finder.on_first_module = on_first_module
    # Limits on APIs ask which APIs a step calls: the plan made here answers (until
    # `uninstall` puts the previous answers back).
    finder.wiring = (_wiring.step_apis, _wiring.unmatched_limit_keys)
    _answer_from_plan(state)
    sys.meta_path.insert(0, finder)
    return finder


def _answer_from_plan(state: ProjectState) -> None:
    """Set `autodurable._wiring`'s answers (which APIs a step calls, which limit keys
    match none) from `state`'s plan; the analyser is imported only when a limited
    step first asks."""
    found: list[Any] = []

    def resolver() -> Any:
        if not found:
            from .._analysis._apis import PlanApis

            found.append(PlanApis(lambda: state.plan))
        return found[0]

    _wiring.step_apis = lambda module, qualname, name: resolver()(module, qualname, name)
    _wiring.unmatched_limit_keys = lambda keys: resolver().unmatched(keys)


def uninstall(finder: DurableFinder) -> None:
    """Remove a finder installed by `install`."""
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    if finder.wiring is not None:
        _wiring.step_apis, _wiring.unmatched_limit_keys = finder.wiring
        finder.wiring = None
