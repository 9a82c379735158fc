"""Top-level imports for the codemods: what binds a name, adding one, removing unused ones.

libcst's `AddImportsVisitor` and `RemoveImportsVisitor` each walk the whole
module with scope analysis; the codemods only ever touch top-level
``import x`` / ``from x import y`` lines, so these helpers look at the
module's top level alone and at the names it uses.

Invariants:
- An import is added after the module docstring, ``from __future__`` imports
  and the leading block of imports, and only if the same import is not there.
- An import is removed only when its name is no longer used anywhere (as a
  name, not as an attribute after a dot) nor listed in ``__all__``; comments
  above a removed line are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

__all__ = ["Names", "add_imports", "imported", "remove_unused", "top_level_imports", "used_names"]

Imported = tuple[str, str | None, str | None, str]  # module, object, alias, bound name


def _dotted(expression: cst.BaseExpression) -> str:
    if isinstance(expression, cst.Attribute):
        return f"{_dotted(expression.value)}.{expression.attr.value}"
    return expression.value if isinstance(expression, cst.Name) else ""


def imported(small: cst.BaseSmallStatement) -> list[Imported]:
    """(module, object, alias, bound name) of each name an import statement binds."""
    out: list[Imported] = []
    if isinstance(small, cst.Import):
        for alias in small.names:
            module = _dotted(alias.name)
            asname = _dotted(alias.asname.name) if alias.asname else None
            out.append((module, None, asname, asname or module.partition(".")[0]))
    elif (
        isinstance(small, cst.ImportFrom)
        and not small.relative
        and small.module is not None
        and not isinstance(small.names, cst.ImportStar)
    ):
        module = _dotted(small.module)
        for alias in small.names:
            obj = _dotted(alias.name)
            asname = _dotted(alias.asname.name) if alias.asname else None
            out.append((module, obj, asname, asname or obj))
    return out


def top_level_imports(module: cst.Module) -> list[Imported]:
    """Every name the module's top-level import lines bind."""
    return [
        found
        for statement in module.body
        if isinstance(statement, cst.SimpleStatementLine)
        for small in statement.body
        for found in imported(small)
    ]


class Names(cst.CSTVisitor):
    """The names a module uses (an attribute after a dot is not a name, nor is what an
    import binds), and the names its ``__all__`` lists."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.exported: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(_is_all(target.target) for target in node.targets):
            self._export(node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if _is_all(node.target):
            self._export(node.value)

    def _export(self, value: cst.BaseExpression) -> None:
        for element in getattr(value, "elements", ()):
            if isinstance(element.value, cst.SimpleString):
                text = element.value.evaluated_value
                if isinstance(text, str):
                    self.exported.add(text)


def _is_all(target: cst.BaseExpression) -> bool:
    return isinstance(target, cst.Name) and target.value == "__all__"


def used_names(module: cst.Module) -> Names:
    """The names `module` uses (imports not counted) and those its ``__all__`` lists."""
    names = Names()
    module.visit(names)
    return names


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body
    )


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def add_imports(module: cst.Module, modules: Sequence[str | tuple[str, str | None]]) -> cst.Module:
    """``import m`` (or ``import m as alias`` for a pair) for each of `modules` the module
    does not import that way yet."""
    wanted = [(m, None) if isinstance(m, str) else m for m in modules]
    present = {(m, asname) for m, obj, asname, _ in top_level_imports(module) if obj is None}
    missing = [pair for pair in dict.fromkeys(wanted) if pair not in present]
    if not missing:
        return module
    body = list(module.body)
    position = 1 if body and _is_docstring(body[0]) else 0
    while position < len(body) and _is_import_line(body[position]):
        position += 1
    body[position:position] = [
        cst.parse_statement(f"import {name}" + (f" as {alias}\n" if alias else "\n"))
        for name, alias in missing
    ]
    return module.with_changes(body=body)


def remove_unused(module: cst.Module, names: set[str]) -> cst.Module:
    """Remove the top-level imports binding `names` that nothing uses any more."""
    if not names:
        return module
    usage = used_names(module)
    unused = names - usage.names - usage.exported
    if not unused:
        return module
    body: list[cst.BaseStatement] = []
    carried: list[cst.EmptyLine] = []
    for statement in module.body:
        if carried:
            statement = statement.with_changes(leading_lines=[*carried, *statement.leading_lines])
            carried = []
        if not (isinstance(statement, cst.SimpleStatementLine) and _is_import_line(statement)):
            body.append(statement)
            continue
        kept_smalls = []
        for small in statement.body:
            kept = _without(small, unused)
            if kept is not None:
                kept_smalls.append(kept)
        if kept_smalls:
            last = kept_smalls[-1]
            kept_smalls[-1] = last.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            body.append(statement.with_changes(body=kept_smalls))
        else:
            carried = [line for line in statement.leading_lines if line.comment is not None]
    return module.with_changes(body=body)


def _without(small: cst.BaseSmallStatement, unused: set[str]) -> cst.BaseSmallStatement | None:
    """`small` without the aliases binding `unused` names (None if nothing is left)."""
    if not isinstance(small, cst.Import | cst.ImportFrom) or isinstance(
        small.names, cst.ImportStar
    ):
        return small
    found = imported(small)
    if len(found) != len(small.names):  # a relative import: not ours to touch
        return small
    aliases = [
        alias for alias, (*_, bound) in zip(small.names, found, strict=True) if bound not in unused
    ]
    if len(aliases) == len(small.names):
        return small
    if not aliases:
        return None
    aliases[-1] = aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    if isinstance(small, cst.ImportFrom) and small.rpar is not None and len(aliases) == 1:
        return small.with_changes(names=aliases, lpar=None, rpar=None)
    return small.with_changes(names=aliases)
