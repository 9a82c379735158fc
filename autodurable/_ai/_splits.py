"""Splits of a rewrite plan: functions replaced by the model's code, checked first.

A split replaces one function by code that defines it again (same signature,
same decorators apart from autodurable's) and, around it, helper functions that
take its I/O apart. It is step 1 of `_apply.apply_plan`.

Invariants:
- Text in, text out, line ranges replaced bottom up; the result parses, or the
  problems say why not and the text is handed back unchanged.
- A split already applied (every function its code defines is in the module
  as written, autodurable's decorators aside) changes nothing and is said so.
- A helper never replaces a name the module (or the class) already binds.
"""

from __future__ import annotations

import ast
import textwrap
from typing import TYPE_CHECKING, Any

from ._schema import RewritePlan, Split
from ._source import Function, autodurable_names, definitions, dotted, no_such_function

if TYPE_CHECKING:
    from ._apply import Candidate


def apply_splits(text: str, tree: ast.Module, plan: RewritePlan, out: Candidate) -> str:
    """`text` with the plan's splits applied, or `text` itself and the problems in `out`."""
    functions = definitions(tree)
    seen: set[str] = set()
    edits: list[tuple[int, int, str]] = []  # first line, last line (1-based), new text
    newline = "\r\n" if "\r\n" in text else "\n"
    for index, split in enumerate(plan.splits):
        where = f"splits[{index}] ({split.function})"
        function = functions.get(split.function)
        if function is None:
            out.problems.append(f"{where}: {no_such_function(split.function, functions)}")
            continue
        if split.function in seen:
            out.problems.append(f"{where}: {split.function} is split twice; give one code for it")
            continue
        seen.add(split.function)
        if _applied(tree, functions, function, split):
            out.already.append(f"{split.function}: split as the plan says already")
            continue
        edit = _split_edit(text, tree, function, split, where, newline, out)
        if edit is not None:
            edits.append(edit)
    if out.problems:
        return text
    lines = text.splitlines(keepends=True)
    for first, last, new in sorted(edits, reverse=True):  # bottom up: earlier lines stay put
        lines[first - 1 : last] = [new]
    result = "".join(lines)
    try:
        ast.parse(result)
    except SyntaxError as exc:
        out.problems.append(f"splits: the module would not parse: {exc.msg} (line {exc.lineno})")
        return text
    return result


def _applied(
    tree: ast.Module, functions: dict[str, Function], function: Function, split: Split
) -> bool:
    """Whether the module holds the split's code already: every function it defines is
    there, at the same level, with the same body (decorators aside: the codemod adds
    autodurable's, and the rewrite may add idempotency keys to the helpers' calls)."""
    try:
        new = ast.parse(textwrap.dedent(split.code.replace("\r\n", "\n")))
    except SyntaxError:
        return False
    prefix = f"{function.owner_class}." if function.owner_class else ""
    defined = [n for n in new.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defined or len(defined) != len(new.body):
        return False
    for node in defined:
        present = functions.get(f"{prefix}{node.name}")
        if present is None:
            return False
        if node.name == function.node.name and _body(present.node) != _body(node):
            return False
    return True


def _body(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [ast.dump(statement) for statement in node.body]


def _split_edit(
    text: str,
    tree: ast.Module,
    function: Function,
    split: Split,
    where: str,
    newline: str,
    out: Candidate,
) -> tuple[int, int, str] | None:
    node = function.node
    if ".<locals>." in function.qualname:
        out.problems.append(f"{where}: nested functions cannot be split; split the outer one")
        return None
    code = textwrap.dedent(split.code.replace("\r\n", "\n")).strip("\n") + "\n"
    try:
        new = ast.parse(code)
    except SyntaxError as exc:
        out.problems.append(
            f"{where}: the code does not parse: {exc.msg} (line {exc.lineno} of the code)"
        )
        return None
    name = node.name
    defs = [n for n in new.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(defs) != len(new.body):
        out.problems.append(f"{where}: the code may hold only function definitions")
        return None
    same = [n for n in defs if n.name == name]
    if len(same) != 1:
        out.problems.append(f"{where}: the code must define {name} exactly once")
        return None
    replacement = same[0]
    if _signature(replacement) != _signature(node) or type(replacement) is not type(node):
        out.problems.append(
            f"{where}: {name} must keep its signature ({ast.unparse(node.args)}) and "
            f"{'async def' if isinstance(node, ast.AsyncFunctionDef) else 'def'}: its callers "
            "are not changed"
        )
        return None
    names = autodurable_names(tree)
    kept = [ast.unparse(d) for d in node.decorator_list if not _is_durable(d, names)]
    given = [ast.unparse(d) for d in replacement.decorator_list if not _is_durable(d, names)]
    if kept != given:
        shown = ", ".join(f"@{d}" for d in kept) or "none"
        out.problems.append(f"{where}: {name} must keep its decorators ({shown})")
        return None
    taken = _scope_names(tree, function)
    for helper in defs:
        if helper is not replacement and helper.name in taken:
            out.problems.append(
                f"{where}: the helper {helper.name} would replace a name the "
                f"{'class' if function.owner_class else 'module'} already defines; rename it"
            )
            return None
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    last = node.end_lineno or node.lineno
    lines = text.splitlines(keepends=True)
    indent = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
    if not _owns_lines(lines, first, last, node):
        out.problems.append(f"{where}: {name} shares its lines with other code; it cannot be split")
        return None
    body = "".join(
        (indent + line if line.strip() else line.lstrip(" \t")) for line in code.splitlines(True)
    )
    return first, last, body.replace("\n", newline)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Any]:
    """Parameter kinds, names and defaults (annotations may change)."""
    args = node.args
    return [
        [a.arg for a in args.posonlyargs],
        [a.arg for a in args.args],
        [a.arg for a in args.kwonlyargs],
        args.vararg.arg if args.vararg else None,
        args.kwarg.arg if args.kwarg else None,
        [ast.dump(d) for d in args.defaults],
        [ast.dump(d) if d is not None else None for d in args.kw_defaults],
    ]


def _is_durable(decorator: ast.expr, names: dict[str, str]) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (dotted(target, names) or "").startswith("autodurable.")


def _scope_names(tree: ast.Module, function: Function) -> set[str]:
    """The names bound where `function` is defined (the module, or its class)."""
    body: list[ast.stmt] = tree.body
    if function.owner_class is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == function.owner_class.split(".")[-1]:
                body = node.body
                break
    names: set[str] = set()
    for statement in body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(statement.name)
        elif isinstance(statement, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in statement.names)
        else:
            for target in ast.walk(statement):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    names.add(target.id)
    return names


def _owns_lines(lines: list[str], first: int, last: int, node: ast.AST) -> bool:
    """Whether lines first..last hold nothing but the definition (and comments)."""
    end_col = getattr(node, "end_col_offset", None)
    if end_col is None or last > len(lines):
        return False
    tail = lines[last - 1].encode("utf-8")[end_col:].decode("utf-8", errors="ignore").strip()
    return not tail or tail.startswith("#")
