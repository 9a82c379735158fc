"""Fast traversal of ``ast`` trees for the analyser and the rewrite.

``ast.walk`` and ``ast.iter_child_nodes`` look at every field of every node,
expression contexts (``Load``, ``Store``) and operators included; on a cold
start of a large project that is most of the analyser's time. These helpers
look only at the fields that can hold the nodes we care about.

Invariants:
- `child_nodes` returns the nodes ``ast.iter_child_nodes`` yields, minus
  expression contexts, operators and import aliases (which carry no calls or
  positions that the analyser uses); list fields come first.
- `walk` is breadth-first like ``ast.walk`` (callers rely on outer calls coming
  before the calls nested in them).
- `same_scope` and `own_statements` do not enter nested functions, classes,
  lambdas or comprehensions: what they return belongs to the scope of the body
  they were given. `statements` enters everything but expressions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

# Fields that never hold nodes we look at: names, flags, contexts and operators
# (``names`` holds strings or import aliases, which the import code reads itself).
_SKIPPED = frozenset(
    {
        "ctx",
        "op",
        "ops",
        "id",
        "attr",
        "arg",
        "name",
        "names",
        "asname",
        "module",
        "level",
        "kind",
        "type_comment",
        "is_async",
        "conversion",
        "simple",
        "kwd_attrs",
        "tag",
    }
)
# List fields that can hold None (``{**d}``'s key, a keyword-only argument without default).
_HOLES = frozenset({("Dict", "keys"), ("arguments", "kw_defaults")})
_CHILDREN: dict[type, Callable[[Any], list[ast.AST]]] = {}
_NESTED_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """The direct children of `node` (see the module invariants)."""
    children = _CHILDREN.get(type(node))
    if children is None:
        children = _CHILDREN[type(node)] = _children_function(node)
    return children(node)


def _children_function(sample: ast.AST) -> Callable[[Any], list[ast.AST]]:
    """A function listing the children of nodes of `sample`'s type.

    Generated once per node type from its field names, because a generic loop
    over fields is what made traversal slow. A field is a list in every node of
    a type or in none (``ast``'s grammar), so one sample tells which. Only the
    identifiers from ``_fields`` go into the generated source.
    """
    cls = type(sample)
    fields = [f for f in cls._fields if f not in _SKIPPED and f.isidentifier()]
    if cls is ast.Constant or cls is ast.MatchSingleton:
        fields = []  # its value is data (``case True:``), never a node
    lists = [f for f in fields if isinstance(getattr(sample, f, None), list)]
    items = [
        f"*[x for x in node.{f} if x is not None]" if (cls.__name__, f) in _HOLES else f"*node.{f}"
        for f in lists
    ]
    lines = ["def children(node):", f"    out = [{', '.join(items)}]"]
    for f in fields:
        if f not in lists:
            lines += [f"    value = node.{f}", "    if value is not None:"]
            lines += ["        out.append(value)"]
    lines.append("    return out")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<children of {cls.__name__}>", "exec"), namespace)
    return namespace["children"]


def walk(node: ast.AST) -> list[ast.AST]:
    """`node` and everything under it, breadth-first."""
    nodes = [node]
    index = 0
    while index < len(nodes):
        nodes += child_nodes(nodes[index])
        index += 1
    return nodes


def same_scope(body: list[ast.stmt]) -> list[ast.AST]:
    """Every node of `body` in its own scope (nested scopes are returned, not entered)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, _NESTED_SCOPES):
            stack += child_nodes(node)
    return out


def own_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of `body` in its own scope: nested blocks, not nested definitions."""
    return _statements(body, enter_definitions=False)


def statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement of `body`, nested blocks and nested definitions included.

    Expressions are not entered (no statement hides in one), which makes this
    much cheaper than `walk` when statements are all one looks for.
    """
    return _statements(body, enter_definitions=True)


def _statements(body: list[ast.stmt], enter_definitions: bool) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    stack: list[ast.stmt] = list(reversed(body))
    while stack:
        node = stack.pop()
        out.append(node)
        cls = type(node)
        blocks = _BLOCKS.get(cls)
        if blocks is None:
            blocks = _BLOCKS[cls] = _block_fields(cls)
        if not blocks or (not enter_definitions and cls in _NESTED_SCOPES):
            continue
        inner: list[ast.stmt] = []
        for field, holders in blocks:
            value = getattr(node, field)
            if holders:  # except handlers, match cases: their bodies hold statements
                for holder in value:
                    inner += holder.body
            else:
                inner += value
        stack += reversed(inner)
    return out


# Per statement type, the fields that hold statements, in source order; a flag
# marks those whose items hold them in their own ``body`` (handlers, cases).
_BLOCKS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _block_fields(cls: type) -> tuple[tuple[str, bool], ...]:
    fields = cls._fields  # type: ignore[attr-defined]
    return tuple((name, name in _HOLDERS) for name in _ORDER if name in fields)


_ORDER = ("body", "orelse", "finalbody", "handlers", "cases")
_HOLDERS = frozenset({"handlers", "cases"})
