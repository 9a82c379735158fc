"""Types followed the way a reader follows them, for name resolution (`_scope`).

What a parameter, an attribute or a call's result is, from:
- annotations: plain, ``Optional[X]``, ``X | None``, ``Union[X, None]``,
  ``Annotated[X, ...]``, strings, names imported under ``TYPE_CHECKING``;
  else a parameter's default (``clock=time.monotonic``);
- FastAPI-style injection: ``db: Session = Depends(get_db)`` and
  ``Annotated[Session, Depends(get_db)]`` take the provider's type when the
  annotation names none;
- return types of the project's functions: annotated, else what their
  ``return`` (or, for generators such as injection providers, ``yield``)
  statements resolve to, so factories, getters and cached builders type
  their callers' variables;
- arguments flowing from the project's own call sites into parameters that
  carry no annotation, when every call site whose argument can be typed
  agrees on one type.

Invariants:
- Pure, like the rest of the analyser: reads trees, writes only into the
  `ProjectIndex` it is given.
- Only ever adds what it could resolve; never overrides an annotation with a
  call site's guess, never guesses between two disagreeing call sites.
- Bounded: a fixed number of rounds (`ROUNDS`), so the cost is linear in the
  size of the project.
"""

from __future__ import annotations

import ast
from collections.abc import Container, Iterable
from dataclasses import dataclass

from ._annotations import annotation_type, injected_provider
from ._scope import (
    INSTANCE,
    ProjectIndex,
    Scope,
    collect_instance_attrs,
    function_locals,
    is_sequence,
    table_refs,
)
from ._walk import child_nodes, own_statements

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
ROUNDS = 2  # call-site flow rounds: a factory's result passed on through one more call


@dataclass
class Definition:
    """A function of the project, as the type passes need it."""

    ref: str  # "@module:qualname"
    node: FunctionNode
    scope: Scope  # the module's scope
    self_ref: str | None  # what its first parameter is (methods), or None


