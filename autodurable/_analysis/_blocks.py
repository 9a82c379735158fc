"""Moving code into a function of its own: what a with-block or an expression
needs to keep meaning the same there.

The rewrite records a ``with`` block as one step by moving it into a local
function, and an I/O expression by moving it into a lambda. `block_problem`
and `class_cell` say when that would change the code's meaning (a ``return``,
a ``super()`` that needs its method's frame ...); `bound_names` and
`declared_global` give the names the moved code must share with its function.

Invariants: pure; reads trees, never changes them.
"""

from __future__ import annotations

import ast

from ._walk import child_nodes, own_statements, same_scope, walk

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def block_problem(node: ast.With | ast.AsyncWith) -> str | None:
    """Why a with-statement cannot become a function of its own, or None."""
    if any(class_cell(n) for item in node.items for n in walk(item)):
        return "a super() call"
    for inner in same_scope(node.body):
        if class_cell(inner):
            return "a super() call"
        if isinstance(inner, ast.Return):
            return "a return"
        if isinstance(inner, ast.Yield | ast.YieldFrom):
            return "a yield"
        if isinstance(inner, ast.Break | ast.Continue) and not _inside_loop(inner, node):
            return "a break or continue"
        if isinstance(inner, ast.Global | ast.Nonlocal):
            return "a global or nonlocal statement"
        if isinstance(inner, ast.Delete):
            return "a del statement"
        if isinstance(inner, ast.ImportFrom) and any(a.name == "*" for a in inner.names):
            return "a star import"
        if isinstance(inner, FunctionNode | ast.ClassDef):
            return f"a definition of {inner.name} (its __qualname__ would change)"
    if isinstance(node, ast.With) and _awaits(node.body):
        return "an await"
    return None


def _awaits(body: list[ast.stmt]) -> bool:
    """Whether `body` awaits (also in comprehensions), which a plain function cannot."""
    stack: list[ast.AST] = list(body)
    while stack:
        inner = stack.pop()
        if isinstance(inner, ast.Await | ast.AsyncFor | ast.AsyncWith):
            return True
        if isinstance(inner, ast.comprehension) and inner.is_async:
            return True
        if not isinstance(inner, FunctionNode | ast.ClassDef | ast.Lambda):
            stack.extend(child_nodes(inner))
    return False


def class_cell(node: ast.AST) -> bool:
    """Whether `node` needs its method's own frame: ``super()`` without arguments, ``__class__``.

    Moved into a function of its own (a lambda, a block function), it fails.
    """
    if isinstance(node, ast.Name) and node.id == "__class__":
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
        and not node.args
    )


def _inside_loop(target: ast.AST, block: ast.AST) -> bool:
    """Whether `target` sits in a loop nested inside `block` (so it stays local)."""
    return any(
        isinstance(loop, ast.For | ast.AsyncFor | ast.While)
        and loop is not block
        and any(inner is target for inner in walk(loop))
        for loop in walk(block)
    )


def bound_names(node: ast.With | ast.AsyncWith) -> list[str]:
    """Names a with-block binds in its own scope, except the handles it opens."""
    handles = {
        n.id
        for item in node.items
        if item.optional_vars is not None
        for n in walk(item.optional_vars)
        if isinstance(n, ast.Name)
    }
    names: list[str] = []
    for inner in same_scope(node.body):
        found: list[str | None] = []
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
            found = [inner.id]
        elif isinstance(inner, FunctionNode | ast.ClassDef | ast.ExceptHandler):
            found = [inner.name]
        elif isinstance(inner, ast.Import | ast.ImportFrom):
            found = [a.asname or a.name.partition(".")[0] for a in inner.names if a.name != "*"]
        elif isinstance(inner, ast.MatchAs | ast.MatchStar):
            found = [inner.name]
        elif isinstance(inner, ast.MatchMapping):
            found = [inner.rest]
        for name in found:
            if name is not None and name not in handles and name not in names:
                names.append(name)
    return names


def declared_global(node: FunctionNode) -> set[str]:
    """The names a function declares ``global`` (not looking into nested scopes).

    A with-block made into a function of its own must declare them too.
    """
    return {
        name
        for inner in own_statements(node.body)
        if isinstance(inner, ast.Global)
        for name in inner.names
    }
