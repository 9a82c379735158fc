"""Where the codemods get their plan: the analyser's, for the file's whole project.

Invariants:
- One plan, the hook's: every project is analysed by the same call the import
  hook makes (`analyse_sources` over the modules `discover` finds under the
  project root, minus autodurable itself, with the ``io`` and ``roles`` of
  ``[tool.autodurable]``). Nothing here looks at code on its own.
- The project root is the nearest folder at or above a path that holds a
  pyproject.toml, as `autodurable run` and `autodurable explain` find it; the
  configuration is that file's ``[tool.autodurable]`` table.
- Reads files and writes nothing, not even a plan cache: a codemod may write
  only the files it was given.
- A plan is used only for the source it was made from: a file whose text
  differs from what was analysed is analysed again (once), never patched
  with positions that belong to other text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from autodurable._analysis import (
    ModulePlan,
    ProjectPlan,
    analyse_sources,
    read_project_sources,
)
from autodurable._core._config import load_settings
from autodurable._project import project_root

__all__ = ["Project", "load_project", "project_for", "read_source", "standalone_plan"]


def read_source(path: str | os.PathLike[str]) -> str:
    """A file's text as the codemods see it: UTF-8, line endings kept as they are."""
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8")


@dataclass
class Project:
    """A project's plan, and the text each of its modules was analysed from."""

    root: Path
    plan: ProjectPlan
    sources: dict[str, str] = field(default_factory=dict)  # real path -> analysed text
    modules: dict[str, ModulePlan] = field(default_factory=dict)  # real path -> plan
    errors: dict[str, str] = field(default_factory=dict)  # real path -> why no plan

    def lookup(self, path: str | os.PathLike[str]) -> tuple[ModulePlan | None, str]:
        """The plan of the module in `path`, or None and why there is none."""
        key = os.path.realpath(path)
        found = self.modules.get(key)
        if found is not None:
            return found, ""
        if key in self.errors:
            return None, self.errors[key]
        return None, (
            f"not a module of the project at {self.root} (excluded by "
            "[tool.autodurable] exclude, in a skipped folder, or not importable by name)"
        )


def load_project(root: Path) -> Project:
    """Analyse the project at `root` as the import hook does."""
    root = root.resolve()
    settings = load_settings(cwd=root)
    given, unreadable = read_project_sources(root, settings.exclude)  # as the hook finds them
    project = Project(root, ProjectPlan(root=str(root)))
    for path, reason in unreadable.items():
        project.errors[os.path.realpath(path)] = reason
    for path, text in given.values():
        project.sources[os.path.realpath(path)] = text
    project.plan = analyse_sources(
        given, io=settings.io, roles=dict(settings.roles), root=str(root)
    )
    for module in project.plan.modules.values():
        project.modules[os.path.realpath(module.path)] = module
    for failed, reason in project.plan.errors.items():
        project.errors[os.path.realpath(failed)] = reason
    return project


_projects: dict[Path, Project] = {}  # per process: libcst's workers each load once


def project_for(path: str | os.PathLike[str], source: str | None = None) -> Project:
    """The (cached) project of the file at `path`.

    With `source`, the text about to be transformed: if the cached analysis
    saw other text for that file, the project is analysed again.
    """
    start = Path(path).resolve().parent
    root = project_root(start)
    project = _projects.get(root)
    stale = (
        project is not None
        and source is not None
        and project.sources.get(os.path.realpath(path), source) != source
    )
    if project is None or stale:
        project = _projects[root] = load_project(root)
    return project


def standalone_plan(source: str, module: str = "module") -> ModulePlan | None:
    """The plan of one module analysed on its own (no project around it)."""
    plan = analyse_sources({module: (f"{module.replace('.', '/')}.py", source)})
    return plan.modules.get(module)