def parameters(node: FunctionNode) -> tuple[list[ast.arg], list[ast.expr | None]]:
    """The parameters of a function, with their defaults aligned (None: no default)."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    return positional + args.kwonlyargs, defaults + list(args.kw_defaults)


def declared_types(definition: Definition, index: ProjectIndex) -> dict[str, str]:
    """Parameter types from annotations and injection, for one function."""
    scope = definition.scope
    found: dict[str, str] = {}
    params, defaults = parameters(definition.node)
    for param, default in zip(params, defaults, strict=True):
        typed = annotation_type(scope, param.annotation)
        if typed is None:
            provider = injected_provider(scope, param.annotation) or injected_provider(
                scope, default
            )
            if provider is not None:
                typed = scope.result_of(provider)
            elif default is not None:
                typed = scope.resolve(default)  # ``clock=time.monotonic``, ``client=requests``
        if typed is not None:
            found[param.arg] = typed
    return found


# What the call sites of each module pass to the project's functions, in the last
# round: module -> function reference -> parameter -> the types passed (typed ones only).
Flows = dict[str, dict[str, dict[str, set[str]]]]


def infer_types(
    definitions: list[Definition],
    index: ProjectIndex,
    tops: Iterable[tuple[Scope, ast.Module]],
    outside: Flows | None = None,
) -> tuple[dict[tuple[str, int], dict[str, str | None]], Flows]:
    """Fill `index` with parameter, return and attribute types, in a fixed number of rounds.

    `tops` pairs each module's top-level scope with its tree: the attributes
    its classes set, and the calls made at module level (a script passing on
    the client it opened). Returns the local names of every function, by
    reference and line (a name can be defined twice), when the last round
    changed nothing (they are then final, and need not be worked out again),
    else nothing; and the flows of the last round, by calling module.

    `outside`, when only some modules are analysed again over the index of a
    whole project (`_incremental`): the flows of the other modules. Arguments
    then flow into the functions of the given `definitions` only; what they pass
    to the others is returned, for the caller to compare.
    """
    by_ref = {d.ref: d for d in definitions}
    targets = by_ref if outside is None else index.functions
    for definition in definitions:
        index.binding[definition.ref] = definition.self_ref
        index.signatures[definition.ref] = [p.arg for p in parameters(definition.node)[0]]
        declared = declared_types(definition, index)
        if declared:
            index.params[definition.ref] = declared
        returns = definition.node.returns
        typed = annotation_type(definition.scope, returns)
        if typed is not None:
            index.returns[definition.ref] = typed
    declared_params = {ref: set(types) for ref, types in index.params.items()}
    injected = [d for d in definitions if _injects(d)]
    top_scopes = list(tops)
    final: dict[tuple[str, int], dict[str, str | None]] = {}
    for _ in range(ROUNDS):
        known = _known_count(index)
        final = {}
        for definition in injected:  # injection providers' types are known now
            for param, typed in declared_types(definition, index).items():
                if param not in declared_params.setdefault(definition.ref, set()):
                    index.params.setdefault(definition.ref, {})[param] = typed
                    declared_params[definition.ref].add(param)
        for scope, tree in top_scopes:
            collect_instance_attrs(tree, scope.symbols, index, scope.catalogue)
        flows: Flows = {}
        for definition in definitions:
            names = function_locals(
                definition.scope, definition.node, definition.self_ref, definition.ref
            )
            final[(definition.ref, definition.node.lineno)] = names
            local = definition.scope.child(names)
            if definition.ref not in index.returns:
                returned = _returned(local, definition.node)
                if returned is not None:
                    index.returns[definition.ref] = returned
            if index.returns.get(definition.ref) in _CONTAINERS:
                table = _returned_table(local, definition.node, definition.ref)
                if table is not None:
                    index.returns[definition.ref] = table
            into = flows.setdefault(local.symbols.module, {})
            _call_flows(local, definition.node.body, targets, index, into)
        for scope, tree in top_scopes:
            into = flows.setdefault(scope.symbols.module, {})
            _call_flows(scope, tree.body, targets, index, into)
        for ref, by_param in _merged(flows, outside, by_ref).items():
            fixed = declared_params.get(ref, set())
            for param, types in by_param.items():
                if param not in fixed and len(types) == 1:
                    index.params.setdefault(ref, {})[param] = next(iter(types))
        if _known_count(index) == known:
            return final, flows  # another round would resolve nothing more
    return {}, flows


def _merged(
    flows: Flows, outside: Flows | None, by_ref: dict[str, Definition]
) -> dict[str, dict[str, set[str]]]:
    """What every call site passes to each of the analysed functions."""
    merged: dict[str, dict[str, set[str]]] = {}
    for by_target in [*flows.values(), *(outside or {}).values()]:
        for ref, by_param in by_target.items():
            if ref not in by_ref:
                continue  # a function not analysed now: compared by the caller
            into = merged.setdefault(ref, {})
            for param, types in by_param.items():
                into.setdefault(param, set()).update(types)
    return merged


def _known_count(index: ProjectIndex) -> tuple[int, int]:
    """How much the type passes know: returns and parameter types (they only grow)."""
    return len(index.returns), sum(len(types) for types in index.params.values())


def _injects(definition: Definition) -> bool:
    """Whether a function takes a parameter by injection (``Depends(...)``)."""
    scope = definition.scope
    params, defaults = parameters(definition.node)
    return any(
        injected_provider(scope, param.annotation) or injected_provider(scope, default)
        for param, default in zip(params, defaults, strict=True)
        if param.annotation is not None or default is not None
    )


def _returned(scope: Scope, node: FunctionNode) -> str | None:
    """What a function's return (or, for a generator, yield) statements resolve to."""
    for statement in scope.index.by_syntax("statements", node.body, own_statements):
        value: ast.expr | None = None
        if isinstance(statement, ast.Return):
            value = statement.value
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Yield):
            value = statement.value.value
        if value is None:
            continue
        found = _typed(scope, scope.resolve(value))
        if found is not None:
            return found
    return None


