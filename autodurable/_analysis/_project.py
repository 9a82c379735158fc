"""The analysis of a project: every module's plan (see the package's docstring).

`analyse_project(root)` reads every module of a project (on the stdlib ``ast``)
and returns a `ProjectPlan`: for each function a role (step / workflow /
plain), a style, a reason, and the sites the rewrite records.

Invariants:
- Pure: reads source files, runs none of them, writes nothing.
- A module whose docstring contains ``autodurable: off`` is left alone, and its
  functions count as plain for everybody else.
- Files that do not parse are reported in the plan (``errors``) and skipped;
  they are never partially analysed.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from ._catalogue import Catalogue, default_catalogue
from ._discover import import_name, import_root, read_project_sources
from ._facts import FactCollector, Facts, FunctionNode, in_transaction, returns_handle
from ._plan import PLAIN, FunctionPlan, ModulePlan, Unit, decide
from ._registries import find_registries
from ._scope import (
    ModuleSymbols,
    ProjectIndex,
    Scope,
    function_locals,
    instance_of,
    module_symbols,
)
from ._types import Definition, Flows, infer_types
from ._walk import own_statements, same_scope

__all__ = ["OPT_OUT_MARKER", "ProjectPlan", "analyse_project", "analyse_sources", "analyse_trees"]

OPT_OUT_MARKER = "autodurable: off"


class ProjectPlan(BaseModel):
    """The plan of a whole project."""

    root: str
    modules: dict[str, ModulePlan] = {}  # by discovery key: the import name (see _discover)
    errors: dict[str, str] = {}  # path -> why it was skipped
    # Method calls in the project's functions, and those on objects it could not type.
    statistics: dict[str, int] = {}

    def function(self, key: str) -> FunctionPlan | None:
        """The plan of ``"module:qualname"``."""
        module, _, qualname = key.partition(":")
        found = self.modules.get(module)
        return found.get(qualname) if found else None

    def for_path(self, path: str | os.PathLike[str]) -> ModulePlan | None:
        """The plan of the module in `path`."""
        target = os.path.realpath(path)
        for plan in self.modules.values():
            if os.path.realpath(plan.path) == target:
                return plan
        return None


@dataclass
class _Source:
    module: str
    path: str
    tree: ast.Module
    is_package: bool
    opted_out: bool
    symbols: ModuleSymbols | None = None
    may_walrus: bool = True  # False when the text has no ":="
    may_yield: bool = True  # False when the text has no "yield"
    definitions: list[tuple[str, FunctionNode | ast.ClassDef]] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    top_level: Unit | None = None


def analyse_project(
    root: str | os.PathLike[str],
    *,
    io: Iterable[str] = (),
    roles: dict[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> ProjectPlan:
    """Analyse every module under `root`."""
    # utf-8-sig: a byte order mark is valid Python source, not part of it.
    sources, errors = read_project_sources(Path(root), exclude, encoding="utf-8-sig")
    plan = analyse_sources(sources, io=io, roles=roles, root=str(root))
    plan.errors.update(errors)
    return plan


def analyse_sources(
    sources: dict[str, tuple[str, str]],
    *,
    io: Iterable[str] = (),
    roles: dict[str, str] | None = None,
    root: str = ".",
) -> ProjectPlan:
    """Analyse modules given as ``{module: (path, source)}`` (what tests use)."""
    trees: dict[str, tuple[str, ast.Module]] = {}
    errors: dict[str, str] = {}
    for module, (path, text) in sources.items():
        try:
            trees[module] = (path, ast.parse(text, filename=path))
        except SyntaxError as exc:
            errors[path] = f"does not parse: {exc.msg} (line {exc.lineno})"
    texts = {module: text for module, (_, text) in sources.items()}
    plan = analyse_trees(trees, io=io, roles=roles, root=root, texts=texts)
    plan.errors.update(errors)
    return plan


def analyse_trees(
    trees: dict[str, tuple[str, ast.Module]],
    *,
    io: Iterable[str] = (),
    roles: dict[str, str] | None = None,
    root: str = ".",
    texts: Mapping[str, str | bytes] | None = None,
) -> ProjectPlan:
    """Analyse parsed modules, ``{module: (path, tree)}``; the trees are not modified.

    The import hook parses each module once and hands the same tree to the
    rewrite afterwards. `texts`, the modules' sources when the caller has them,
    only saves time: searches for what a text rules out (``:=``, ``yield``) are
    skipped.
    """
    return analyse_whole(trees, io=io, roles=roles, root=root, texts=texts)[0]


def analyse_whole(
    trees: dict[str, tuple[str, ast.Module]],
    *,
    io: Iterable[str] = (),
    roles: dict[str, str] | None = None,
    root: str = ".",
    texts: Mapping[str, str | bytes] | None = None,
) -> tuple[ProjectPlan, Analysed]:
    """`analyse_trees`, with what analysing some of the modules again starts from."""
    catalogue = default_catalogue().with_io(tuple(io))
    parsed = sources_of(trees, texts)
    analysed = analyse_modules(parsed, ProjectIndex(modules=set(parsed)), catalogue, roles)
    plan = ProjectPlan(root=root, modules=analysed.modules)
    plan.statistics = totals(analysed.statistics)
    return plan, analysed


def totals(statistics: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """A plan's statistics (`ProjectPlan.statistics`) from each module's."""
    return {
        "method_calls": sum(calls for calls, _ in statistics.values()),
        "untyped_method_calls": sum(untyped for _, untyped in statistics.values()),
    }


def sources_of(
    trees: dict[str, tuple[str, ast.Module]], texts: Mapping[str, str | bytes] | None
) -> dict[str, _Source]:
    """The modules to analyse, from their trees (see `analyse_trees`)."""
    parsed: dict[str, _Source] = {}
    for module, (path, tree) in trees.items():
        docstring = ast.get_docstring(tree) or ""
        is_package = os.path.basename(path) == "__init__.py"
        source = _Source(module, path, tree, is_package, OPT_OUT_MARKER in docstring)
        text = texts.get(module) if texts is not None else None
        if isinstance(text, bytes):
            source.may_walrus = b":=" in text
            source.may_yield = b"yield" in text
        elif text is not None:
            source.may_walrus = ":=" in text
            source.may_yield = "yield" in text
        parsed[module] = source
    return parsed


@dataclass
class Analysed:
    """What analysing some modules gives: their plans, and what analysing some of them
    again needs (`_incremental`)."""

    modules: dict[str, ModulePlan]
    index: ProjectIndex
    flows: Flows  # what each analysed module's call sites pass (see `_types.Flows`)
    durable: dict[str, str]  # every step and workflow: reference -> role
    statistics: dict[str, tuple[int, int]]  # module -> (method calls, untyped ones)


def analyse_modules(
    parsed: dict[str, _Source],
    index: ProjectIndex,
    catalogue: Catalogue,
    roles: dict[str, str] | None,
    durable: dict[str, str] | None = None,
    outside: Flows | None = None,
) -> Analysed:
    """Analyse `parsed` into `index`: the whole project, or (given the `durable`
    functions and the `outside` flows of the other modules) some of its modules
    over the index of the whole."""
    _add_modules(parsed, index)
    # Module names and registries are resolved before any type is known (in an
    # analysis of the whole); analysed again, a module sees the same.
    early = index if outside is None else _before_types(index)
    for source in parsed.values():
        source.symbols = module_symbols(
            source.tree, source.module, source.is_package, early, catalogue
        )
        source.symbols.has_walrus = source.may_walrus
    find_registries(
        ((s.module, s.tree, s.symbols, s.definitions) for s in parsed.values() if s.symbols),
        early,
        catalogue,
    )
    for source in parsed.values():
        assert source.symbols is not None
        for name, value in source.symbols.names.items():
            ref = f"@{source.module}:{name}"
            if value is not None and value != ref:
                index.module_values[ref] = value
    final_locals, flows = _infer_types(parsed, index, catalogue, outside)
    forced = dict(roles or {})
    units: list[Unit] = []
    statistics: dict[str, tuple[int, int]] = {}
    for source in parsed.values():
        _collect_units(source, index, catalogue, final_locals)
        for unit in source.units:
            if source.opted_out:
                forced[f"{unit.module}:{unit.qualname}"] = PLAIN
        units += source.units
        facts = [unit.facts for unit in source.units]
        statistics[source.module] = (
            sum(f.method_calls for f in facts),
            sum(f.untyped_calls for f in facts),
        )
    durable = {} if durable is None else durable
    decided = decide(units, forced, durable)
    modules: dict[str, ModulePlan] = {}
    for source in parsed.values():
        module_plan = ModulePlan(module=source.module, path=source.path, opted_out=source.opted_out)
        module_plan.functions = [decided[unit.key] for unit in source.units]
        for unit, function in zip(source.units, module_plan.functions, strict=True):
            function.apis = called_apis(unit.facts)
        if source.top_level is not None and not source.opted_out:
            module_plan.top_level = decide([source.top_level], {})[source.top_level.key]
            module_plan.top_level = _top_level_plan(module_plan.top_level, source.top_level)
        modules[source.module] = module_plan
    return Analysed(modules, index, flows, durable, statistics)


def called_apis(facts: Facts) -> list[str]:
    """What a function calls, for limits on APIs: its I/O (catalogue names) and the
    project functions it calls (``"@module:qualname"``), each once, in order."""
    io = [call.name for call in facts.io]
    project = [call.name for call in facts.calls if call.name.startswith("@")]
    return list(dict.fromkeys(io + project))


def _add_modules(parsed: dict[str, _Source], index: ProjectIndex) -> None:
    """Add the modules' import roots, definitions and classes to `index`."""
    if any(import_name(module) != module for module in index.modules):
        # Some modules are known by their import root (another module holds their
        # name): imports resolve among the importing module's root first.
        for source in parsed.values():
            name = import_name(source.module)
            root = import_root(source.module, source.path)
            if root is None:
                continue  # not imported by name
            index.roots[source.module] = root
            if name != source.module:
                index.local.setdefault(root, {}).setdefault(name, source.module)
    for source in parsed.values():
        source.definitions = _definitions(source.tree.body, "")
        for qualname, node in source.definitions:
            if isinstance(node, ast.ClassDef):
                index.classes.add(f"@{source.module}:{qualname}")


