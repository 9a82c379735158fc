"""``autodurable compile``: build the hook's caches ahead of time.

For a container image: ``RUN autodurable compile app.py`` after copying the
project, and every ``autodurable run app.py`` in the image starts warm, with
``PYTHONDONTWRITEBYTECODE`` set or the tree read-only, as ``python -m
compileall`` does for plain bytecode.

Invariants:
- Writes only caches, and only where a run reads them: the project's plan, the
  rewritten code of each module the plan changes (and of each script named, as
  a launched script), beside the sources or in autodurable's own cache folder
  (`_cache.cache_folder`); and the plain bytecode of the other modules in
  ``__pycache__``, as ``compileall`` writes it. Never a source file.
- A module that does not compile is reported, not fatal: the others are built.
- Results are values (`Compiled`); printing is the command line's.
"""

from __future__ import annotations

import importlib.util
import py_compile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._project import project_root
from ._cache import ProjectState
from ._finder import durable_code


@dataclass
class Compiled:
    """What `compile_project` built for one project."""

    root: Path
    cache: Path | None  # autodurable's own cache folder, or None: beside the sources
    rewritten: list[Path] = field(default_factory=list)  # modules and scripts the hook changes
    plain: list[Path] = field(default_factory=list)  # modules compiled as Python compiles them
    failed: dict[Path, str] = field(default_factory=dict)  # path -> why


def projects_of(targets: list[Path]) -> dict[Path, list[Path]]:
    """The project root of each target, with the scripts among the targets."""
    found: dict[Path, list[Path]] = {}
    for target in targets or [Path.cwd()]:
        target = target.resolve()
        if target.is_file():
            found.setdefault(project_root(target.parent), []).append(target)
        else:
            found.setdefault(project_root(target), [])
    return found


def compile_project(
    root: Path,
    scripts: list[Path],
    io: tuple[str, ...] = (),
    roles: Mapping[str, str] | None = None,
    exclude: tuple[str, ...] = (),
) -> Compiled:
    """Analyse the project at `root` and write every cache a run of it reads."""
    state = ProjectState(root, io, roles, exclude)
    result = Compiled(state.root, state.cache_dir)
    state.digests()  # analyses, and writes the plan and its digests
    for path in sorted(state.modules.values()):
        _compile_one(state, path, False, result)
    for script in scripts:
        _compile_one(state, script, True, result)
    return result


def _compile_one(state: ProjectState, path: Path, script: bool, result: Compiled) -> None:
    try:
        code = durable_code(state, str(path), script)
    except (OSError, ValueError) as exc:  # a file gone, a source compile() refuses
        result.failed[path] = str(exc)
        return
    if code is not None:
        result.rewritten.append(path)
        return
    if script:
        return  # a script the plan does not change runs as plain Python compiles it
    try:
        py_compile.compile(
            str(path), cfile=importlib.util.cache_from_source(str(path)), doraise=True
        )
    except (py_compile.PyCompileError, OSError) as exc:
        result.failed[path] = str(exc).strip().splitlines()[-1]
        return
    result.plain.append(path)
