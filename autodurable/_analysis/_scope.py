"""Name resolution: what a name or an attribute chain refers to, as a dotted string.

References are strings:
- ``"requests.get"``: something outside the project, by import path;
- ``"@pkg.mod:Class.method"``: a definition of the project (``"@pkg.mod"`` is the
  module itself);
- a trailing ``"()"`` marks an *instance* of what precedes it
  (``"requests.Session()"``), so ``s.get`` on it resolves to ``"requests.Session.get"``;
- ``"@table:<ref>"``: one of the functions the dispatch table ``<ref>`` holds.

Invariants:
- Resolution is syntactic and flow-insensitive; it only reads the AST and the
  `ProjectIndex` (which `_types` fills with parameter, return and attribute
  types). What it cannot tell is None, never a guess: an untyped parameter
  named ``requests`` shadows the module, a local function named ``open``
  shadows the builtin.
- ``self.x`` resolves through the assignments ``self.x = ...`` made in any
  method of the class, its class-level attributes and fields, and its bases
  (`ProjectIndex.member`); a base outside the project answers for what the
  project does not define (``django.db.models.Model.save``).
- Modules are known by their discovery key (`autodurable._analysis._discover`): the
  name they are imported as, or for one whose name another module holds,
  ``"<import root>/<name>"``. An import resolves first among the modules of
  the importing module's own import root, then among the names held.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._annotations import alias_type, annotation_type, item_type
from ._catalogue import Catalogue
from ._discover import import_name
from ._django import manager_class, record_field
from ._walk import child_nodes, statements, walk

T = TypeVar("T")
_BUILTINS = frozenset(dir(builtins))
INSTANCE = "()"
_ITEM = "[]"  # ``name[]``: what the items of the dict cache ``name`` are
TABLE = "@table:"  # ``@table:<ref>``: one of the functions the table <ref> holds
_CONTAINERS = frozenset({"dict()", "list()", "tuple()"})  # annotations of them resolve to these
# Attributes a task queue's decorator gives a function (Celery, Dramatiq, Huey):
# calling them sends a message.
_TASK_METHODS = frozenset({"delay", "apply_async", "s", "si", "signature", "send", "schedule"})


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def instance_of(ref: str) -> str:
    """The reference of an instance of `ref`."""
    return ref if ref.endswith(INSTANCE) else ref + INSTANCE


@dataclass
class ProjectIndex:
    """What the project defines: its modules and classes, and attributes of instances."""

    modules: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)  # "@mod:Class"
    instance_attrs: dict[str, dict[str, str]] = field(default_factory=dict)  # "@mod:C" -> attrs
    class_attrs: dict[str, dict[str, str]] = field(default_factory=dict)  # set in the class body
    # Foreign keys of the project's models ("@mod:Model.field"), and their names: reading
    # one loads a row (`_django`).
    foreign_keys: set[str] = field(default_factory=set)
    foreign_key_names: set[str] = field(default_factory=set)
    # import root -> import name -> key, of the modules whose name another module holds
    local: dict[str, dict[str, str]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # module key -> its import root
    # Filled by `_types.infer_types` (keys are function references "@mod:qualname"):
    functions: set[str] = field(default_factory=set)  # every function and method
    bases: dict[str, list[str]] = field(default_factory=dict)  # "@mod:C" -> resolved bases
    signatures: dict[str, list[str]] = field(default_factory=dict)  # positional+kw names
    binding: dict[str, str | None] = field(default_factory=dict)  # what the first param is
    params: dict[str, dict[str, str]] = field(default_factory=dict)  # param -> instance ref
    returns: dict[str, str] = field(default_factory=dict)  # what a call returns
    properties: set[str] = field(default_factory=set)  # "@mod:C.name" of @property getters
    module_values: dict[str, str] = field(default_factory=dict)  # "@mod:name" -> its value
    # Dispatch tables (``HANDLERS = {"a": on_a, ...}``, ``self.tools = [...]``): the
    # table's reference -> the references of what it holds.
    tables: dict[str, list[str]] = field(default_factory=dict)
    # The tables that are sequences (lists, tuples): iterating one yields what it holds.
    sequences: set[str] = field(default_factory=set)
    # Registering decorators (`_registries`): "@mod:tool" -> the table it fills.
    registrars: dict[str, str] = field(default_factory=dict)
    # What a module's code records under another module's keys, so that analysing
    # that module alone again (`_incremental`) can take it back first:
    # module -> [("related", model, name)] for a relation's other side,
    # [("held", table, ref)] for a function a registering decorator adds to a table.
    foreign: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # What the passes over function bodies find by syntax alone, worked out once per
    # body and reused by each round (see `by_syntax`).
    syntax: dict[tuple[str, int], list[Any]] = field(default_factory=dict, repr=False)

    def add_table(self, ref: str, held: list[str], sequence: bool) -> None:
        """Record `ref` as a dispatch table holding `held` (more, if it is one already;
        each round of the type passes records the same again: kept once)."""
        self.tables[ref] = list(dict.fromkeys([*self.tables.get(ref, []), *held]))
        if sequence:
            self.sequences.add(ref)

    def record_foreign(self, module: str, kind: str, key: str, value: str) -> None:
        """Remember that `module`'s code recorded `value` under `key`, of another module
        (see `foreign`)."""
        if key[1:].partition(":")[0] != module:
            recorded = self.foreign.setdefault(module, [])
            if (kind, key, value) not in recorded:  # each round of the passes records it again
                recorded.append((kind, key, value))

    def by_syntax(
        self, kind: str, body: list[Any], find: Callable[[list[Any]], list[T]]
    ) -> list[T]:
        """``find(body)``, worked out once per `body` and `kind` of search.

        Keyed by the body's ``id``: the trees live as long as the analysis that
        owns this index, so no other body takes its ``id`` meanwhile.
        """
        key = (kind, id(body))
        found = self.syntax.get(key)
        if found is None:
            found = self.syntax[key] = find(body)
        return found

    def project_ref(self, dotted: str, root: str | None = None) -> str:
        """Map an import path into the project: ``"pkg.mod.f"`` -> ``"@pkg.mod:f"``.

        `root`: the import root of the importing module, whose modules come first.
        """
        parts = dotted.split(".")
        local = self.local.get(root) if root is not None and self.local else None
        for cut in range(len(parts), 0, -1):
            module = ".".join(parts[:cut])
            key = local.get(module) if local else None
            if key is None and module in self.modules:
                key = module
            if key is not None:
                rest = ".".join(parts[cut:])
                return f"@{key}:{rest}" if rest else f"@{key}"
        return dotted

    def member(self, cls: str, attr: str, instance: bool = False) -> str | None:
        """What `attr` of the project class `cls` (or of an instance) refers to, by its bases.

        The first class of a depth-first walk of the bases that defines it wins
        (Python's order for the single and simple multiple inheritance of real
        code). A base outside the project answers for everything it is asked
        (``django.db.models.Model.save``); None when nothing defines it.
        """
        seen: set[str] = set()
        stack = [cls]
        while stack:
            current = stack.pop(0)
            if current in seen:
                continue
            seen.add(current)
            if not current.startswith("@"):
                return f"{current}.{attr}"
            known = (self.instance_attrs if instance else self.class_attrs).get(current)
            if known and attr in known:
                return known[attr]
            ref = f"{current}.{attr}"
            if ref in self.functions:
                if instance and ref in self.properties:
                    return self.returns.get(ref, ref)
                return ref
            stack = self.bases.get(current, []) + stack
        return None

    def submodule(self, key: str, attr: str) -> str | None:
        """The key of the submodule `attr` of the package `key`, if the project has it."""
        name = f"{import_name(key)}.{attr}"
        local = self.local.get(self.roots.get(key, "")) if self.local else None
        found = local.get(name) if local else None
        return found or (name if name in self.modules else None)


@dataclass
class ModuleSymbols:
    """The global names of one module and what they refer to."""

    module: str
    package: str  # by import name
    names: dict[str, str | None] = field(default_factory=dict)
    root: str | None = None  # the module's import root
    has_walrus: bool = True  # False only when the module surely has no ``:=``


def absolute_module(module: str, package: str, level: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside `package`."""
    if level == 0:
        return module
    base = package.split(".") if package else []
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def bind_import(
    node: ast.Import | ast.ImportFrom,
    package: str,
    index: ProjectIndex,
    into: dict[str, str | None],
    root: str | None = None,
) -> None:
    """Record the names an import statement binds (`root`: the importing module's)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                into[alias.asname] = index.project_ref(alias.name, root)
            else:
                top = alias.name.partition(".")[0]
                into[top] = index.project_ref(top, root)
        return
    source = absolute_module(node.module or "", package, node.level)
    for alias in node.names:
        if alias.name == "*":
            continue
        into[alias.asname or alias.name] = index.project_ref(f"{source}.{alias.name}", root)


class Scope:
    """Resolves expressions inside one function (or at module level)."""

    def __init__(
        self,
        symbols: ModuleSymbols,
        index: ProjectIndex,
        catalogue: Catalogue,
        local_names: dict[str, str | None] | None = None,
    ) -> None:
        self.symbols = symbols
        self.index = index
        self.catalogue = catalogue
        self.locals: dict[str, str | None] = local_names if local_names is not None else {}

    def child(self, local_names: dict[str, str | None]) -> Scope:
        """A scope for a nested function: its own locals."""
        return Scope(self.symbols, self.index, self.catalogue, local_names)

    def lookup(self, name: str) -> str | None:
        """What a bare name refers to here."""
        if name in self.locals:
            return self.locals[name]
        if name in self.symbols.names:
            return self.symbols.names[name]
        if name in _BUILTINS:
            return name
        return None

    def resolve(self, node: ast.expr) -> str | None:
        """The reference an expression evaluates to, or None if unknown."""
        if isinstance(node, ast.Name):
            return self._value(self.lookup(node.id))
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else self._value(self.attribute(base, node.attr))
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                table = self._table(node.func.value)
                if table is not None:
                    return table  # ``TOOLS.get(name)``
                default = dict_get_default(node)
                if default is not None:
                    found = self.resolve(default)
                    if found is not None and found in self.index.functions:
                        return found  # ``TOOLS.get(name, search)``: what may be called
            made = manager_class(self, node)  # ``BookQuerySet.as_manager()``
            if made is not None:
                return made
            callee = self.resolve(node.func)
            if callee is None:
                return None
            if callee in self.catalogue.seeded and (node.args or node.keywords):
                return instance_of(self.catalogue.seeded[callee])  # random.Random(seed)
            return self.result_of(callee)
        if isinstance(node, ast.Await):
            return self.resolve(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            # ``base / "name"`` of a path is a path (pathlib's one operator).
            left = self.resolve(node.left)
            return left if left in self.catalogue.paths else None
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name):
                found = self.lookup(node.value.id + _ITEM)  # ``cache[key]`` of a dict cache
                if found is not None:
                    return found
            table = self._table(node.value)
            if table is not None:
                return table  # ``HANDLERS[kind]``
            if not isinstance(node.slice, ast.Slice):
                return None
            base = self.resolve(node.value)  # ``queryset[:10]`` is a queryset still
            return base if self.lazy_type(base) is not None else None
        if isinstance(node, ast.IfExp | ast.BoolOp):
            # ``SMTP_SSL(h) if ssl else SMTP(h)``, ``client or make_client()``: what all
            # the alternatives that can be typed agree on.
            options = [node.body, node.orelse] if isinstance(node, ast.IfExp) else node.values
            agreed = {self.resolve(option) for option in options if not _is_none(option)}
            agreed.discard(None)
            tables = {found for found in agreed if found in self.index.tables}
            if len(tables) == 1 and agreed - tables <= _CONTAINERS:
                # ``tools if tools is not None else TOOLS``: a dict given instead of the
                # project's table is not known; the table is (calling out of it is a call).
                return tables.pop()
            return agreed.pop() if len(agreed) == 1 else None
        return None

    def _table(self, node: ast.expr) -> str | None:
        """``@table:<ref>`` if `node` is a dispatch table of the project."""
        ref = self.resolve(node)
        return f"{TABLE}{ref}" if ref is not None and ref in self.index.tables else None

    def _value(self, ref: str | None) -> str | None:
        """What a module-level name of the project holds (``http`` imported from the
        module that made it a client), followed through re-exports."""
        values = self.index.module_values
        for _ in range(4):
            if ref is None or ref not in values:
                return ref
            ref = values[ref]
        return ref

    def lazy_type(self, ref: str | None) -> str | None:
        """The catalogue's type if `ref` is an instance whose iteration is I/O: a
        queryset, or an instance of a project class derived from one."""
        if ref is None or not ref.endswith(INSTANCE):
            return None
        if ref in self.catalogue.lazy:
            return ref[: -len(INSTANCE)]
        seen: set[str] = set()
        stack = [ref[: -len(INSTANCE)]]
        while stack:
            current = stack.pop()
            if current in seen or not current.startswith("@"):
                continue
            seen.add(current)
            for base in self.index.bases.get(current, []):
                if instance_of(base) in self.catalogue.lazy:
                    return base
                stack.append(base)
        return None

    def callee(self, call: ast.Call) -> str | None:
        """The reference of the function a call calls."""
        return self.resolve(call.func)

    def attribute(self, base: str, attr: str) -> str:
        """The reference of ``base.attr``."""
        is_instance = base.endswith(INSTANCE)
        owner = base[: -len(INSTANCE)] if is_instance else base
        if owner.startswith("@"):
            if owner in self.index.classes:
                found = self.index.member(owner, attr, is_instance)
                if found is not None:
                    return found
            if ":" in owner:
                if attr in _TASK_METHODS and owner in self.index.functions:
                    return f"celery.Task.{attr}"  # ``send_email.delay(...)`` of a task
                return f"{owner}.{attr}"
            # A submodule (``import pkg.util`` then ``pkg.util.f``) or a module attribute.
            submodule = self.index.submodule(owner[1:], attr)
            return f"@{submodule}" if submodule is not None else f"{owner}:{attr}"
        if is_instance:
            name = f"{owner}.{attr}"
            typed = self.catalogue.attributes.get(name)  # ``path.parent`` is a path
            return instance_of(typed) if typed is not None else name
        # ``import a.b`` binds ``a``; ``a.b`` may be a project module even if ``a`` is not.
        return self.index.project_ref(f"{owner}.{attr}", self.symbols.root)

    def result_of(self, callee: str) -> str | None:
        """The reference of what calling `callee` returns (an instance), if known."""
        if callee.startswith("@"):
            owner = callee[: -len(INSTANCE)] if callee.endswith(INSTANCE) else callee
            if owner in self.index.classes:
                return instance_of(owner)
            return self.index.returns.get(callee)  # a factory, a getter, a builder
        if callee.endswith(INSTANCE):
            found = self.catalogue.returns.get(callee)  # ``sessionmaker(...)()``
            return None if found is None else instance_of(found)
        return instance_of(self.catalogue.returns.get(callee, callee))


def function_locals(
    scope: Scope,
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
    self_ref: str | None,
    ref: str | None = None,
) -> dict[str, str | None]:
    """The local names of a function and, where inferable, what they refer to.

    `ref` (``"@mod:qualname"``) gives the parameters the types `_types` found.
    """
    local_names: dict[str, str | None] = {}
    args = node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    typed = scope.index.params.get(ref, {}) if ref is not None else {}
    for position, param in enumerate(params):
        local_names[param.arg] = self_ref if (position == 0 and self_ref) else typed.get(param.arg)
    if isinstance(node, ast.Lambda):
        return local_names
    inner = scope.child(local_names)
    globals_declared: set[str] = set()
    nested = f"{ref}.<locals>." if ref is not None else None
    walrus = scope.symbols.has_walrus
    steps = scope.index.by_syntax("binds", node.body, lambda body: _binding_steps(body, walrus))
    for step in steps:
        _bind(inner, step, local_names, globals_declared, nested)
    for name in globals_declared:
        local_names.pop(name, None)
    return local_names


def _binding_steps(body: list[ast.stmt], walrus: bool) -> list[ast.AST]:
    """The nodes of a function body that bind names, in the order they bind them.

    Statements are taken before the statements nested in them, and the walrus
    expressions of a statement after those; nested functions and classes bind
    their own name only. By syntax alone, so worked out once per body (`_bind`
    applies them in each round of the type passes).
    """
    steps: list[ast.AST] = []
    for statement in body:
        _binding_step(statement, walrus, steps)
    return steps


def _binding_step(node: ast.stmt, walrus: bool, steps: list[ast.AST]) -> None:
    """Add `node`'s binding steps to `steps` (see `_binding_steps`).

    A function of the module, not a recursive closure: a closure that calls
    itself is a reference cycle, which would keep every list it filled, and the
    syntax trees they hold, alive until the collector runs.
    """
    if isinstance(node, _NAMERS):
        steps.append(node)
        return
    if isinstance(node, _BINDERS):
        steps.append(node)
    for child in child_nodes(node):
        if isinstance(child, ast.stmt):
            _binding_step(child, walrus, steps)
        elif isinstance(child, ast.ExceptHandler):  # the one concrete ``excepthandler``
            for inner in child.body:
                _binding_step(inner, walrus, steps)
    if walrus:
        steps.extend(_walruses(node))


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Statements that bind names and are not entered: definitions, declarations, imports.
_NAMERS = (*_DEFINITIONS, ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom)
_BINDERS = (
    ast.Assign, ast.AnnAssign, ast.AugAssign, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor,
    ast.Try, ast.TryStar,
)  # fmt: skip


def _bind(
    scope: Scope,
    node: ast.AST,
    into: dict[str, str | None],
    globals_declared: set[str],
    nested: str | None = None,
) -> None:
    """Record the names one step of `_binding_steps` binds.

    A function or class defined here is bound to its reference (`nested`: the
    prefix ``@module:outer.<locals>.``) when the project index knows it, so that a
    call of a local helper (a closure gathered by ``asyncio.gather``) is a call of
    that project function."""
    if isinstance(node, _DEFINITIONS):
        ref = f"{nested}{node.name}" if nested is not None else None
        index = scope.index
        known = ref is not None and (ref in index.functions or ref in index.classes)
        into[node.name] = ref if known else None
    elif isinstance(node, ast.Global | ast.Nonlocal):
        globals_declared.update(node.names)
    elif isinstance(node, ast.Import | ast.ImportFrom):
        bind_import(node, scope.symbols.package, scope.index, into, scope.symbols.root)
    elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = scope.resolve(node.value) if node.value is not None else None
        if isinstance(node, ast.AnnAssign):
            value = value or _annotated_name(scope, node, into)
        for target in targets:
            _bind_target(
                target, value if isinstance(node, ast.Assign | ast.AnnAssign) else None, into
            )
    elif isinstance(node, ast.With | ast.AsyncWith):
        for item in node.items:
            if item.optional_vars is not None:
                _bind_target(item.optional_vars, scope.resolve(item.context_expr), into)
    elif isinstance(node, ast.For | ast.AsyncFor):
        _bind_target(node.target, _iterated(scope, node.iter), into)
    elif isinstance(node, ast.Try | ast.TryStar):
        for handler in node.handlers:
            if handler.name:
                into[handler.name] = None
    elif isinstance(node, ast.NamedExpr):
        into[node.target.id] = scope.resolve(node.value)


def is_sequence(node: ast.expr | None) -> bool:
    """Whether a table's literal is a list or a tuple (iterating it yields what it holds)."""
    return isinstance(node, ast.List | ast.Tuple)