def _before_types(index: ProjectIndex) -> ProjectIndex:
    """What an analysis of the whole project knows when it resolves module names: the
    modules, their classes and tables (shared with `index`: what is added to them
    is added to it)."""
    return ProjectIndex(
        modules=index.modules,
        classes=index.classes,
        local=index.local,
        roots=index.roots,
        tables=index.tables,
        sequences=index.sequences,
        registrars=index.registrars,
        foreign=index.foreign,
    )


def _definitions(
    body: list[ast.stmt], prefix: str
) -> list[tuple[str, FunctionNode | ast.ClassDef]]:
    """(qualname, node) of every function and class, nested ones included."""
    out: list[tuple[str, FunctionNode | ast.ClassDef]] = []
    for node in body:
        if isinstance(node, FunctionNode | ast.ClassDef):
            qualname = f"{prefix}{node.name}"
            out.append((qualname, node))
            inner = f"{qualname}.<locals>." if isinstance(node, FunctionNode) else f"{qualname}."
            out += _definitions(node.body, inner)
        elif isinstance(node, ast.If | ast.Try | ast.TryStar | ast.With | ast.AsyncWith):
            for block in ("body", "orelse", "finalbody"):
                out += _definitions(getattr(node, block, []), prefix)
            for handler in getattr(node, "handlers", []):
                out += _definitions(handler.body, prefix)
    return out


