"""Caches of the import hook: rewritten bytecode per module, and the project plan.

Invariants:
- Rewritten code lives next to the normal bytecode, in ``__pycache__``, under
  its own tag (``<module>.<python tag>.autodurable-<analyser version>.pyc``),
  so plain Python never loads it and we never load plain bytecode.
- A cache entry is keyed on everything the rewrite depends on: the source
  (its modification time and size, as for Python's own cache), the Python
  magic number, the analyser version, the module's own plan
  (as a digest) and whether the module is the launched script. Editing one
  file re-analyses the project, but only modules whose source or plan changed
  are rewritten again.
- The plan and the plan digests are cached per project under its fingerprint
  (every project file's path, size and mtime, plus the configuration); a warm
  start reads only the small digests file, never the plan.
- Writes are atomic (temporary file, then rename). Any failure to read or
  write a cache is silent: the module is rewritten again, never broken.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.util
import json
import marshal
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING

from .._analysis._discover import ANALYSER_VERSION, project_modules

if TYPE_CHECKING:
    import ast

    from .._analysis import ModulePlan, ProjectPlan

_MAGIC = b"ADUR" + importlib.util.MAGIC_NUMBER
_KEY_SIZE = 32
# The analysis hands its trees to the rewrite, which spares parsing each module
# twice; a tree takes about 50 times its source in memory, so only this much
# source is kept (the rest is parsed again when imported).
_KEEP_TREES_BYTES = 1 << 20


def code_cache_path(source_path: str) -> str:
    """Where the rewritten bytecode of `source_path` is cached."""
    normal = importlib.util.cache_from_source(source_path)
    return normal[: -len(".pyc")] + f".autodurable-{ANALYSER_VERSION}.pyc"


def code_key(mtime_ns: int, size: int, plan_digest: str, script: bool) -> bytes:
    """The cache key of one module's rewritten code (`plan_digest`: of its own plan).

    The source is known by its modification time and size, as Python's own
    bytecode cache knows it (so a warm start reads no source file).
    """
    digest = hashlib.sha256(f"{mtime_ns}|{size}|{plan_digest}|".encode())
    digest.update(b"script" if script else b"module")
    return digest.digest()


def read_code(path: str, key: bytes) -> CodeType | None:
    """The cached code at `path` if its key matches, else None."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    header = len(_MAGIC) + _KEY_SIZE
    if data[: len(_MAGIC)] != _MAGIC or data[len(_MAGIC) : header] != key:
        return None
    try:
        code = marshal.loads(memoryview(data)[header:])  # no copy of the code's bytes
    except (ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def write_atomic(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically; give up silently on any error."""
    if sys.dont_write_bytecode:
        return
    import tempfile  # here: a warm start writes nothing and need not import it

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".autodurable-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:  # read-only folder, full disk...: not fatal
        import logging

        logging.getLogger("autodurable").debug(
            "autodurable: cannot write the cache %s: %s", path, exc
        )


def write_code(path: str, key: bytes, code: CodeType) -> None:
    """Cache rewritten code."""
    write_atomic(path, _MAGIC + key + marshal.dumps(code))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while syntax trees are built and compiled.

    Trees are made of hundreds of thousands of small objects and hold no
    cycles; with the collector on, its collections keep walking all of them
    (with the project's trees alive, that doubled the time of a cold start).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class ProjectState:
    """The project seen by the hook: its fingerprint now, and its plan on demand."""

    def __init__(
        self,
        root: Path,
        io: tuple[str, ...] = (),
        roles: Mapping[str, str] | None = None,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.root = root.resolve()
        self.io, self.roles, self.exclude = io, dict(roles or {}), exclude
        self.modules = {  # discovery key (the import name, see _discover) -> path
            name: path for name, path in project_modules(self.root, exclude).items()
        }
        self._by_path: dict[str, ModulePlan] | None = None
        digest = hashlib.sha256(f"{ANALYSER_VERSION}|{sys.version}".encode())
        digest.update(json.dumps([list(io), sorted(self.roles.items()), list(exclude)]).encode())
        for module, path in sorted(self.modules.items()):
            try:
                stat = path.stat()
            except OSError:
                continue
            digest.update(f"{module}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        self.fingerprint = digest.hexdigest()
        self._plan: ProjectPlan | None = None
        self._digests: dict[str, tuple[str, bool]] | None = None  # path -> see plan_digest
        self._paths = {str(path) for path in self.modules.values()}
        self._by_real_path: dict[str, str] | None = None
        self._trees: dict[str, tuple[bytes, ast.Module]] = {}  # path -> (source, tree)

    def module_plan(self, path: str) -> ModulePlan | None:
        """The plan of the module in `path` (one dictionary lookup)."""
        if self._by_path is None:
            self._by_path = {module.path: module for module in self.plan.modules.values()}
        return self._by_path.get(self._discovered(path))

    def plan_digest(self, path: str) -> tuple[str, bool] | None:
        """The digest of the plan of the module in `path`, and whether the plan
        changes the module at all; None if the module is not planned (a module
        that does not parse: the normal loader reports it)."""
        if self._digests is None:
            self._digests = self._cached_digests()
        if self._digests is None:
            from ._rewrite import changes

            self._digests = {
                module.path: (
                    hashlib.sha256(module.model_dump_json().encode()).hexdigest(),
                    changes(module),
                )
                for module in self.plan.modules.values()
            }
            payload = {"fingerprint": self.fingerprint, "digests": self._digests}
            write_atomic(str(self._cache_path("digests")), json.dumps(payload).encode())
        return self._digests.get(self._discovered(path))

    def _discovered(self, path: str) -> str:
        """The path under which `path`'s module was discovered (the key of every map here).

        The finder hands over the very path discovered; another spelling (a
        symlink, a relative ``sys.path`` entry) is mapped through real paths.
        """
        if path in self._paths:
            return path
        if self._by_real_path is None:
            self._by_real_path = {os.path.realpath(p): p for p in self._paths}
        return self._by_real_path.get(os.path.realpath(path), path)

    @property
    def plan_cache_path(self) -> Path:
        """Where the project plan is cached."""
        return self._cache_path("plan")

    def _cache_path(self, kind: str) -> Path:
        return self.root / "__pycache__" / f"autodurable-{kind}-{ANALYSER_VERSION}.json"

    def _cached_digests(self) -> dict[str, tuple[str, bool]] | None:
        try:
            data = json.loads(self._cache_path("digests").read_text(encoding="utf-8"))
            if data.get("fingerprint") != self.fingerprint:
                return None
            digests = data["digests"].items()
            return {path: (str(digest), bool(rewrites)) for path, (digest, rewrites) in digests}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @property
    def plan(self) -> ProjectPlan:
        """The project plan: from the cache if the project did not change, else analysed."""
        if self._plan is None:
            self._plan = self._cached_plan() or self._analyse()
        return self._plan

    def _cached_plan(self) -> ProjectPlan | None:
        from .._analysis import ProjectPlan

        try:
            data = json.loads(self.plan_cache_path.read_text(encoding="utf-8"))
            if data.get("fingerprint") != self.fingerprint:
                return None
            return ProjectPlan.model_validate(data["plan"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _analyse(self) -> ProjectPlan:
        with collector_paused():
            return self._analyse_now()

    def _analyse_now(self) -> ProjectPlan:
        import ast

        from .._analysis import analyse_trees

        trees: dict[str, tuple[str, ast.Module]] = {}
        texts: dict[str, bytes] = {}
        kept = 0
        for module, path in self.modules.items():
            try:
                source = path.read_bytes()
                tree = ast.parse(source, filename=str(path))
            except (OSError, SyntaxError, ValueError):
                continue  # the normal loader reports it on import
            trees[module], texts[module] = (str(path), tree), source
            if kept + len(source) <= _KEEP_TREES_BYTES:
                kept += len(source)
                self._trees[str(path)] = (source, tree)
        plan = analyse_trees(trees, io=self.io, roles=self.roles, root=str(self.root), texts=texts)
        # Serialised by pydantic straight to JSON: several times faster than a dump to
        # Python objects and then json.dumps, on a plan as big as the project.
        fingerprint = json.dumps(self.fingerprint)
        payload = f'{{"fingerprint": {fingerprint}, "plan": {plan.model_dump_json()}}}'
        write_atomic(str(self.plan_cache_path), payload.encode())
        return plan

    def take_tree(self, path: str, source: bytes) -> ast.Module | None:
        """The tree the analysis parsed from `path`, if its source is still `source`.

        Handed over once: the rewrite changes it in place.
        """
        found = self._trees.pop(self._discovered(path), None)
        return found[1] if found is not None and found[0] == source else None
