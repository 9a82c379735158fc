"""Tables filled by a registering decorator: tools of an agent, handlers of a bot.

::

    TOOLS = {}

    def tool(fn):
        TOOLS[fn.__name__] = fn
        return fn

    @tool
    def search(query): ...

``TOOLS`` holds every function decorated with ``@tool``: it is a dispatch table
(`ProjectIndex.tables`) like a literal one, so a call of what it holds
(``TOOLS[name](**args)``, ``TOOLS.get(name)``) calls each of them.

Invariants:
- By syntax alone, before the type passes: a registrar is a module-level
  function whose body stores its first parameter into a module-level name
  (``NAME[key] = fn`` or ``NAME.append(fn)``); a function is registered when one
  of its decorators names a registrar, called or not (``@tool``, ``@tool("x")``
  when ``tool`` itself stores it).
- A name that becomes a table is bound to its own reference in its module, so
  that it and every import of it resolve to the table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from ._catalogue import Catalogue
from ._scope import ModuleSymbols, ProjectIndex, Scope
from ._walk import statements

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
Definitions = Sequence[tuple[str, FunctionNode | ast.ClassDef]]


def find_registries(
    modules: Iterable[tuple[str, ast.Module, ModuleSymbols, Definitions]],
    index: ProjectIndex,
    catalogue: Catalogue,
) -> None:
    """Record the tables that registering decorators fill (see the module docstring).

    `modules`: each module's name, tree, symbols and definitions (qualname, node).
    """
    modules = list(modules)
    registrars = index.registrars  # with those of modules not analysed now (`_incremental`)
    sequences: set[str] = set()  # the tables filled by ``append``
    for module, tree, symbols, _ in modules:
        for node in tree.body:
            if isinstance(node, FunctionNode):
                stored = _stored_into(node, symbols)
                if stored is not None:
                    name, appended = stored
                    registrars[f"@{module}:{node.name}"] = table = f"@{module}:{name}"
                    if appended:
                        sequences.add(table)
    if not registrars:
        return
    sequences |= {table for table in registrars.values() if table in index.sequences}
    held: dict[str, list[str]] = {}
    for module, _, symbols, definitions in modules:
        scope = Scope(symbols, index, catalogue)
        for qualname, definition in definitions:
            if not isinstance(definition, FunctionNode):
                continue
            for decorator in definition.decorator_list:
                named = decorator.func if isinstance(decorator, ast.Call) else decorator
                filled = registrars.get(scope.resolve(named) or "")
                if filled is not None:
                    held.setdefault(filled, []).append(f"@{module}:{qualname}")
                    index.record_foreign(module, "held", filled, f"@{module}:{qualname}")
    by_module = {module: symbols for module, _, symbols, _ in modules}
    for table, refs in held.items():
        index.add_table(table, refs, table in sequences)
        module, _, name = table[1:].partition(":")
        if module in by_module:  # else not analysed now: its names are in the index
            by_module[module].names[name] = table  # the name, and its imports, are the table


def _stored_into(node: FunctionNode, symbols: ModuleSymbols) -> tuple[str, bool] | None:
    """The module-level name `node` stores its first parameter into, if it does, and
    whether it appends it (a sequence) rather than setting an item."""
    params = [*node.args.posonlyargs, *node.args.args]
    if not params:
        return None
    param = params[0].arg
    for statement in statements(node.body):
        target: ast.expr | None = None
        appended = False
        if isinstance(statement, ast.Assign) and _names(statement.value, param):
            target = next((t for t in statement.targets if isinstance(t, ast.Subscript)), None)
            target = target.value if target is not None else None
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            call = statement.value
            if (
                isinstance(call.func, ast.Attribute)
                and call.func.attr == "append"
                and len(call.args) == 1
                and _names(call.args[0], param)
            ):
                target, appended = call.func.value, True
        if isinstance(target, ast.Name) and target.id in symbols.names:
            return target.id, appended
    return None


def _names(node: ast.expr | None, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