def _infer_types(
    parsed: dict[str, _Source], index: ProjectIndex, catalogue: Catalogue, outside: Flows | None
) -> tuple[dict[tuple[str, int], dict[str, str | None]], Flows]:
    """Bases, members and types of the project's classes and functions (`_types`);
    the functions' final local names when the passes could tell them."""
    definitions: list[Definition] = []
    tops: list[tuple[Scope, ast.Module]] = []
    for source in parsed.values():
        assert source.symbols is not None
        scope = Scope(source.symbols, index, catalogue)
        tops.append((Scope(source.symbols, index, catalogue, {}), source.tree))
        classes = {q: n for q, n in source.definitions if isinstance(n, ast.ClassDef)}
        for qualname, node in source.definitions:
            ref = f"@{source.module}:{qualname}"
            if isinstance(node, ast.ClassDef):
                bases = [scope.resolve(base) for base in node.bases]
                index.bases[ref] = [b for b in bases if b is not None and b != "object"]
                continue
            index.functions.add(ref)
            if any(_decorator_name(d) == "property" for d in node.decorator_list):
                index.properties.add(ref)
            owner_class = qualname.rpartition(".")[0]
            self_ref = _self_ref(source.module, owner_class, classes, node)
            definitions.append(Definition(ref, node, scope, self_ref))
    return infer_types(definitions, index, tops, outside)


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else None


