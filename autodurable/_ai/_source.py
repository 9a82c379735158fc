"""What the AI path needs to know about a module's text, read with the stdlib ``ast``.

Functions by qualname (as the analyser names them), the calls a function makes
itself, the module-local call graph, and which functions carry an autodurable
decorator.

Invariants:
- Pure: reads text, never imports or runs it.
- Qualnames follow the analyser (`autodurable._analysis`): ``f``, ``C.m``,
  ``f.<locals>.g``; functions inside ``if``/``try``/``with`` blocks count as
  the enclosing scope's.
- A function's *own* calls are those of its body and of lambdas in it, not of
  nested function or class definitions (those are functions of their own).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_BLOCKS = (ast.If, ast.Try, ast.TryStar, ast.With, ast.AsyncWith)


@dataclass(frozen=True)
class Function:
    """A function definition of a module."""

    qualname: str
    node: FunctionNode
    owner_class: str | None  # qualname of the class it is a method of, if any


def definitions(tree: ast.Module) -> dict[str, Function]:
    """Every function of the module by qualname (the first definition of a repeated name)."""
    found: dict[str, Function] = {}

    def visit(body: list[ast.stmt], prefix: str, owner: str | None) -> None:
        for node in body:
            if isinstance(node, FunctionNode):
                qualname = f"{prefix}{node.name}"
                found.setdefault(qualname, Function(qualname, node, owner))
                visit(node.body, f"{qualname}.<locals>.", None)
            elif isinstance(node, ast.ClassDef):
                qualname = f"{prefix}{node.name}"
                visit(node.body, f"{qualname}.", qualname)
            elif isinstance(node, _BLOCKS):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []), prefix, owner)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body, prefix, owner)

    visit(tree.body, "", None)
    return found


def own_nodes(node: FunctionNode) -> Iterator[ast.AST]:
    """The nodes of a function's body, not entering nested functions or classes."""
    stack: list[ast.AST] = list(reversed(node.body))
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, FunctionNode):
            # Decorators and defaults are evaluated in the enclosing function.
            stack.extend(reversed(current.decorator_list))
            stack.extend(d for d in current.args.defaults if d is not None)
            continue
        if isinstance(current, ast.ClassDef):
            stack.extend(reversed(current.decorator_list))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(current))))


def no_such_function(name: str, functions: dict[str, Function]) -> str:
    """What to say of a function name a plan gives that the module does not define."""
    known = ", ".join(sorted(functions)) or "none"
    return f"there is no function {name} in this module (its functions: {known})"


def callee(call: ast.Call) -> str:
    """The called expression as text, spaces normalised: ``payments.charge``."""
    return ast.unparse(call.func)


def own_calls(node: FunctionNode) -> list[ast.Call]:
    """The calls a function makes itself, in source order."""
    calls = [n for n in own_nodes(node) if isinstance(n, ast.Call)]
    return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def find_calls(function: Function, text: str) -> list[ast.Call]:
    """The calls of `function` whose callee reads `text` (``payments.charge``)."""
    wanted = normalise_callee(text)
    return [call for call in own_calls(function.node) if callee(call) == wanted]


def normalise_callee(text: str) -> str:
    """``payments . charge`` -> ``payments.charge``; the text itself if it is not an expression."""
    try:
        expression = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return text.strip()
    if isinstance(expression, ast.Call):  # "payments.charge(...)" names the callee too
        expression = expression.func
    return ast.unparse(expression)


def local_calls(functions: dict[str, Function]) -> dict[str, list[tuple[str, int]]]:
    """Module-local call graph: qualname -> [(called qualname, line)].

    Resolves plain names to module-level functions (or functions nested in the
    caller) and ``self.m`` / ``cls.m`` to methods of the caller's class. Calls
    through other objects or modules are not followed.
    """
    graph: dict[str, list[tuple[str, int]]] = {}
    for qualname, function in functions.items():
        out: list[tuple[str, int]] = []
        nested = f"{qualname}.<locals>."
        for call in own_calls(function.node):
            target: str | None = None
            func = call.func
            if isinstance(func, ast.Name):
                if f"{nested}{func.id}" in functions:
                    target = f"{nested}{func.id}"
                elif func.id in functions:
                    target = func.id
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in ("self", "cls")
                and function.owner_class is not None
                and f"{function.owner_class}.{func.attr}" in functions
            ):
                target = f"{function.owner_class}.{func.attr}"
            if target is not None:
                out.append((target, call.lineno))
        graph[qualname] = out
    return graph


def autodurable_names(tree: ast.Module) -> dict[str, str]:
    """Names the module binds to autodurable at top level: name -> what it is.

    ``import autodurable`` -> {"autodurable": "autodurable"};
    ``from autodurable import step as s`` -> {"s": "autodurable.step"}.
    """
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "autodurable" or alias.name.startswith("autodurable."):
                    bound = alias.asname or alias.name.partition(".")[0]
                    names[bound] = alias.name if alias.asname else "autodurable"
        elif isinstance(node, ast.ImportFrom) and node.module == "autodurable" and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"autodurable.{alias.name}"
    return names


def dotted(expression: ast.expr, names: dict[str, str]) -> str | None:
    """The autodurable name an expression refers to (``autodurable.step``), or None."""
    parts: list[str] = []
    while isinstance(expression, ast.Attribute):
        parts.append(expression.attr)
        expression = expression.value
    if not isinstance(expression, ast.Name) or expression.id not in names:
        return None
    return ".".join([names[expression.id], *reversed(parts)])


def durable_decorator(node: FunctionNode, names: dict[str, str]) -> tuple[str, ast.expr] | None:
    """("step" | "workflow", the decorator) when the function carries one, else None."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = dotted(target, names)
        if name in ("autodurable.step", "autodurable.workflow"):
            return name.rpartition(".")[2], decorator
    return None


def decorated_roles(tree: ast.Module) -> dict[str, str]:
    """qualname -> "step" / "workflow" for every function decorated with autodurable."""
    names = autodurable_names(tree)
    out: dict[str, str] = {}
    for qualname, function in definitions(tree).items():
        found = durable_decorator(function.node, names)
        if found is not None:
            out[qualname] = found[0]
    return out


def numbered(text: str) -> str:
    """The text with line numbers, as shown to a model."""
    lines = text.splitlines()
    width = len(str(len(lines)))
    return "\n".join(f"{n:>{width}} | {line}".rstrip() for n, line in enumerate(lines, 1))
