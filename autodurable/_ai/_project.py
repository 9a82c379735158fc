"""The project a file belongs to, read once and analysed as often as a rewrite needs.

Invariants:
- The same modules and settings as the import hook and the codemod: the
  project root is the nearest folder with a pyproject.toml (`project_root`),
  modules are what `discover` finds there minus autodurable itself, and the
  ``io``, ``roles`` and ``exclude`` of ``[tool.autodurable]`` apply.
- Reads files and writes nothing. Candidate texts of a rewrite live in memory
  (`Project.texts`) and are analysed in place of the files.
- ``[tool.autodurable.ai]`` is this package's table: it is taken out before the
  rest of ``[tool.autodurable]`` is validated, and handed back unvalidated.
- A module is analysed with the project modules it imports (transitively),
  not the whole project: roles only flow from callees to callers, so its plan
  is the same, and large projects stay fast.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._analysis import ModulePlan, ProjectPlan, analyse_sources
from .._analysis._discover import import_name, import_root, read_project_sources
from .._core._config import Settings, load_settings
from .._project import project_root


@dataclass
class Project:
    """A project's modules, their current texts and its settings."""

    root: Path
    settings: Settings
    ai: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)  # module (discovery key) -> path
    texts: dict[str, str] = field(default_factory=dict)  # module -> text (candidates too)
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why
    _imports: dict[str, set[str]] = field(default_factory=dict)
    _resolves: _Resolver | None = None

    def _resolver(self) -> _Resolver:
        """Import names -> modules, as the analyser resolves them (its own root first)."""
        if self._resolves is None:
            local: dict[str, dict[str, str]] = {}
            for module, path in self.paths.items():
                root = import_root(module, path)
                if import_name(module) != module and root is not None:  # see _discover
                    local.setdefault(root, {}).setdefault(import_name(module), module)
            self._resolves = _Resolver(set(self.texts), local)
        return self._resolves

    def module_of(self, path: str | os.PathLike[str]) -> str | None:
        """The module name of the file at `path`, or None if it is not one of the project's."""
        target = os.path.realpath(path)
        for module, known in self.paths.items():
            if os.path.realpath(known) == target:
                return module
        return None

    def set_text(self, module: str, text: str) -> None:
        """Replace a module's text (in memory only)."""
        self.texts[module] = text
        self._imports.pop(module, None)

    def analyse(
        self,
        module: str,
        *,
        texts: Mapping[str, str] | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> ProjectPlan:
        """Analyse `module` with the modules it imports; `texts` replace current ones."""
        current = {**self.texts, **(texts or {})}
        wanted = self._closure(module, current)
        sources = {name: (self.paths[name], current[name]) for name in wanted}
        all_roles = {**self.settings.roles, **(roles or {})}
        return analyse_sources(sources, io=self.settings.io, roles=all_roles, root=str(self.root))

    def plan(
        self,
        module: str,
        *,
        text: str | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> tuple[ModulePlan | None, str | None]:
        """The plan of one module (with `text` in place of its own), or None and why not."""
        texts = {module: text} if text is not None else None
        project = self.analyse(module, texts=texts, roles=roles)
        found = project.modules.get(module)
        if found is None:
            reason = project.errors.get(self.paths[module], "could not be analysed")
            return None, reason
        return found, None

    def _closure(self, module: str, texts: Mapping[str, str]) -> set[str]:
        seen: set[str] = set()
        pending = [module]
        while pending:
            name = pending.pop()
            if name in seen or name not in texts:
                continue
            seen.add(name)
            cached = texts[name] == self.texts.get(name)
            found = self._imports.get(name) if cached else None
            if found is None:
                found = _imported(name, texts[name], self.paths[name], self._resolver())
                if cached:
                    self._imports[name] = found
            pending.extend(found - seen)
        return seen


def load_project(path: str | os.PathLike[str]) -> Project:
    """The project of the file or folder at `path`."""
    start = Path(path).resolve()
    root = project_root(start if start.is_dir() else start.parent)
    settings = load_settings(cwd=root)
    sources, unreadable = read_project_sources(root, settings.exclude)  # as the hook finds them
    project = Project(root, settings, dict(settings.ai), unreadable=unreadable)
    for name, (module_path, text) in sources.items():
        project.paths[name] = module_path
        project.texts[name] = text
    return project


@dataclass
class _Resolver:
    """Which project module an import name from a given import root is."""

    known: set[str]  # module keys
    local: dict[str, dict[str, str]]  # import root -> import name -> key (see _discover)

    def module(self, name: str, root: str | None) -> str | None:
        found = self.local.get(root, {}).get(name) if root is not None and self.local else None
        if found is None and name in self.known:
            found = name
        return found if found in self.known else None


def _imported(module: str, text: str, path: str, resolver: _Resolver) -> set[str]:
    """The project modules `module` imports (and their packages), by key."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    name = import_name(module)
    package = name if os.path.basename(path) == "__init__.py" else name.rpartition(".")[0]
    root = import_root(module, path) if resolver.local else None
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                keep = len(parts) - (node.level - 1)
                if keep < 0:
                    continue
                base = ".".join([*parts[:keep], *([base] if base else [])])
            names = [base] + [
                f"{base}.{alias.name}" if base else alias.name for alias in node.names
            ]
        for imported in names:
            parts = imported.split(".")
            for n in range(1, len(parts) + 1):  # a module imports its packages too
                candidate = resolver.module(".".join(parts[:n]), root)
                if candidate is not None:
                    found.add(candidate)
    return found