def _iterated(scope: Scope, node: ast.expr) -> str | None:
    """``@table:<ref>`` when a loop goes over what a dispatch table holds: a list or
    tuple table itself, or a dict table's ``values()`` (``for hook in HOOKS:``)."""
    if isinstance(node, ast.Call) and not node.args and isinstance(node.func, ast.Attribute):
        return scope._table(node.func.value) if node.func.attr == "values" else None
    table = scope._table(node)
    return table if table is not None and table[len(TABLE) :] in scope.index.sequences else None


def dict_get_default(call: ast.Call) -> ast.expr | None:
    """The default of ``mapping.get(key, default)`` when it names a function: ``get``
    returns it (a mapping's ``get`` never calls its default), so passing it there is
    no call; what calls the result calls it."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "get" and len(call.args) == 2):
        return None
    default = call.args[1]
    return default if isinstance(default, ast.Name | ast.Attribute) else None


def table_refs(scope: Scope, node: ast.expr | None) -> list[str]:
    """The project references a dict, list or tuple literal holds (a dispatch table)."""
    if isinstance(node, ast.Dict):
        items: list[ast.expr] = node.values
    elif isinstance(node, ast.List | ast.Tuple):
        items = node.elts
    else:
        return []
    found = [scope.resolve(item) for item in items if isinstance(item, ast.Name | ast.Attribute)]
    return [ref for ref in found if ref is not None and ref.startswith("@")]


def _annotated_name(scope: Scope, node: ast.AnnAssign, into: dict[str, str | None]) -> str | None:
    """The type an annotated assignment declares (``client: Client | None = None``).

    A ``dict[K, V]`` annotation also types the dict's items (``name[]``).
    """
    if isinstance(node.target, ast.Name):
        item = item_type(scope, node.annotation)
        if item is not None:
            into.setdefault(node.target.id + _ITEM, item)
    return annotation_type(scope, node.annotation)


def _walruses(node: ast.stmt) -> list[ast.NamedExpr]:
    found = []
    for child in child_nodes(node):
        if isinstance(child, ast.expr):
            found += [n for n in walk(child) if isinstance(n, ast.NamedExpr)]
    return found


def _bind_target(target: ast.expr, value: str | None, into: dict[str, str | None]) -> None:
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        target = ast.Name(target.value.id + _ITEM)  # ``cache[key] = Client()``
    if isinstance(target, ast.Name):
        # A name assigned twice keeps the first thing we could resolve.
        if into.get(target.id) is None:
            into[target.id] = value
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            _bind_target(element, None, into)
    elif isinstance(target, ast.Starred):
        _bind_target(target.value, None, into)


def module_symbols(
    tree: ast.Module, module: str, is_package: bool, index: ProjectIndex, catalogue: Catalogue
) -> ModuleSymbols:
    """The global names of a module (imports, definitions, simple assignments)."""
    name = import_name(module)
    package = name if is_package else name.rpartition(".")[0]
    symbols = ModuleSymbols(module, package, root=index.roots.get(module))
    scope = Scope(symbols, index, catalogue, symbols.names)
    for node in _module_statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            symbols.names[node.name] = f"@{module}:{node.name}"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bind_import(node, package, index, symbols.names, symbols.root)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = scope.resolve(node.value) if node.value is not None else None
            held = table_refs(scope, node.value) if value is None else []
            if held and len(targets) == 1 and isinstance(targets[0], ast.Name):
                value = f"@{module}:{targets[0].id}"  # ``HANDLERS = {"a": on_a, ...}``
                index.add_table(value, held, is_sequence(node.value))
            elif isinstance(node, ast.AnnAssign):
                value = value or _annotated_name(scope, node, symbols.names)
            elif value is None:
                value = alias_type(scope, node.value)  # ``Db = Annotated[Session, ...]``
            for target in targets:
                _bind_target(target, value, symbols.names)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    _bind_target(
                        item.optional_vars, scope.resolve(item.context_expr), symbols.names
                    )
    return symbols


def _module_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, looking inside if/try/with blocks (conditional imports)."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, ast.If | ast.Try | ast.TryStar | ast.With | ast.AsyncWith):
            blocks = [getattr(node, "body", []), getattr(node, "orelse", [])]
            blocks += [getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                out += _module_statements(block)
    return out


def _classes(body: list[ast.stmt]) -> list[ast.ClassDef]:
    return [node for node in statements(body) if isinstance(node, ast.ClassDef)]


def _assignments(body: list[ast.stmt]) -> list[ast.Assign | ast.AnnAssign]:
    return [node for node in statements(body) if isinstance(node, ast.Assign | ast.AnnAssign)]


def collect_instance_attrs(
    tree: ast.Module, symbols: ModuleSymbols, index: ProjectIndex, catalogue: Catalogue
) -> None:
    """Record ``self.x = <expr>`` of every class of the module into the index."""
    scope = Scope(symbols, index, catalogue)
    for cls in index.by_syntax("classes", tree.body, _classes):
        cls_ref = f"@{symbols.module}:{cls.name}"
        attrs = index.instance_attrs.setdefault(cls_ref, {})
        on_class = index.class_attrs.setdefault(cls_ref, {})
        for node in cls.body:  # class-level attributes and fields (dataclasses, models)
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = scope.resolve(node.value) if node.value is not None else None
                if isinstance(node, ast.AnnAssign):
                    value = value or annotation_type(scope, node.annotation)
                for target in targets:
                    if not isinstance(target, ast.Name):
                        continue
                    related = None
                    if node.value is not None and isinstance(node.value, ast.Call):
                        related = record_field(scope, cls_ref, target.id, node.value, value)
                    if related is not None:
                        attrs.setdefault(target.id, related)  # a relation, on instances
                    elif value is not None:
                        attrs.setdefault(target.id, value)
                        on_class.setdefault(target.id, value)
        for method in cls.body:
            if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            params = method.args.posonlyargs + method.args.args
            if not params:
                continue
            self_name = params[0].arg
            local_scope: Scope | None = None  # only for methods that set attributes
            for node in index.by_syntax("assignments", method.body, _assignments):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == self_name
                    ):
                        if local_scope is None:
                            ref = f"@{symbols.module}:{cls.name}.{method.name}"
                            local_scope = scope.child(function_locals(scope, method, None, ref))
                        value = local_scope.resolve(node.value) if node.value else None
                        if isinstance(node, ast.AnnAssign):
                            value = value or annotation_type(local_scope, node.annotation)
                        held = table_refs(local_scope, node.value) if value is None else None
                        if held:
                            attr = f"@{symbols.module}:{cls.name}.{target.attr}"
                            index.add_table(attr, held, is_sequence(node.value))
                        if value is not None:
                            attrs.setdefault(target.attr, value)
