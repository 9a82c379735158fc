"""The static analyser, shared by the import hook, the codemod and ``explain``.

`analyse_project(root)` reads every module of a project (on the stdlib ``ast``)
and returns a `ProjectPlan`: for each function a role (step / workflow /
plain), a style, a reason, and the sites the rewrite records.

Invariants:
- Pure: reads source files, runs none of them, writes nothing.
- Importing this package, or its `_discover` module, loads nothing of the
  analysis: its names are loaded when first used. The import hook's warm start
  needs only the project's files (`_discover`), so it pays for no analyser.
- A module whose docstring contains ``autodurable: off`` is left alone, and its
  functions count as plain for everybody else.
- Files that do not parse are reported in the plan (``errors``) and skipped;
  they are never partially analysed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ANALYSER_VERSION",
    "OPT_OUT_MARKER",
    "FunctionPlan",
    "ModulePlan",
    "ProjectPlan",
    "Site",
    "analyse_project",
    "analyse_sources",
    "analyse_trees",
    "discover",
    "import_name",
    "read_project_sources",
]

if TYPE_CHECKING:
    from ._discover import ANALYSER_VERSION, discover, import_name, read_project_sources
    from ._facts import Site
    from ._plan import FunctionPlan, ModulePlan
    from ._project import (
        OPT_OUT_MARKER,
        ProjectPlan,
        analyse_project,
        analyse_sources,
        analyse_trees,
    )

# Each name and the module that defines it, imported on first use.
_HOMES = {
    "ANALYSER_VERSION": "_discover",
    "discover": "_discover",
    "import_name": "_discover",
    "read_project_sources": "_discover",
    "Site": "_facts",
    "FunctionPlan": "_plan",
    "ModulePlan": "_plan",
    "OPT_OUT_MARKER": "_project",
    "ProjectPlan": "_project",
    "analyse_project": "_project",
    "analyse_sources": "_project",
    "analyse_trees": "_project",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
