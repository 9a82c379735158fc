"""Analysing the modules an edit changed, over what the last analysis of the whole found.

An edit usually changes what a module does inside, not what the rest of the
project sees of it: its classes, the types its functions take and return, what
its call sites pass to other modules' functions, and which of its functions are
steps or workflows. `reanalyse` analyses the changed modules again over the index
the last analysis of the whole project left (`encode_index` keeps it), and gives their
new plans when all of that is unchanged; every other module's plan then stays
what it was.

Invariants:
- A result only when the changed modules, analysed again, leave the project's
  index exactly as it was (every class, attribute, parameter and return type,
  table and module value), pass the same types to the other modules' functions,
  and make the same functions steps or workflows. Anything else gives None, and
  the caller analyses the whole project: never a plan that mixes two analyses'
  views of a module.
- Before the changed modules are analysed again, everything they recorded is
  taken out of the index: what is keyed by their references, and what they
  recorded under other modules' keys (`ProjectIndex.foreign`). So a fact the
  edit removed cannot survive in the index unnoticed.
- One difference from a fresh analysis remains possible: a type that reaches a
  changed module only through itself (its only origin removed by the edit, and
  a cycle of the project's calls bringing the old type back). A fresh analysis
  (an emptied cache) finds the cycle untyped.
- The state is encoded with `marshal`, plain values only: decoding it imports
  and runs nothing. A state that does not decode gives None.
"""

from __future__ import annotations

import ast
import marshal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from ._catalogue import default_catalogue
from ._django import MANAGER
from ._plan import ModulePlan
from ._project import Analysed, analyse_modules, sources_of, totals
from ._scope import ProjectIndex
from ._types import Flows

__all__ = ["Reanalysed", "Recorded", "encode_index", "reanalyse"]

_VERSION = 1
_INDEX_FIELDS = tuple(f.name for f in fields(ProjectIndex) if f.name != "syntax")
# The index's collections keyed by references ("@module:name..."): a module's own.
_KEYED = (
    "classes", "instance_attrs", "class_attrs", "foreign_keys", "functions", "bases",
    "signatures", "binding", "params", "returns", "properties", "module_values", "tables",
    "sequences", "registrars",
)  # fmt: skip


@dataclass
class Recorded:
    """What the last analysis found besides the index: what each module's call sites
    pass (`_types.Flows`), the steps and workflows, and each module's statistics."""

    flows: Flows
    durable: dict[str, str]
    statistics: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, analysed: Analysed) -> Recorded:
        """What `analysed` found."""
        return cls(analysed.flows, analysed.durable, analysed.statistics)


@dataclass
class Reanalysed:
    """The changed modules' new plans, the project's new statistics, and what to
    analyse the next edit from (with the same index)."""

    modules: dict[str, ModulePlan]
    statistics: dict[str, int]
    recorded: Recorded


def encode_index(analysed: Analysed) -> bytes:
    """The index `reanalyse` starts from, after an analysis of the whole project."""
    index = {name: getattr(analysed.index, name) for name in _INDEX_FIELDS}
    return marshal.dumps((_VERSION, index))


def reanalyse(
    index_state: bytes,
    recorded: Recorded,
    trees: dict[str, tuple[str, ast.Module]],
    texts: Mapping[str, str | bytes] | None = None,
    *,
    io: Iterable[str] = (),
    roles: dict[str, str] | None = None,
) -> Reanalysed | None:
    """The plans of the modules in `trees` (``{module: (path, tree)}``, the ones an
    edit changed) analysed again over the index and records of the last analysis,
    or None when the edit changed what other modules see of them (see the module's
    docstring)."""
    index = _decoded(index_state)
    changed = set(trees)
    if index is None or not changed <= index.modules:
        return None  # no usable index, or a new module: its place is not known
    prefixes = tuple(f"@{module}:" for module in changed)
    touched = _touched(index, changed, prefixes)
    before = _copy(_values(index, prefixes, touched))
    _take_out(index, changed, prefixes)
    outside = {m: found for m, found in recorded.flows.items() if m not in changed}
    known = {ref: role for ref, role in recorded.durable.items() if not ref.startswith(prefixes)}
    catalogue = default_catalogue().with_io(tuple(io))
    analysed = analyse_modules(sources_of(trees, texts), index, catalogue, roles, known, outside)
    if _touched(index, changed, prefixes) != touched:
        return None  # records under other modules' keys, not made before
    if _values(index, prefixes, touched) != before:
        return None
    for module in changed:
        new, old = analysed.flows.get(module, {}), recorded.flows.get(module, {})
        if _into_others(new, prefixes) != _into_others(old, prefixes):
            return None
    if _own(analysed.durable, prefixes) != _own(recorded.durable, prefixes):
        return None
    flows = {**recorded.flows, **analysed.flows}
    statistics = {**recorded.statistics, **analysed.statistics}
    kept = Recorded(flows, analysed.durable, statistics)
    return Reanalysed(analysed.modules, totals(statistics), kept)


