"""`StripDurableCommand`: take autodurable out of the source again (the inverse of make_durable).

For code that should go back to plain functions. It takes out what
make_durable wrote, and only that: what a person wrote by hand stays. Names are
resolved through the module's imports (``import autodurable as ad``, ``from
autodurable import step`` work too):

==========================================  =================================================
written by make_durable                     becomes
==========================================  =================================================
``@autodurable.step(unrecordable=...)``,    removed (options the AI rewrite added after
``@autodurable.workflow(unrecordable=...)``  ``unrecordable``, ``retries`` and ``timeout``,
(a block's ``name=`` first), ``@watched``    are reported as dropped)
``inline.run_step("n", lambda: E)``          ``E`` (also ``run_iterate``, and
                                             ``await inline.run_astep("n", lambda: E)``)
``inline.recorded("n", f, *args)``           ``f(*args)``
``autodurable.sleep``/``sleep_async``/       ``time.sleep``, ``asyncio.sleep``,
``now``/``random``/``uuid4``,                ``datetime.datetime.now``, ``random.random``,
``inline.shuffle``                           ``uuid.uuid4``, ``random.shuffle``
a with-block function run as one step        the with-statement again
==========================================  =================================================

What make_durable writes is told by its form (`written_by_codemod`): a step or
workflow decorator is a call whose keywords are ``unrecordable`` with a string,
after at most a ``name`` and before at most ``retries`` and ``timeout``;
``@autodurable.watched`` is the analyser's. Every other autodurable decorator
(bare ``@autodurable.step``, ``@workflow(name="x")``, ``@step(retries=3)``) is
hand-written and kept, and so is everything inside a function carrying one
(its clocks and sleeps are the author's). ``autodurable.proxy(...)`` and
``autodurable.options(...)`` are never written by make_durable, so they stay.
Output of make_durable from before this rule holds (``--unrecordable error``
wrote bare decorators, which now read as hand-written) is stripped except for
those.

Invariants:
- Only what make_durable writes changes; everything else is kept byte for
  byte. What has no plain equivalent (``idempotency_key()``,
  ``with autodurable.options(...)``, ``start``...) is left and reported, except
  inside a function decorated by hand, where it is the author's.
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

_DECORATORS = frozenset({"autodurable.step", "autodurable.workflow", "autodurable.watched"})
_BEFORE, _AFTER = frozenset({"name"}), frozenset({"retries", "timeout"})  # around unrecordable
_HAND_WRITTEN_ONLY = frozenset({"autodurable.proxy", "autodurable.options"})
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


def written_by_codemod(decorator: cst.BaseExpression, kind: str) -> bool:
    """Whether an autodurable decorator (`kind`: its resolved name) has make_durable's form.

    ``@autodurable.watched`` bare; a step or workflow decorator called with keywords only:
    at most ``name``, then ``unrecordable`` (a string), then at most ``retries`` and
    ``timeout`` (the options the AI rewrite adds to a step the codemod wrote).
    """
    if kind == "autodurable.watched":
        return not isinstance(decorator, cst.Call)
    if not isinstance(decorator, cst.Call):
        return False
    keywords = [a.keyword.value if a.keyword is not None and not a.star else None
                for a in decorator.args]  # fmt: skip
    if "unrecordable" not in keywords:
        return False
    at = keywords.index("unrecordable")
    value = decorator.args[at].value
    if not isinstance(value, cst.SimpleString) or value.evaluated_value not in ("rerun", "error"):
        return False
    before, after = keywords[:at], keywords[at + 1 :]
    return set(before) <= _BEFORE and set(after) <= _AFTER and len(set(keywords)) == len(keywords)


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
        self.by_hand: list[bool] = []  # per enclosing function: decorated by hand?

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

    def _kind(self, decorator: cst.Decorator) -> str | None:
        expression = decorator.decorator
        target = expression.func if isinstance(expression, cst.Call) else expression
        return self._is(target, _DECORATORS)

    def _hand_written(self) -> bool:
        return any(self.by_hand)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.by_hand.append(
            any(
                kind is not None and not written_by_codemod(d.decorator, kind)
                for d in node.decorators
                for kind in [self._kind(d)]
            )
        )

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> Any:
        self.by_hand.pop()
        kept: list[cst.Decorator] = []
        carried: list[cst.EmptyLine] = []  # comments above a removed decorator
        removed = False
        for original, decorator in zip(
            original_node.decorators, updated_node.decorators, strict=True
        ):
            expression = original.decorator
            kind = self._kind(original)
            if kind is None or not written_by_codemod(expression, kind):
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
            return updated_node  # ``autodurable.options(fn, ...)(args)``: hand-written
        names = self._names(original_node.func)
        if not any(n.startswith("autodurable") for n in names):
            return updated_node
        if names & _DECORATORS or names & _HAND_WRITTEN_ONLY:
            return updated_node  # a decorator (see leave_FunctionDef), or written by hand
        args = updated_node.args
        if names & _THUNKS and len(args) >= 2:
            thunk = args[1].value
            if isinstance(thunk, cst.Lambda) and not thunk.params.params:
                return _parenthesized(thunk.body)
            return updated_node  # a block function passed by name: see leave_IndentedBlock
        if f"{INLINE}.recorded" in names and len(args) >= 2:
            return updated_node.with_changes(func=args[1].value, args=args[2:])
        plain = next((_PLAIN[n] for n in names if n in _PLAIN), None)
        if self._hand_written() and not any(n.startswith(f"{INLINE}.") for n in names):
            return updated_node  # in a function decorated by hand: the author's
        if plain is not None:
            return updated_node.with_changes(func=self._plain(plain))
        if f"{INLINE}.run_astep" not in names:
            used = sorted(names)[0]
            self._warn(f"still uses {used}(): it has no plain equivalent and is left as is")
        return updated_node

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
        if self._hand_written():
            return updated_node
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
