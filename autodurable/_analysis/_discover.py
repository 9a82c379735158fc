"""Which files make up a project, their module names, and the analyser's version.

Kept apart from the analyser so that a warm start of the import hook (every
module's rewritten code cached) imports neither the analyser nor pydantic.

Invariants: discovery reads directory listings only; it skips hidden folders,
caches, virtual environments (a folder holding ``pyvenv.cfg``), site-packages
and the paths matching the exclude patterns.

A module's name is the one Python imports it as, relative to its *import
root*, the folder that would be on ``sys.path`` for it:
- the project root, and a folder named ``src`` that is not a package (a src
  layout: below it, folders without ``__init__.py`` are namespace packages);
- any other folder without ``__init__.py`` that holds Python files or a
  pyproject.toml / setup.cfg (``scripts/``, ``examples/x/``, ``tests/``
  without ``__init__.py``: their files import each other by plain name),
  unless it sits in a package (then it is a namespace subpackage of it).
  A folder without ``__init__.py`` and without Python files is a namespace
  package (``ns/pkg/__init__.py`` is ``ns.pkg``).
Two files with the same name (two ``conftest.py`` in different roots, say):
the one under the best-ranked import root keeps the name (``src/``, then the
project root, then the shallower, then by path; in one folder a package
before a module, as Python chooses); the others are known by a key naming
their import root, ``"<root>/<name>"`` (``"examples/b/helper"``), from which
`import_name` gives the name back. Names never depend on the exclude patterns.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path

ANALYSER_VERSION = "13"  # bump when the analysis or the rewrite changes what they produce
_SKIP_DIRS = frozenset(
    {"__pycache__", "site-packages", "dist-packages", "node_modules", "build", "dist", ".git"}
)


def import_name(key: str) -> str:
    """The name Python imports the module of a discovery key as (see the module docstring)."""
    return key.rpartition("/")[2]


def import_root(key: str, path: str | os.PathLike[str]) -> str | None:
    """The folder from which the module of `key`, in the file at `path`, is imported;
    None for a module never imported by name (beside a package of its name).

    Path arithmetic only: `path` less one folder per dot of the import name (and
    one for a package's ``__init__.py``).
    """
    name = import_name(key)
    folder, filename = os.path.split(os.path.abspath(path))
    package = filename == "__init__.py"
    if name.rpartition(".")[2] != (os.path.basename(folder) if package else filename[:-3]):
        return None
    for _ in range(name.count(".") + package):
        folder = os.path.dirname(folder)
    return folder


def discover(root: Path, exclude: Iterable[str] = ()) -> dict[str, Path]:
    """Module key -> path of every Python module under `root`, folder by folder.

    The key is the module's import name, or for a file whose name another file
    takes, ``"<import root>/<name>"`` (see the module docstring).
    """
    patterns = tuple(exclude)
    # folder -> (its modules' import root, their package's name parts)
    bases: dict[str, tuple[str, tuple[str, ...]]] = {}
    packages: set[str] = set()  # folders holding an __init__.py (the root excepted)
    found: list[tuple[str, tuple[object, ...], int, str, Path]] = []  # name, rank, n, root, path
    ranks: dict[str, tuple[object, ...]] = {}  # import root -> its rank
    top = str(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        import_root, package = bases[folder] = _base(folder, files, top, bases, packages)
        here = Path(folder)
        prefix = "" if folder == top else Path(os.path.relpath(folder, top)).as_posix() + "/"
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            if patterns and any(fnmatch.fnmatch(prefix + name, p) for p in patterns):
                continue
            parts = package if name == "__init__.py" else (*package, name[:-3])
            if parts and all(p.isidentifier() for p in parts):
                if import_root not in ranks:
                    ranks[import_root] = _rank(import_root, top)
                rank = (*ranks[import_root], name != "__init__.py")  # a package before a module
                found.append((".".join(parts), rank, len(found), import_root, here / name))
    return _keys(found, top)


def _base(
    folder: str,
    files: list[str],
    top: str,
    bases: dict[str, tuple[str, tuple[str, ...]]],
    packages: set[str],
) -> tuple[str, tuple[str, ...]]:
    """The import root of the modules in `folder`, and the name parts of their package."""
    if folder == top:
        return folder, ()
    parent, name = os.path.split(folder)
    parent_root, parent_parts = bases[parent]
    if "__init__.py" in files:
        packages.add(folder)
        return parent_root, (*parent_parts, name)
    in_package = parent in packages
    if name == "src" and not in_package:
        return folder, ()
    if not in_package and any(
        f.endswith(".py") or f in ("pyproject.toml", "setup.cfg") for f in files
    ):
        return folder, ()
    return parent_root, (*parent_parts, name)  # a namespace package


def _rank(import_root: str, top: str) -> tuple[object, ...]:
    """Which of two import roots keeps a name both hold: the smaller rank."""
    relative = os.path.relpath(import_root, top)
    tier = 0 if relative == "src" else 1 if relative == "." else 2
    depth = 0 if relative == "." else relative.count(os.sep) + 1
    return tier, depth, Path(relative).as_posix()


def _keys(found: list[tuple[str, tuple[object, ...], int, str, Path]], top: str) -> dict[str, Path]:
    """Keys for the modules found: the name, or for the ones outranked, their root and name."""
    keys = [""] * len(found)
    taken: set[str] = set()
    named: set[tuple[str, str]] = set()  # (import root, name) of the modules keyed so far
    for name, _, n, folder, path in sorted(found):  # by name, the best-ranked first
        key = name
        if (folder, name) in named:  # a module beside the package that shadows it
            key = Path(os.path.relpath(path, top)).as_posix()  # never imported by name
            key = key if "/" in key else f"./{key}"
        elif key in taken:
            key = f"{Path(os.path.relpath(folder, top)).as_posix()}/{name}"
        taken.add(key)
        named.add((folder, name))
        keys[n] = key
    return {keys[n]: path for _, _, n, _, path in found}


def project_modules(root: Path, exclude: Iterable[str] = ()) -> dict[str, Path]:
    """The modules of the project at `root`: what `discover` finds, minus autodurable
    itself, which is never analysed or rewritten as part of a project."""
    return {
        name: path
        for name, path in discover(root, exclude).items()
        if import_name(name).partition(".")[0] != "autodurable"
    }


def read_project_sources(
    root: Path, exclude: Iterable[str] = (), encoding: str = "utf-8"
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The project's modules read: (module key -> (path, text), path -> why unreadable).

    The one project loader of the analyser's users (explain, the codemods, the
    AI tools); `encoding` ``"utf-8-sig"`` drops a byte order mark (analysis
    only), ``"utf-8"`` keeps the text exactly as it is on disk (for rewriting).
    """
    sources: dict[str, tuple[str, str]] = {}
    unreadable: dict[str, str] = {}
    for name, path in project_modules(root, exclude).items():
        try:
            with open(path, "rb") as fh:
                sources[name] = (str(path), fh.read().decode(encoding))
        except (OSError, UnicodeDecodeError) as exc:
            unreadable[str(path)] = f"cannot be read as UTF-8: {exc}"
    return sources, unreadable
