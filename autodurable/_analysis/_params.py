"""Calls made on a function's parameters whose type nobody wrote down.

A client handed in as a parameter (``def charge(gateway, order):
gateway.charges.create(...)``) is invisible to the analyser: unannotated, the
parameter has no type, so its calls resolve to nothing and the function looks
like computation. `_unresolved` watches the calls that *look* like I/O; what
it lets through is what this module lists, for the tools that must say where
the analyser is blind (``explain --strict``) and for the AI verifier, which
must not make such a parameter a workflow input.

Invariants:
- Pure and syntactic, like `_unresolved`: names only, never a guess at a type.
- A parameter with an annotation is typed (the analyser follows annotations;
  ``Any`` and ``object`` say nothing),
  and so are ``self`` and ``cls``; methods of builtin values, loggers and
  regular expressions (`_unresolved`'s list) are not I/O on anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from ._unresolved import PURE_METHODS

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class ParameterCall:
    """A method call on a parameter of unknown type."""

    parameter: str
    call: str  # the called expression: ``gateway.charges.create``
    line: int


def parameters(node: FunctionNode) -> list[ast.arg]:
    """Every parameter of a function, in order (positional, ``*args``, keyword, ``**kw``)."""
    args = node.args
    found = [*args.posonlyargs, *args.args]
    if args.vararg is not None:
        found.append(args.vararg)
    found += args.kwonlyargs
    if args.kwarg is not None:
        found.append(args.kwarg)
    return found


_UNTYPED = frozenset({"Any", "typing.Any", "object"})


def untyped_parameters(node: FunctionNode) -> set[str]:
    """The parameters without an annotation (or annotated ``Any``), ``self`` and ``cls`` aside."""
    return {
        a.arg
        for a in parameters(node)
        if (a.annotation is None or ast.unparse(a.annotation).strip("'\"") in _UNTYPED)
        and a.arg not in ("self", "cls")
    }


def receiver(call: ast.Call) -> str | None:
    """The name a method call is made on, through attributes: ``g`` for ``g.charges.create()``."""
    node: ast.expr = call.func
    if not isinstance(node, ast.Attribute):
        return None
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def parameter_calls(node: FunctionNode) -> list[ParameterCall]:
    """The method calls a function makes itself on its untyped parameters (one per callee)."""
    untyped = untyped_parameters(node)
    found: dict[str, ParameterCall] = {}
    for call in _own_calls(node):
        name = receiver(call)
        if name not in untyped or not isinstance(call.func, ast.Attribute):
            continue
        if call.func.attr in PURE_METHODS or call.func.attr.startswith("_"):
            continue
        if _rebound(node, name):
            continue
        text = ast.unparse(call.func)
        found.setdefault(text, ParameterCall(name, text, call.lineno))
    return sorted(found.values(), key=lambda c: c.line)


def _rebound(node: FunctionNode, name: str) -> bool:
    """Whether the body assigns `name` (then it no longer holds what the caller passed)."""
    for inner in _own_nodes(node):
        if isinstance(inner, ast.Name) and inner.id == name and isinstance(inner.ctx, ast.Store):
            return True
    return False


def _own_calls(node: FunctionNode) -> Iterator[ast.Call]:
    for inner in _own_nodes(node):
        if isinstance(inner, ast.Call):
            yield inner


def _own_nodes(node: FunctionNode) -> Iterator[ast.AST]:
    """The body's nodes, not entering nested functions, lambdas' own scopes aside, or classes."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, FunctionNode | ast.ClassDef):
            continue
        stack.extend(ast.iter_child_nodes(current))


def functions(tree: ast.Module) -> dict[tuple[str, int], FunctionNode]:
    """Every function of a module by (qualname, line), qualnames as the analyser's."""
    found: dict[tuple[str, int], FunctionNode] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, FunctionNode):
                qualname = f"{prefix}{node.name}"
                found[(qualname, node.lineno)] = node
                visit(node.body, f"{qualname}.<locals>.")
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.If | ast.Try | ast.TryStar | ast.With | ast.AsyncWith):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []), prefix)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body, prefix)

    visit(tree.body, "")
    return found
