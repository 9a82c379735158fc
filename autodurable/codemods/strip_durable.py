"""`StripDurableCommand`: take autodurable out of the source again (the inverse of make_durable).

For code that should go back to plain functions. Names are resolved through
the module's imports (``import autodurable as ad``, ``from autodurable import
step`` work too):

==========================================  =================================================
written by make_durable (or by hand)        becomes
==========================================  =================================================
``@autodurable.step(...)``, ``@workflow``    removed (options other than ``name`` and
                                             ``unrecordable`` are reported as dropped)
``_inline.run_step("n", lambda: E)``         ``E`` (also ``run_iterate``, and
                                             ``await _inline.run_astep("n", lambda: E)``)
``_inline.recorded("n", f, *args)``          ``f(*args)``
``autodurable.sleep``/``sleep_async``/       ``time.sleep``, ``asyncio.sleep``,
``now``/``random``/``uuid4``,                ``datetime.datetime.now``, ``random.random``,
``_inline.shuffle``                          ``uuid.uuid4``, ``random.shuffle``
a with-block function run as one step        the with-statement again
``autodurable.proxy(client, ...)``           ``client``
``autodurable.options(fn, ...)(args)``       ``fn(args)``
==========================================  =================================================

Invariants:
- Only autodurable's own calls and decorators change; everything else is kept
  byte for byte. What has no plain equivalent (``idempotency_key()``,
  ``with autodurable.options(...)``, ``start``...) is left and reported.
- Imports of autodurable are removed once nothing uses them; the standard
  library modules the plain calls need are imported (under a fresh alias when
  their name is taken by something else).
- Idempotent: a second run changes nothing (a file left without autodurable
  is skipped).
- Not a perfect inverse: annotations make_durable dropped from names a
  with-block shares stay dropped, and imports it removed come back at the end
  of the import block.
"""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.codemod import CodemodCommand, SkipFile
from libcst.metadata import QualifiedNameProvider

from ._imports import add_imports, remove_unused, top_level_imports, used_names
from .make_durable import INLINE, without_copy

__all__ = ["StripDurableCommand"]

_DECORATORS = frozenset({"autodurable.step", "autodurable.workflow"})
_THUNKS = frozenset({f"{INLINE}.run_step", f"{INLINE}.run_iterate"})
_PLAIN = {  # autodurable's durable versions -> the plain functions they stand for
    "autodurable.sleep": "time.sleep",
    "autodurable.sleep_async": "asyncio.sleep",
    "autodurable.now": "datetime.datetime.now",
    "autodurable.random": "random.random",
    "autodurable.uuid4": "uuid.uuid4",
    f"{INLINE}.shuffle": "random.shuffle",
    f"{INLINE}.sleep": "time.sleep",
    f"{INLINE}.sleep_async": "asyncio.sleep",
}
# make_durable's own options: dropping them loses nothing worth a warning
_KEPT_OPTIONS = frozenset({"name", "unrecordable"})


class StripDurableCommand(CodemodCommand):
    """Remove autodurable's decorators and recorded sites, back to plain Python."""

    DESCRIPTION = (
        "Take autodurable out of the source: remove @autodurable.step/@autodurable.workflow "
        "and turn recorded sites and durable clocks, randomness and sleeps back into plain calls."
    )
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """As libcst's, without its defensive copy of the tree (see `without_copy`)."""
        return without_copy(self, tree)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        """Strip the module (raises `SkipFile` when it does not mention autodurable)."""
        if "autodurable" not in tree.code:
            raise SkipFile("does not use autodurable")
        stripper = _Stripper(self, tree)
        result = cst.ensure_type(tree.visit(stripper), cst.Module)
        result = add_imports(result, stripper.needed)
        ours = {
            bound
            for module, _, _, bound in top_level_imports(tree)
            if module == "autodurable" or module.startswith("autodurable.")
        }
        return remove_unused(result, ours)