def _collect_units(
    source: _Source,
    index: ProjectIndex,
    catalogue: Catalogue,
    final_locals: dict[tuple[str, int], dict[str, str | None]],
) -> None:
    assert source.symbols is not None
    scope = Scope(source.symbols, index, catalogue)
    classes = {q: n for q, n in source.definitions if isinstance(n, ast.ClassDef)}
    for qualname, node in source.definitions:
        if not isinstance(node, FunctionNode):
            continue
        owner_class, _, _ = qualname.rpartition(".")
        self_ref = _self_ref(source.module, owner_class, classes, node)
        ref = f"@{source.module}:{qualname}"
        names = final_locals.get((ref, node.lineno))
        if names is None:
            names = function_locals(scope, node, self_ref, ref)
        local_scope = scope.child(names)
        is_async = isinstance(node, ast.AsyncFunctionDef)
        facts = FactCollector(local_scope, qualname, is_async).collect(node.body)
        in_transaction(local_scope, node, facts)
        own = own_statements(node.body)
        facts.returns_handle = returns_handle(local_scope, own)
        source.units.append(
            Unit(
                module=source.module,
                qualname=qualname,
                line=node.lineno,
                facts=facts,
                is_async=isinstance(node, ast.AsyncFunctionDef),
                is_generator=source.may_yield and _yields(node),
                manual=_manual_role(scope, node),
                mutates_state=_mutates_state(node, own),
            )
        )
    top_scope = Scope(source.symbols, index, catalogue, {})
    top_facts = FactCollector(top_scope, "<module>", False)
    facts = top_facts.collect(source.tree.body)
    source.top_level = Unit(source.module, "<module>", 1, facts, False, False)


def _self_ref(
    module: str, owner_class: str, classes: dict[str, ast.ClassDef], node: FunctionNode
) -> str | None:
    if owner_class not in classes:
        return None
    names = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
    if "staticmethod" in names:
        return None
    ref = f"@{module}:{owner_class}"
    return ref if "classmethod" in names else instance_of(ref)


def _manual_role(scope: Scope, node: FunctionNode) -> str | None:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = scope.resolve(target)
        if name in ("autodurable.step", "autodurable.workflow", "autodurable.watched"):
            return name.rpartition(".")[2]
    return None


def _yields(node: FunctionNode) -> bool:
    return any(isinstance(inner, ast.Yield | ast.YieldFrom) for inner in same_scope(node.body))


def _mutates_state(node: FunctionNode, own: list[ast.stmt]) -> str | None:
    """Why recording only this function's result would lose a change it makes, or None.

    `own` are the function's statements (`_walk.own_statements`).
    """
    params = node.args.posonlyargs + node.args.args
    first = params[0].arg if params else None
    for inner in own:
        if isinstance(inner, ast.Global | ast.Nonlocal):
            return f"{type(inner).__name__.lower()} {', '.join(inner.names)}"
        targets: list[ast.expr] = []
        if isinstance(inner, ast.Assign):
            targets = inner.targets
        elif isinstance(inner, ast.AugAssign | ast.AnnAssign):
            targets = [inner.target]
        for target in targets:
            base = target
            while isinstance(base, ast.Attribute | ast.Subscript):
                base = base.value
            if base is not target and isinstance(base, ast.Name) and base.id == first:
                return f"assigns {ast.unparse(target)} at line {inner.lineno}"
    return None


def _top_level_plan(plan: FunctionPlan, unit: Unit) -> FunctionPlan:
    """The module level of a launched script: always workflow code, inline where possible."""
    facts = unit.facts
    reason = "the launched script's top level"
    notes = list(plan.notes)
    if facts.direct:
        reason += ": each I/O expression is recorded on its own"
    if facts.inline_problem:
        notes.append(f"{facts.inline_problem}: that statement runs unrecorded")
    update = {"role": "workflow", "style": "inline", "sites": facts.sites, "reason": reason}
    return plan.model_copy(update={**update, "notes": notes})