def _decoded(state: bytes) -> ProjectIndex | None:
    try:
        version, index = marshal.loads(state)
        return ProjectIndex(**index) if version == _VERSION else None
    except (ValueError, EOFError, TypeError):
        return None


def _touched(
    index: ProjectIndex, changed: set[str], prefixes: tuple[str, ...]
) -> set[tuple[str, str]]:
    """The keys of other modules the `changed` ones recorded under (kind, key)."""
    return {
        (kind, key)
        for module in changed
        for kind, key, _ in index.foreign.get(module, [])
        if not key.startswith(prefixes)
    }


def _values(
    index: ProjectIndex, prefixes: tuple[str, ...], touched: set[tuple[str, str]]
) -> dict[str, object]:
    """Everything of `index` an analysis of the changed modules can write: what is
    keyed by their references, what they recorded under other keys, and what is
    not keyed by module."""
    found: dict[str, object] = {}
    for name in _KEYED:
        collection = getattr(index, name)
        if isinstance(collection, set):
            found[name] = {key for key in collection if key.startswith(prefixes)}
        else:
            found[name] = {k: v for k, v in collection.items() if k.startswith(prefixes)}
    for kind, key in touched:
        if kind == "related":
            found[f"class_attrs {key}"] = index.class_attrs.get(key)
            found[f"instance_attrs {key}"] = index.instance_attrs.get(key)
        else:  # in the order the modules come, which a module analysed again does not keep
            found[f"tables {key}"] = set(index.tables.get(key, []))
    for name in ("foreign_key_names", "local", "roots", "foreign"):
        found[name] = getattr(index, name)
    return found


def _copy(values: dict[str, object]) -> object:
    """A deep copy of plain values (a round trip through `marshal`, the fastest)."""
    return marshal.loads(marshal.dumps(values))


def _take_out(index: ProjectIndex, changed: set[str], prefixes: tuple[str, ...]) -> None:
    """Everything the `changed` modules recorded into `index` (see the invariants)."""
    for name in _KEYED:
        collection = getattr(index, name)
        for key in [key for key in collection if key.startswith(prefixes)]:
            if isinstance(collection, set):
                collection.discard(key)
            else:
                del collection[key]
    for module in changed:
        for kind, key, value in index.foreign.pop(module, []):
            if key.startswith(prefixes):
                continue  # gone with the changed modules' own keys
            if kind == "related":
                index.class_attrs.get(key, {}).pop(value, None)
                index.instance_attrs.get(key, {}).pop(value, None)
            elif kind == "held" and value in index.tables.get(key, []):
                index.tables[key].remove(value)
    for recorded in index.foreign.values():  # others' records under changed keys
        for kind, key, value in recorded:
            if not key.startswith(prefixes):
                continue
            if kind == "related":
                index.class_attrs.setdefault(key, {}).setdefault(value, MANAGER)
                index.instance_attrs.setdefault(key, {}).setdefault(value, MANAGER)
            elif kind == "held":
                index.add_table(key, [value], False)
    # Recorded with the foreign keys, always together (`_django.record_field`).
    index.foreign_key_names = {key.rpartition(".")[2] for key in index.foreign_keys}
    for module in changed:
        index.roots.pop(module, None)
    for names in index.local.values():
        for name in [name for name, module in names.items() if module in changed]:
            del names[name]


def _into_others(flows: dict[str, dict[str, set[str]]], prefixes: tuple[str, ...]) -> object:
    """What a module's call sites pass to the functions of modules not changed."""
    return {ref: by_param for ref, by_param in flows.items() if not ref.startswith(prefixes)}


def _own(durable: dict[str, str], prefixes: tuple[str, ...]) -> dict[str, str]:
    return {ref: role for ref, role in durable.items() if ref.startswith(prefixes)}