# What a function returns when nothing is known of it, or it is annotated as a container.
_CONTAINERS = frozenset({None, "dict()", "list()", "tuple()"})


def _returned_table(scope: Scope, node: FunctionNode, ref: str) -> str | None:
    """``<ref>()``, recorded as a dispatch table, if the function returns a dict, list
    or tuple literal of the project's functions (``return {"join": on_join, ...}``):
    calling out of what it returns (``handlers().get(kind)(event)``) then calls the
    functions it holds."""
    for statement in scope.index.by_syntax("statements", node.body, own_statements):
        if isinstance(statement, ast.Return) and statement.value is not None:
            held = table_refs(scope, statement.value)
            if held:
                table = ref + INSTANCE
                scope.index.add_table(table, held, is_sequence(statement.value))
                return table
    return None


def _typed(scope: Scope, found: str | None) -> str | None:
    """`found` if it is an instance of a type: a class of the project or a type the
    catalogue knows (a client, a handle). The value of an arbitrary call
    (``requests.get(u)``) is no type: passed on, it would carry its origin's I/O."""
    if found is None or not found.endswith(INSTANCE):
        return None
    name = found[: -len(INSTANCE)]
    return found if name.startswith("@") or name in scope.catalogue.types else None


def _call_flows(
    scope: Scope,
    body: list[ast.stmt],
    targets: Container[str],
    index: ProjectIndex,
    flows: dict[str, dict[str, set[str]]],
) -> None:
    """Record the type of every typed argument passed to a project function in
    `body` (`targets`: the functions followed). An untyped argument rules nothing
    out, so it is not recorded."""
    for node in index.by_syntax("calls", body, _calls):
        func, args = node.func, node.args
        callee = scope.callee(node)
        if callee == "functools.partial" and args:
            # ``partial(read_page, http=client)``: the arguments it binds are passed
            # to the function when the partial is called.
            func, args = args[0], args[1:]
            callee = scope.resolve(func)
        if callee is None or not callee.startswith("@"):
            continue
        target, bound = _target(scope, func, callee, index)
        names = index.signatures.get(target)
        if names is None or target not in targets:
            continue
        names = names[1:] if bound else names
        passed: list[tuple[str, ast.expr]] = []
        for position, arg in enumerate(args):
            if isinstance(arg, ast.Starred) or position >= len(names):
                break
            passed.append((names[position], arg))
        passed += [(k.arg, k.value) for k in node.keywords if k.arg is not None and k.arg in names]
        for param, arg in passed:
            typed = _argument_type(scope, arg)
            if typed is not None:
                flows.setdefault(target, {}).setdefault(param, set()).add(typed)


def _calls(body: list[ast.stmt]) -> list[ast.Call]:
    """The calls in `body`, not in the functions and classes defined there (syntax
    alone: worked out once per body, for every round)."""
    found: list[ast.Call] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, FunctionNode | ast.ClassDef | ast.Constant | ast.Name):
            continue  # other units; leaves (a constant's children are no nodes)
        stack += child_nodes(node)
        if isinstance(node, ast.Call):
            found.append(node)
    return found


def _argument_type(scope: Scope, node: ast.expr) -> str | None:
    return _typed(scope, scope.resolve(node))


def _target(scope: Scope, func: ast.expr, callee: str, index: ProjectIndex) -> tuple[str, bool]:
    """The function a call of `callee` (the expression `func`) runs, and whether its
    first parameter is bound."""
    owner = callee[: -len(INSTANCE)] if callee.endswith(INSTANCE) else callee
    if owner in index.classes:
        init = index.member(owner, "__init__")
        return (init or f"{owner}.__init__"), True
    binding = index.binding.get(callee)
    if binding is None:
        return callee, False  # a function or a static method
    if not binding.endswith(INSTANCE):
        return callee, True  # a class method: ``cls`` is bound either way
    receiver = scope.resolve(func.value) if isinstance(func, ast.Attribute) else None
    return callee, (receiver or "").endswith(INSTANCE)
