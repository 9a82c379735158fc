"""Annotations read as a reader reads them: the one class an annotation names.

``Optional[X]``, ``X | None``, ``Union[X, None]``, ``Annotated[X, ...]``,
strings (forward references), and ``Iterator[X]``-like wrappers of generator
providers all name ``X``; a union of two real types names nothing.

Invariants: pure; `scope` is only asked to resolve names (`_scope.Scope`).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._scope import Scope

_UNIONS = frozenset({"typing.Optional", "typing.Union", "typing_extensions.Optional"})
_ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
_ITERATORS = frozenset(
    {
        "typing.Iterator",
        "typing.Generator",
        "typing.AsyncIterator",
        "typing.AsyncGenerator",
        "typing.Iterable",
        "collections.abc.Iterator",
        "collections.abc.Generator",
        "collections.abc.AsyncIterator",
        "collections.abc.AsyncGenerator",
        "collections.abc.Iterable",
        "contextlib.AbstractContextManager",
        "contextlib.AbstractAsyncContextManager",
        "typing.ContextManager",
        "typing.AsyncContextManager",
    }
)
# Annotations that say nothing about what a value does (a ``Callable`` parameter's
# default, ``clock: Callable[[], float] = time.monotonic``, says more).
_NOT_TYPES = frozenset(
    {
        "None",
        "typing.Any",
        "object",
        "typing.Self",
        "typing_extensions.Self",
        "typing.Callable",
        "collections.abc.Callable",
    }
)


def annotation_type(scope: Scope, node: ast.expr | None) -> str | None:
    """The instance reference an annotation names (``"httpx.Client()"``), or None."""
    found = _annotated(scope, node, 0)
    return None if found is None else _instance(found)


def _annotated(scope: Scope, node: ast.expr | None, depth: int) -> str | None:
    if node is None or depth > 8:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            parsed = ast.parse(node.value.strip(), mode="eval").body
        except SyntaxError:
            return None
        return _annotated(scope, parsed, depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _one_of(scope, [node.left, node.right], depth)
    if isinstance(node, ast.Subscript):
        base = scope.resolve(node.value)
        if base in _NOT_TYPES:
            return None  # ``Callable[[], float]``
        members = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base in _UNIONS:
            return _one_of(scope, members, depth)
        if base in _ANNOTATED or base in _ITERATORS:
            return _annotated(scope, members[0], depth + 1)
        return base
    if isinstance(node, ast.Name | ast.Attribute):
        found = scope.resolve(node)
        return None if found is None or found in _NOT_TYPES else found
    return None


def _one_of(scope: Scope, members: list[ast.expr], depth: int) -> str | None:
    """The one type of a union with None (``X | None``); None for a real union."""
    found = {
        _annotated(scope, m, depth + 1)
        for m in members
        if not (isinstance(m, ast.Constant) and m.value is None)
    }
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def injected_provider(scope: Scope, node: ast.expr | None) -> str | None:
    """The provider of ``Depends(provider)`` (a default or ``Annotated`` metadata), or None."""
    if isinstance(node, ast.Subscript) and scope.resolve(node.value) in _ANNOTATED:
        members = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
        for member in members[1:]:
            found = injected_provider(scope, member)
            if found is not None:
                return found
        return None
    if not isinstance(node, ast.Call) or not node.args:
        return None
    callee = scope.resolve(node.func) or ""
    if callee.rpartition(".")[2] != "Depends":
        return None
    return scope.resolve(node.args[0])


def item_type(scope: Scope, node: ast.expr | None) -> str | None:
    """The instance reference of the values of a ``dict[K, V]`` / ``Mapping[K, V]`` annotation."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Tuple):
        return None
    if len(node.slice.elts) != 2:
        return None
    found = _annotated(scope, node.slice.elts[1], 1)
    return None if found is None else _instance(found)


def _instance(ref: str) -> str:
    return ref if ref.endswith("()") else ref + "()"


def alias_type(scope: Scope, node: ast.expr) -> str | None:
    """The class a type alias names (``Db = Annotated[Session, Depends(get_db)]``,
    ``MaybeClient = httpx.Client | None``), or None for any other value."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotated(scope, node, 0)
    if isinstance(node, ast.Subscript) and scope.resolve(node.value) in _UNIONS | _ANNOTATED:
        return _annotated(scope, node, 0)
    return None