class _Stripper(cst.CSTTransformer):
    """The transformer: autodurable's decorators removed, its calls made plain again."""

    def __init__(self, command: StripDurableCommand, tree: cst.Module) -> None:
        super().__init__()
        self.command = command
        self.taken = used_names(tree).names | {b for *_, b in top_level_imports(tree)}
        self.imports = top_level_imports(tree)
        self.needed: list[tuple[str, str | None]] = []  # (module, alias) to import
        self.aliases: dict[str, str] = {}  # module -> the alias we import it as
        self.blocks: dict[int, cst.With] = {}  # id of a block function -> its with-statement

    def _names(self, node: cst.CSTNode) -> set[str]:
        found = self.command.get_metadata(QualifiedNameProvider, node, set())
        # Files codemodded before the helpers were public import them privately.
        return {q.name.replace("autodurable._inline.", f"{INLINE}.", 1) for q in found}

    def _warn(self, text: str) -> None:
        self.command.warn(text)

    def _is(self, node: cst.CSTNode, names: frozenset[str] | set[str]) -> str | None:
        found = self._names(node) & set(names)
        return next(iter(found)) if found else None

    # -- decorators and with-block functions ------------------------------------------

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> Any:
        kept: list[cst.Decorator] = []
        carried: list[cst.EmptyLine] = []  # comments above a removed decorator
        removed = False
        for original, decorator in zip(
            original_node.decorators, updated_node.decorators, strict=True
        ):
            expression = original.decorator
            target = expression.func if isinstance(expression, cst.Call) else expression
            kind = self._is(target, _DECORATORS)
            if kind is None:
                kept.append(
                    decorator.with_changes(leading_lines=[*carried, *decorator.leading_lines])
                )
                carried = []
                continue
            removed = True
            carried += decorator.leading_lines
            if isinstance(expression, cst.Call):
                dropped = [
                    a
                    for a in expression.args
                    if not (a.keyword and a.keyword.value in _KEPT_OPTIONS)
                ]
                if dropped:
                    options = ", ".join(_option(a) for a in dropped)
                    self._warn(
                        f"{original_node.name.value}: dropped the options of @{kind} ({options})"
                    )
        if not removed:
            return updated_node
        node = updated_node.with_changes(
            decorators=kept,
            lines_after_decorators=[*carried, *updated_node.lines_after_decorators],
        )
        block = _generated_block(node)
        if block is not None:
            self.blocks[id(node)] = block
        return node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> Any:
        if not self.blocks:
            return updated_node
        body = list(updated_node.body)
        out: list[cst.BaseStatement] = []
        i = 0
        while i < len(body):
            statement = body[i]
            function = statement if isinstance(statement, cst.FunctionDef) else None
            block = self.blocks.pop(id(function), None) if function is not None else None
            used = 0
            if function is not None and block is not None:
                used = _block_uses(body, i + 1, function.name.value)
            if function is None or block is None or not used:
                out.append(statement)
                i += 1
                continue
            lines = [*function.leading_lines, *function.lines_after_decorators]
            out.append(block.with_changes(leading_lines=lines))
            i += 1 + used
        return updated_node.with_changes(body=out)

    # -- calls ----------------------------------------------------------------------------

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> Any:
        if isinstance(original_node.func, cst.Call):
            return self._unwrap_options(original_node, updated_node)
        names = self._names(original_node.func)
        if not any(n.startswith("autodurable") for n in names):
            return updated_node
        if names & _DECORATORS:
            return updated_node  # a decorator: see leave_FunctionDef
        args = updated_node.args
        if names & _THUNKS and len(args) >= 2:
            thunk = args[1].value
            if isinstance(thunk, cst.Lambda) and not thunk.params.params:
                return _parenthesized(thunk.body)
            return updated_node  # a block function passed by name: see leave_IndentedBlock
        if f"{INLINE}.recorded" in names and len(args) >= 2:
            return updated_node.with_changes(func=args[1].value, args=args[2:])
        plain = next((_PLAIN[n] for n in names if n in _PLAIN), None)
        if plain is not None:
            return updated_node.with_changes(func=self._plain(plain))
        if "autodurable.proxy" in names and args and args[0].keyword is None:
            return _parenthesized(args[0].value)
        if f"{INLINE}.run_astep" not in names and "autodurable.options" not in names:
            used = sorted(names)[0]
            self._warn(f"still uses {used}(): it has no plain equivalent and is left as is")
        return updated_node

    def _unwrap_options(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        """``autodurable.options(fn, ...)(args)`` -> ``fn(args)``."""
        inner = original_node.func
        if not (isinstance(inner, cst.Call) and "autodurable.options" in self._names(inner.func)):
            return updated_node
        if not inner.args or inner.args[0].keyword is not None or inner.args[0].star:
            return updated_node
        return updated_node.with_changes(func=_parenthesized(inner.args[0].value))

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> Any:
        call, original = updated_node.expression, original_node.expression
        if not (
            isinstance(call, cst.Call) and isinstance(original, cst.Call) and len(call.args) >= 2
        ):
            return updated_node
        if f"{INLINE}.run_astep" not in self._names(original.func):
            return updated_node
        thunk = call.args[1].value
        if isinstance(thunk, cst.Lambda) and not thunk.params.params:
            return updated_node.with_changes(expression=_parenthesized(thunk.body))
        return updated_node

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> Any:
        for item in original_node.items:
            call = item.item
            if isinstance(call, cst.Call) and "autodurable.options" in self._names(call.func):
                self._warn("still uses `with autodurable.options(...)`: left as is")
        return updated_node

    def _plain(self, dotted: str) -> cst.BaseExpression:
        """An expression naming the plain function `dotted` here, importing what it needs."""
        parts = dotted.split(".")
        for module, obj, asname, bound in self.imports:
            full = module if obj is None else f"{module}.{obj}"
            if asname is None and obj is None:
                full = module.partition(".")[0]  # `import a.b` binds `a`
            for size in range(len(parts) - 1, 0, -1):
                if ".".join(parts[:size]) == full:
                    return cst.parse_expression(".".join([bound, *parts[size:]]))
        module = parts[0]
        if module in self.aliases:
            return cst.parse_expression(".".join([self.aliases[module], *parts[1:]]))
        if module not in self.taken:
            self.needed.append((module, None))
            self.imports.append((module, None, None, module))
            return cst.parse_expression(dotted)
        alias = f"_{module}"
        while alias in self.taken:
            alias = f"_{alias}"
        self.needed.append((module, alias))
        self.aliases[module] = alias
        return cst.parse_expression(".".join([alias, *parts[1:]]))


def _option(arg: cst.Arg) -> str:
    """``retries=...`` for a keyword option, the code itself for a positional one."""
    if arg.keyword is not None:
        return f"{arg.keyword.value}=..."
    return cst.Module([]).code_for_node(arg.value)


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    """`node` with parentheses when it could bind differently where a call stood."""
    atoms = (
        cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BaseString, cst.Integer,
        cst.Float, cst.Imaginary, cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp,
        cst.SetComp, cst.GeneratorExp, cst.Ellipsis,
    )  # fmt: skip
    if node.lpar or isinstance(node, atoms):
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _generated_block(node: cst.FunctionDef) -> cst.With | None:
    """The with-statement of a block function make_durable wrote, or None.

    Its shape: no parameters, ``global``/``nonlocal`` declarations, one
    with-statement, ``return {...}``.
    """
    params = node.params
    starred = isinstance(params.star_arg, cst.Param | cst.ParamStar) or params.star_kwarg
    if params.params or params.posonly_params or params.kwonly_params or starred:
        return None
    if not isinstance(node.body, cst.IndentedBlock):
        return None
    body = list(node.body.body)
    while (
        body
        and isinstance(body[0], cst.SimpleStatementLine)
        and all(isinstance(small, cst.Global | cst.Nonlocal) for small in body[0].body)
    ):
        body.pop(0)
    if len(body) != 2 or not isinstance(body[0], cst.With):
        return None
    last = body[1]
    if not (isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1):
        return None
    returned = last.body[0]
    if not (
        isinstance(returned, cst.Return) and isinstance(returned.value, cst.Dict | cst.DictComp)
    ):
        return None
    return body[0]


def _block_uses(body: list[cst.BaseStatement], start: int, function: str) -> int:
    """How many statements from `start` run block function `function` and bind its names
    again (0 when they are not what make_durable writes)."""
    if start >= len(body) or not isinstance(body[start], cst.SimpleStatementLine):
        return 0
    line = cst.ensure_type(body[start], cst.SimpleStatementLine)
    if len(line.body) != 1:
        return 0
    small = line.body[0]
    value: cst.BaseExpression | None = None
    bound: str | None = None
    if isinstance(small, cst.Expr):
        value = small.value
    elif isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
        if isinstance(target, cst.Name):
            value, bound = small.value, target.value
    if isinstance(value, cst.Await):
        value = value.expression
    if not (isinstance(value, cst.Call) and _runs(value, function)):
        return 0
    used = 1
    while bound is not None and start + used < len(body) and _rebinds(body[start + used], bound):
        used += 1
    return used


def _runs(call: cst.Call, function: str) -> bool:
    """``function()`` or ``..._inline.run_step("name", function)``."""
    if isinstance(call.func, cst.Name) and call.func.value == function and not call.args:
        return True
    return (
        len(call.args) == 2
        and isinstance(call.args[1].value, cst.Name)
        and call.args[1].value.value == function
    )


def _rebinds(statement: cst.BaseStatement, bound: str) -> bool:
    """``if "x" in bound: x = bound["x"]``."""
    if not isinstance(statement, cst.If) or statement.orelse is not None:
        return False
    test = statement.test
    if not (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.In)
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == bound
    ):
        return False
    return cst.Module([]).code_for_node(statement.body).strip().count("\n") == 0
