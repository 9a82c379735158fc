"""Caches of the import hook: rewritten bytecode per module, and the project plan.

Invariants:
- Rewritten code lives next to the normal bytecode, in ``__pycache__``, under
  its own tag (``<module>.<python tag>.autodurable-<analyser version>.pyc``),
  so plain Python never loads it and we never load plain bytecode. When Python
  writes no bytecode (``PYTHONDONTWRITEBYTECODE``, ``-B``), or
  ``AUTODURABLE_CACHE_DIR`` names a folder, every cache lives in autodurable's
  own folder instead (`cache_folder`: by default in the user's cache, never in
  the project), by the module's path in the project: ``autodurable compile``
  builds it ahead of time, a read-only tree reads it.
- A cache entry is keyed on everything the rewrite depends on: the source
  (its modification time and size, as for Python's own cache), the Python
  magic number, the analyser version, the module's own plan
  (as a digest) and whether the module is the launched script. Only modules
  whose source or plan changed are rewritten again.
- An edit analyses only the modules it changed when that is enough
  (`_analysis._incremental`: what other modules see of them is unchanged);
  otherwise, and when a module was added or removed or does not parse, the
  whole project is analysed again.
- The plan and the plan digests are cached per project under its fingerprint
  (every project file's path, size and mtime, plus the configuration); a warm
  start reads only the small digests file, never the plan. When only
  modification times changed (a ``touch``, a checkout, a copy), the sources
  whose time changed are hashed and compared with the hashes the digests file
  keeps: the same sources keep the same plan, without an analysis.
- Writes are atomic (temporary file, then rename). Any failure to read or
  write a cache is silent: the module is rewritten again, never broken.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import marshal
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from .._analysis._discover import ANALYSER_VERSION, project_modules
from .._light import sha256
from . import _collector
from ._plans import write_atomic

if TYPE_CHECKING:
    import ast

    from .._analysis import ModulePlan, ProjectPlan
    from .._analysis._incremental import Reanalysed, Recorded

_MAGIC = b"ADUR" + importlib.util.MAGIC_NUMBER
_KEY_SIZE = 32
# The analysis hands its trees to the rewrite, which spares parsing each module
# twice; a tree takes about 50 times its source in memory, so only this much
# source is kept (the rest is parsed again when imported).
_KEEP_TREES_BYTES = 1 << 20


ENV_CACHE_DIR = "AUTODURABLE_CACHE_DIR"


def code_cache_path(source_path: str) -> str:
    """Where the rewritten bytecode of `source_path` is cached beside its source."""
    normal = importlib.util.cache_from_source(source_path)
    return normal[: -len(".pyc")] + f".autodurable-{ANALYSER_VERSION}.pyc"


def cache_folder(root: Path) -> Path | None:
    """autodurable's own cache folder for the project at `root`; None: beside the sources.

    ``AUTODURABLE_CACHE_DIR`` names it (relative to `root` unless absolute). Else,
    when Python writes no bytecode, it is a folder of the user's cache
    (``$XDG_CACHE_HOME``, by default ``~/.cache``: ``autodurable/<project>-<digest
    of its path>``): the user asked for nothing written beside the sources, and
    a start without any cache would analyse the whole project every time.
    """
    named = os.environ.get(ENV_CACHE_DIR)
    if named:
        return root / named
    if not sys.dont_write_bytecode:
        return None
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home folder: the temporary folder's
        import tempfile

        base = Path(tempfile.gettempdir()) / f"autodurable-{os.getuid()}"
    key = sha256(os.fsencode(root)).hexdigest()[:16]
    return base / "autodurable" / f"{root.name}-{key}"


def code_key(mtime_ns: int, size: int, plan_digest: str, script: bool) -> bytes:
    """The cache key of one module's rewritten code (`plan_digest`: of its own plan).

    The source is known by its modification time and size, as Python's own
    bytecode cache knows it (so a warm start reads no source file).
    """
    digest = sha256(f"{mtime_ns}|{size}|{plan_digest}|".encode())
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


def write_code(path: str, key: bytes, code: CodeType) -> None:
    """Cache rewritten code."""
    write_atomic(path, _MAGIC + key + marshal.dumps(code))


@contextlib.contextmanager
def collector_paused(freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while syntax trees are built and compiled.

    Trees are made of hundreds of thousands of small objects and hold no
    cycles; with the collector on, its collections keep walking all of them
    (with the project's trees alive, that doubled the time of a cold start).
    A cache miss ends the command's paused start-up (`_collector`) first.

    `freeze`, after an analysis: what it leaves alive (the plan, the trees kept for
    the rewrite, some 260,000 objects on a large project) goes to the permanent
    generation, so that the collections of the imports that follow do not walk it
    again and again (15% of a cold start of 887 modules). The analysis makes no
    reference cycles (a test checks it), so this keeps nothing the collector would
    free; reference counting still frees the trees as the rewrite consumes them.
    """
    _collector.resume()
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if freeze and _collector.ours():  # never in a process that is not the command's
            gc.freeze()
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
        self.cache_dir = cache_folder(self.root)
        self.io, self.roles, self.exclude = io, dict(roles or {}), exclude
        self.modules = {  # discovery key (the import name, see _discover) -> path
            name: path for name, path in project_modules(self.root, exclude).items()
        }
        self._by_path: dict[str, ModulePlan] | None = None
        self._edited: dict[str, ModulePlan] = {}  # path -> plan, of the modules an edit changed
        config = sha256(f"{ANALYSER_VERSION}|{sys.version}".encode())
        config.update(json.dumps([list(io), sorted(self.roles.items()), list(exclude)]).encode())
        self._config = config.hexdigest()
        self._stats: dict[str, tuple[int, int]] = {}  # module -> (size, mtime_ns)
        digest = sha256(self._config.encode())
        for module, path in sorted(self.modules.items()):
            try:
                stat = path.stat()
            except OSError:
                continue
            self._stats[module] = (stat.st_size, stat.st_mtime_ns)
            digest.update(f"{module}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        self.fingerprint = digest.hexdigest()
        # The fingerprint under which the cached plan was written: another one when
        # only modification times changed since (`_same_sources`).
        self._plan_fingerprint = self.fingerprint
        self._hashes: dict[str, str] = {}  # module -> sha256 of the source the analysis read
        self._plan: ProjectPlan | None = None
        self._digests: dict[str, tuple[str, bool]] | None = None  # path -> see plan_digest
        self._paths = {str(path) for path in self.modules.values()}
        self._by_real_path: dict[str, str] | None = None
        self._trees: dict[str, tuple[bytes, ast.Module]] = {}  # path -> (source, tree)
        self._kept_bytes = 0  # the sources of the trees kept so far
        self._previous: dict[str, Any] | None = None  # the digests file, once read

    def module_plan(self, path: str) -> ModulePlan | None:
        """The plan of the module in `path` (one dictionary lookup)."""
        discovered = self._discovered(path)
        if discovered in self._edited:
            return self._edited[discovered]
        if self._by_path is None:
            self._by_path = {module.path: module for module in self.plan.modules.values()}
        return self._by_path.get(discovered)

    def plan_digest(self, path: str) -> tuple[str, bool] | None:
        """The digest of the plan of the module in `path`, and whether the plan
        changes the module at all; None if the module is not planned (a module
        that does not parse: the normal loader reports it)."""
        return self.digests().get(self._discovered(path))

    def digests(self) -> dict[str, tuple[str, bool]]:
        """`plan_digest` of every planned module, by path: read from the cache, or
        worked out from the plan (analysing the project) and cached."""
        if self._digests is None:
            self._digests = self._cached_digests() or self._edited_digests()
        if self._digests is None:
            from ._rewrite import changes

            self._digests = {
                module.path: (
                    sha256(module.model_dump_json().encode()).hexdigest(),
                    changes(module),
                )
                for module in self.plan.modules.values()
            }
            self._write_digests(self._digests, self._plan_fingerprint)
        return self._digests

    def _write_digests(self, digests: dict[str, tuple[str, bool]], plan: str) -> None:
        """Cache the digests, with what `_same_sources` compares the next start with."""
        files = {
            module: [size, mtime, self._source_hash(module)]
            for module, (size, mtime) in self._stats.items()
        }
        payload = {
            "fingerprint": self.fingerprint,
            "plan": plan,
            "config": self._config,
            "files": files,
            "digests": digests,
        }
        write_atomic(str(self._cache_path("digests")), json.dumps(payload).encode())

    def _source_hash(self, module: str) -> str:
        """The sha256 of `module`'s source: known, or read once."""
        known = self._hashes.get(module)
        if known is None:
            try:
                known = sha256(self.modules[module].read_bytes()).hexdigest()
            except OSError:
                known = ""
            self._hashes[module] = known
        return known

    def _same_sources(self, data: dict[str, Any]) -> bool:
        """Whether the project cached in `data` had the same modules, configuration and
        sources as now, only other modification times (a ``touch``, a checkout, a copy).

        Only the sources whose time changed are read (the others' recorded hashes are
        kept, for the digests written next); a size that changed is a change.
        """
        files = data.get("files")
        if data.get("config") != self._config or not isinstance(files, dict):
            return False
        if files.keys() != self._stats.keys():
            return False
        for module, (size, mtime) in self._stats.items():
            recorded = files[module]
            if recorded[0] != size:
                return False
            if recorded[1] == mtime:
                self._hashes.setdefault(module, str(recorded[2]))
            elif recorded[2] != self._source_hash(module):
                return False
        return True

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

    @property
    def _index_path(self) -> Path:
        """Where the last whole analysis's index is kept (`_plans.write_index`)."""
        return self._cache_path("index", ".marshal")

    @property
    def _state_path(self) -> Path:
        """Where the analysis's records and sources are kept (`_plans.write_state`)."""
        return self._cache_path("analysis", ".marshal")

    def _cache_path(self, kind: str, suffix: str = ".json") -> Path:
        folder = self.cache_dir or self.root / "__pycache__"
        return folder / f"autodurable-{kind}-{ANALYSER_VERSION}{suffix}"

    def code_path(self, source_path: str) -> str:
        """Where the rewritten bytecode of the module in `source_path` is cached."""
        if self.cache_dir is None:
            return code_cache_path(source_path)
        relative = os.path.relpath(source_path, self.root)
        if relative.startswith(os.pardir):  # not under the root: named by its whole path
            relative = sha256(os.fsencode(source_path)).hexdigest()
        tag = sys.implementation.cache_tag
        return str(self.cache_dir / f"{relative}.{tag}.autodurable-{ANALYSER_VERSION}.pyc")

    def _previous_digests(self) -> dict[str, Any] | None:
        """The digests file as the last start left it (read once), or None."""
        if self._previous is None:
            try:
                found = json.loads(self._cache_path("digests").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            self._previous = found if isinstance(found, dict) else None
        return self._previous

    def _cached_digests(self) -> dict[str, tuple[str, bool]] | None:
        try:
            data = self._previous_digests()
            if data is None:
                return None
            items = data["digests"].items()
            digests = {path: (str(digest), bool(rewrites)) for path, (digest, rewrites) in items}
            if data.get("fingerprint") == self.fingerprint:
                self._plan_fingerprint = str(data.get("plan", self.fingerprint))
                return digests
            if not self._same_sources(data):
                return None
            # Only modification times changed: the plan holds, remembered under these times.
            self._plan_fingerprint = str(data["plan"])
            self._write_digests(digests, self._plan_fingerprint)
            return digests
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None

    @property
    def plan(self) -> ProjectPlan:
        """The project plan: from the cache if the project did not change, else analysed."""
        if self._plan is None:
            self._plan = self._cached_plan()
        if self._plan is None and self._digests is None:
            self._digests = self._edited_digests()  # only the edited modules analysed
            self._plan = self._cached_plan() if self._digests is not None else None
        if self._plan is None:
            self._plan = self._analyse()
        return self._plan

    def _cached_plan(self) -> ProjectPlan | None:
        from ._plans import read_plan

        return read_plan(self.plan_cache_path, self._plan_fingerprint)

    def _edited_digests(self) -> dict[str, tuple[str, bool]] | None:
        """The digests after an edit, when analysing only the modules it changed is
        enough (`_analysis._incremental`); None when the whole project must be."""
        from . import _plans
        from ._rewrite import changes

        try:
            data = self._previous_digests() or {}
            files, digests, plan = data["files"], data["digests"], str(data["plan"])
        except (KeyError, TypeError):
            return None
        found = _plans.read_state(self._state_path, self._config, plan)
        if found is None or found[1].keys() != self._stats.keys():
            return None  # a module added, removed, or one that did not parse
        index_name, sources, recorded = found
        index = _plans.read_index(self._index_path, index_name)
        if index is None:
            return None
        for module, (size, mtime) in self._stats.items():
            recorded_file = files.get(module)
            if isinstance(recorded_file, list) and recorded_file[:2] == [size, mtime]:
                self._hashes.setdefault(module, str(recorded_file[2]))
        changed = [m for m in self._stats if self._source_hash(m) != sources[m]]
        with collector_paused(freeze=True):
            edited = self._reanalyse(changed, index, recorded)
        if edited is None:
            return None
        written = _plans.replace_modules(
            self.plan_cache_path, plan, self.fingerprint, edited.modules, edited.statistics
        )
        if written is None:
            return None
        sources.update((module, self._hashes[module]) for module in changed)
        key = (self._config, self.fingerprint, index_name)
        _plans.write_state(self._state_path, key, sources, edited.recorded)
        self._edited = {new.path: new for new in edited.modules.values()}
        found_digests = {
            path: (str(digest), bool(rewrites)) for path, (digest, rewrites) in digests.items()
        }
        for name, new in edited.modules.items():
            found_digests[new.path] = (sha256(written[name].encode()).hexdigest(), changes(new))
        self._plan_fingerprint = self.fingerprint
        self._write_digests(found_digests, self.fingerprint)
        return found_digests

    def _reanalyse(self, changed: list[str], index: bytes, recorded: Recorded) -> Reanalysed | None:
        import ast

        from .._analysis._incremental import reanalyse

        trees: dict[str, tuple[str, ast.Module]] = {}
        texts: dict[str, bytes] = {}
        for module in changed:
            path = self.modules[module]
            try:
                texts[module] = path.read_bytes()
                trees[module] = (str(path), ast.parse(texts[module], filename=str(path)))
            except (OSError, SyntaxError, ValueError):
                return None
            if sha256(texts[module]).hexdigest() != self._hashes[module]:
                return None  # changed again meanwhile
            self._keep_tree(str(path), texts[module], trees[module][1])
        return reanalyse(index, recorded, trees, texts, io=self.io, roles=self.roles)

    def _analyse(self) -> ProjectPlan:
        with collector_paused(freeze=True):
            return self._analyse_now()

    def _analyse_now(self) -> ProjectPlan:
        import ast

        from .._analysis._incremental import Recorded, encode_index
        from .._analysis._project import analyse_whole
        from . import _plans

        trees: dict[str, tuple[str, ast.Module]] = {}
        texts: dict[str, bytes] = {}
        errors: dict[str, str] = {}
        for module, path in self.modules.items():
            try:
                source = path.read_bytes()
                tree = ast.parse(source, filename=str(path))
            except (OSError, SyntaxError, ValueError) as exc:
                # Left to the normal loader, which reports it on import; `explain` says so.
                errors[str(path)] = _unreadable(exc)
                continue
            trees[module], texts[module] = (str(path), tree), source
            self._hashes[module] = sha256(source).hexdigest()
            self._keep_tree(str(path), source, tree)
        plan, analysed = analyse_whole(
            trees, io=self.io, roles=self.roles, root=str(self.root), texts=texts
        )
        plan.errors.update(errors)
        _plans.write_plan(self.plan_cache_path, self.fingerprint, plan)
        if not errors:  # an edit is analysed alone only in a project that parses
            sources = {module: self._hashes[module] for module in trees}
            key = (self._config, self.fingerprint, self.fingerprint)  # the index's name
            _plans.write_index(self._index_path, key[2], encode_index(analysed))
            _plans.write_state(self._state_path, key, sources, Recorded.of(analysed))
        if self._plan_fingerprint != self.fingerprint and self._digests is not None:
            self._write_digests(self._digests, self.fingerprint)  # the plan's new name
        self._plan_fingerprint = self.fingerprint
        return plan

    def _keep_tree(self, path: str, source: bytes, tree: ast.Module) -> None:
        """Keep `tree` for the rewrite (`take_tree`) while the kept sources stay under
        `_KEEP_TREES_BYTES`."""
        if self._kept_bytes + len(source) <= _KEEP_TREES_BYTES:
            self._kept_bytes += len(source)
            self._trees[path] = (source, tree)

    def take_tree(self, path: str, source: bytes) -> ast.Module | None:
        """The tree the analysis parsed from `path`, if its source is still `source`.

        Handed over once: the rewrite changes it in place.
        """
        found = self._trees.pop(self._discovered(path), None)
        return found[1] if found is not None and found[0] == source else None


def _unreadable(exc: Exception) -> str:
    """Why a module could not be analysed, as `explain` lists it."""
    if isinstance(exc, SyntaxError):
        return f"does not parse: {exc.msg} (line {exc.lineno})"
    return f"cannot be read: {exc}"
