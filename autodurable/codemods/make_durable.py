"""`MakeDurableCommand`: write the durability plan into the source, as `autodurable run` applies it.

The plan is the analyser's, the very one the import hook uses (see `_plans`);
this command only writes it down. Each rewrite style of the hook
(`autodurable._hook._rewrite`) becomes source code:

============================  ==============================================================
plan                          written as
============================  ==============================================================
step, ``decorate``/``coarse``  ``@autodurable.step(unrecordable="rerun")``, added innermost,
step, ``watched``              ``@autodurable.watched`` (recorded only when a call of it,
                               in workflow code, does I/O: the analyser could not type it)
root workflow (configured)     below framework decorators (``@autodurable.workflow(...)``
                               for a workflow set in ``[tool.autodurable.roles]``)
inferred workflow              no decorator (as under the hook: only roots start workflows;
                               called from plain code it is plain code); its sites below
``step`` / ``iterate`` site    ``autodurable.inline.run_step("f:requests.get", lambda: ...)``
                               (``run_iterate``; ``discard=True`` for a statement)
``astep`` site                 ``await autodurable.inline.run_astep("f:...", lambda: ...)``
``recorded`` site              ``autodurable.now(...)``, ``autodurable.random()``,
                               ``autodurable.uuid4()`` where the public API has the very
                               function; else ``autodurable.inline.recorded("time.time",
                               time.time)``
``durable`` site               ``autodurable.sleep(...)``, ``autodurable.sleep_async(...)``,
                               ``autodurable.inline.shuffle(...)``
``block`` / ``ablock`` site    a local ``@autodurable.step(name="f:open", ...)`` function
                               holding the with-statement (sharing the names it binds:
                               ``nonlocal``/``global``), called at once; the names it bound
                               are bound again from its result (on replay it does not run)
manual / unsafe / plain        left as they are (unsafe ones with a warning)
============================  ==============================================================

The public API has no way to record an expression as a named step, least of
all one whose value is discarded (``conn.execute("INSERT ...")`` is recorded as
None, so that it is not run again on resume), so sites call the import hook's
own runtime helpers, `autodurable.inline`, by their full name: the very code
the hook runs, hence the same steps.

Invariants:
- Same functions, same roles, same step names as the hook (the clocks and
  random draws written as ``autodurable.now/random/uuid4`` are recorded under
  those names by both), and the same options
  (``unrecordable="rerun"``, as the hook's inferred steps have; option
  ``--unrecordable error`` writes ``unrecordable="error"``, the decorators'
  default, instead).
- What it writes has a form of its own, which ``--strip`` recognises and
  removes while leaving hand-written autodurable code alone (see
  `strip_durable`): step and workflow decorators always pass ``unrecordable``
  (after a block's ``name``), and the options the AI rewrite adds follow it.
- Only what the plan names changes: formatting and comments elsewhere are
  kept byte for byte. Sites are found by the analyser's positions, converted
  from UTF-8 byte columns (``ast``) to character columns (libcst); a site that
  matches nothing is left alone.
- Idempotent: what this command writes, the analyser reads back as decorated
  by hand (``manual``), so a second run changes nothing. Functions decorated
  by hand are never decorated again.
- The module's top level is never rewritten: under plain ``python`` it runs
  outside any workflow, where every recorded site would run plainly anyway.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import dataclasses
import functools
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import libcst as cst
from libcst.codemod import Codemod, CodemodCommand, CodemodContext, SkipFile
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

import autodurable
from autodurable._analysis import FunctionPlan, ModulePlan, Site
from autodurable._analysis._blocks import bound_names, declared_global
from autodurable._analysis._catalogue import public_recorded

from ._imports import add_imports, remove_unused, top_level_imports
from ._plans import project_for, standalone_plan

__all__ = [
    "INLINE",
    "MakeDurableCommand",
    "plan_changes",
    "plan_warnings",
    "without_copy",
]

INLINE = "autodurable.inline"  # the runtime helpers of the hook, imported by name
Key = tuple[int, int, int, int]


def without_copy(codemod: Codemod, tree: cst.Module) -> cst.Module:
    """Run `codemod` on `tree` with its metadata resolved on `tree` itself (not a copy)."""
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    previous = codemod.context
    with codemod.resolve(wrapper):
        codemod.context = dataclasses.replace(previous, wrapper=wrapper)
        try:
            return codemod.transform_module_impl(wrapper.module)
        finally:
            codemod.context = dataclasses.replace(codemod.context, wrapper=previous.wrapper)


def _rewritten_sites(plan: FunctionPlan) -> list[Site]:
    """The sites of a function that are rewritten (as the hook: not those of plain ones)."""
    return plan.sites if plan.role != "plain" or plan.style == "inline" else []


def plan_changes(plan: ModulePlan) -> bool:
    """Whether applying `plan` changes the module at all (without parsing it)."""
    if plan.opted_out:
        return False
    return any(f.decorated or _rewritten_sites(f) for f in plan.functions)


def plan_warnings(plan: ModulePlan, code: str) -> list[str]:
    """What the codemod reports about a module: functions left unchanged, and why."""
    lines = code.splitlines()
    out: list[str] = []
    for function in plan.functions:
        where = f"line {function.line}: {function.qualname}"
        if function.style == "unsafe":
            out.append(f"{where} left unchanged: {function.reason}")
        out += [f"{where}: {note}" for note in function.notes if not _ours(note, lines)]
    return out


def _ours(note: str, lines: list[str]) -> bool:
    """Whether a note about an I/O lambda is about a lambda we wrote (a recorded site).

    The analyser notes every lambda that does I/O, those given to the inline
    helpers included; a second run must not report its own sites as problems.
    """
    found = re.match(r"a lambda at line (\d+) ", note)
    if found is None or not 0 < int(found[1]) <= len(lines):
        return False
    return f"{INLINE}.run_" in lines[int(found[1]) - 1]


class _Columns:
    """Character columns (libcst) from UTF-8 byte columns (ast), line by line."""

    def __init__(self, code: str) -> None:
        # Lines as the tokenizer splits them: \n, \r\n and \r, nothing else.
        self._lines = io.StringIO(code, newline="").readlines()

    def char(self, line: int, byte_col: int) -> int:
        text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def key(self, site: Site) -> Key:
        return (
            site.line,
            self.char(site.line, site.col),
            site.end_line,
            self.char(site.end_line, site.end_col),
        )


@functools.lru_cache(maxsize=256)
def _code(expression: str) -> cst.BaseExpression:
    return cst.parse_expression(expression)  # nodes are immutable: one may stand in many places


def _statement(text: str) -> cst.BaseStatement:
    return cst.parse_statement(text)


class MakeDurableCommand(CodemodCommand):
    """Add ``@autodurable.step`` / ``@autodurable.workflow`` and recorded sites, per the plan."""

    DESCRIPTION = (
        "Write autodurable's durability plan into the source: the decorators, recorded "
        "I/O expressions and durable clocks, randomness and sleeps that `autodurable run` "
        "applies at import time."
    )
    METADATA_DEPENDENCIES = (PositionProvider,)

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        """``--unrecordable``: what an inferred step does with a result it cannot record."""
        arg_parser.add_argument(
            "--unrecordable",
            choices=("rerun", "error"),
            default="rerun",
            help="rerun (default, as `autodurable run`): a result that cannot be recorded makes "
            'the step run again on resume, written as unrecordable="rerun"; error: '
            'unrecordable="error", such a result fails the step',
        )

    def __init__(
        self,
        context: CodemodContext,
        unrecordable: str = "rerun",
        module_plan: ModulePlan | None = None,
    ) -> None:
        super().__init__(context)
        if unrecordable not in ("rerun", "error"):
            raise ValueError(f"unrecordable must be 'rerun' or 'error', not {unrecordable!r}")
        self.unrecordable = unrecordable
        self.module_plan = module_plan  # given by a caller that analysed the project already

    def _plan_for(self, tree: cst.Module) -> ModulePlan:
        if self.module_plan is not None:
            plan: ModulePlan | None = self.module_plan
        elif self.context.filename:
            plan, reason = project_for(self.context.filename, tree.code).lookup(
                self.context.filename
            )
            if plan is None:
                raise SkipFile(reason)
        else:
            plan = standalone_plan(tree.code, self.context.full_module_name or "module")
            if plan is None:
                raise SkipFile("does not parse")
        assert plan is not None
        if plan.opted_out:
            raise SkipFile("opted out (autodurable: off in its docstring)")
        return plan

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """As libcst's, but without its defensive copy of the whole tree first.

        The copy protects trees whose nodes are shared; a parsed module never
        shares nodes, and copying it costs as much as parsing it again.
        """
        return without_copy(self, tree)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        """Apply the plan of this module (raises `SkipFile` when it has none)."""
        plan = self._plan_for(tree)
        # PositionProvider's values are CodeRanges (libcst types all metadata as object).
        positions = cast("Mapping[cst.CSTNode, CodeRange]", self.metadata[PositionProvider])
        rewriter = _Rewriter(self, plan, tree.code, positions)
        if not rewriter.targets:
            return tree
        result = cst.ensure_type(tree.visit(rewriter), cst.Module)
        if not rewriter.changed:
            return tree
        needed = ["autodurable"] if rewriter.uses_public else []
        result = add_imports(result, needed + ([INLINE] if rewriter.uses_inline else []))
        dropped = {
            bound for _, _, _, bound in top_level_imports(tree) if bound in rewriter.dropped_roots
        }
        return remove_unused(result, dropped)


class _Rewriter(cst.CSTTransformer):
    """The transformer: decorators on planned functions, sites rewritten in place.

    Statements holding nothing the plan changes are not entered.
    """

    def __init__(
        self,
        command: MakeDurableCommand,
        plan: ModulePlan,
        code: str,
        positions: Mapping[cst.CSTNode, CodeRange],
    ) -> None:
        super().__init__()
        self.command = command
        self.positions = positions
        self.functions: dict[tuple[str, int], FunctionPlan] = {}
        self.sites: dict[Key, Site] = {}
        self.blocks: dict[tuple[int, int], Site] = {}
        self.block_context: dict[tuple[int, int], tuple[list[str], set[str] | None]] = {}
        self.qualname: list[str] = []
        self.pending: list[FunctionPlan | None] = []
        self.quotes: list[str] = []  # quotes of the f-strings we are inside
        self.names: set[str] = set()  # identifiers of the module, for fresh names
        self.dropped_roots: set[str] = set()  # names whose call we replaced
        self.uses_public = self.uses_inline = self.changed = False
        self._skipped: set[int] = set()
        self._prepare(plan, code)

    def _prepare(self, plan: ModulePlan, code: str) -> None:
        columns = _Columns(code)
        lines: set[int] = set()
        for warning in plan_warnings(plan, code):
            self.command.warn(warning)
        for function in plan.functions:
            if function.decorated:
                self.functions[(function.qualname, function.line)] = function
                lines.add(function.line)
            for site in _rewritten_sites(function):
                lines.add(site.line)
                if site.kind in ("block", "ablock"):
                    self.blocks[(site.line, columns.char(site.line, site.col))] = site
                else:
                    self.sites[columns.key(site)] = site
        self.targets = sorted(lines)
        if self.blocks:
            self.block_context = _block_context(
                code, {(s.line, s.col) for s in self.blocks.values()}
            )
        if self.targets:
            self.names = set(re.findall(r"[^\W\d]\w*", code))

    # -- helpers -------------------------------------------------------------------------

    def _key(self, node: cst.CSTNode) -> Key | None:
        found = self.positions.get(node)
        if found is None:
            return None
        return (found.start.line, found.start.column, found.end.line, found.end.column)

    def _touches(self, node: cst.CSTNode) -> bool:
        """Whether a target line lies within `node` (decorators included)."""
        found = self.positions.get(node)
        if found is None:
            return True
        first = found.start.line
        for decorator in getattr(node, "decorators", ()):
            where = self.positions.get(decorator)
            if where is not None:
                first = min(first, where.start.line)
        index = bisect.bisect_left(self.targets, first)
        return index < len(self.targets) and self.targets[index] <= found.end.line

    def _public(self, attr: str) -> cst.BaseExpression:
        self.uses_public = True
        return _code(f"autodurable.{attr}")

    def _inline(self, attr: str) -> cst.BaseExpression:
        self.uses_inline = True
        return _code(f"{INLINE}.{attr}")

    def _literal(self, text: str) -> str | None:
        """`text` as a string literal that may stand where we are (inside f-strings too)."""
        taken = {quote for quote in self.quotes if len(quote) == 1}
        for quote in ('"', "'"):
            if quote not in taken:
                return f"{quote}{text}{quote}"
        return None  # inside f-strings of both quotes: before 3.12 no literal fits

    def _fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def _left_alone(self, site: Site) -> None:
        self.command.warn(f"line {site.line}: {site.name} left unchanged: inside nested f-strings")

    # -- traversal -----------------------------------------------------------------------

    def on_visit(self, node: cst.CSTNode) -> bool:
        statement = isinstance(node, cst.SimpleStatementLine | cst.BaseCompoundStatement)
        if statement and not self._touches(node):
            self._skipped.add(id(node))
            return False  # nothing to change in there: not worth a visit
        return super().on_visit(node)

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        if id(original_node) in self._skipped:
            return updated_node
        result = super().on_leave(original_node, updated_node)
        if not self.sites or not isinstance(original_node, cst.BaseExpression):
            return result
        key = self._key(original_node)
        site = self.sites.get(key) if key is not None else None
        if site is None or result is not updated_node:
            return result
        if site.kind in ("step", "iterate") and not isinstance(original_node, cst.Await):
            runner = "run_iterate" if site.kind == "iterate" else "run_step"
            # An expression's updated node is an expression (of its class) again.
            expression = cast(cst.BaseExpression, updated_node)
            return self._thunk_call(runner, site, expression) or updated_node
        if site.kind == "astep" and isinstance(updated_node, cst.Await):
            call = self._thunk_call("run_astep", site, updated_node.expression)
            return updated_node.with_changes(expression=call) if call else updated_node
        return result

    # -- definitions ---------------------------------------------------------------------

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.qualname.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> Any:
        self.qualname.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        qualname = ".".join([*self.qualname, node.name.value])
        found = self.positions.get(node)
        line = found.start.line if found is not None else -1
        self.pending.append(self.functions.get((qualname, line)))
        self.qualname += [node.name.value, "<locals>"]

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> Any:
        del self.qualname[-2:]
        plan = self.pending.pop()
        if plan is None:
            return updated_node
        expression = f"autodurable.{plan.role}"
        if plan.style == "watched":
            expression = "autodurable.watched"  # no options: it records only what did I/O
        else:  # always with unrecordable: the form `--strip` knows as the codemod's
            expression += f'(unrecordable="{self.command.unrecordable}")'
        self.uses_public = self.changed = True
        # Innermost: framework decorators keep wrapping what they wrapped.
        decorator = cst.Decorator(decorator=_code(expression))
        return updated_node.with_changes(decorators=[*updated_node.decorators, decorator])

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self.quotes.append(node.quote)

    def leave_FormattedString(
        self, original_node: cst.FormattedString, updated_node: cst.FormattedString
    ) -> Any:
        self.quotes.pop()
        return updated_node

    # -- sites ---------------------------------------------------------------------------

    def _thunk_call(
        self, runner: str, site: Site, body: cst.BaseExpression
    ) -> cst.BaseExpression | None:
        literal = self._literal(site.name)
        if literal is None:
            self._left_alone(site)
            return None
        discard = ", discard=True" if site.discard else ""
        call = cst.ensure_type(_code(f"{INLINE}.{runner}({literal}, lambda: _{discard})"), cst.Call)
        self.uses_inline = self.changed = True
        if isinstance(body, cst.Tuple) and not body.lpar:
            body = body.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        thunk = cst.ensure_type(call.args[1].value, cst.Lambda).with_changes(body=body)
        args = list(call.args)
        args[1] = args[1].with_changes(value=thunk)
        return call.with_changes(args=args)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> Any:
        if not self.sites:
            return updated_node
        key = self._key(original_node.func)
        site = self.sites.get(key) if key is not None else None
        if site is None or site.kind not in ("recorded", "durable"):
            return updated_node
        if site.kind == "durable":
            attr = site.name.rpartition(":")[2]
            self.dropped_roots.add(_root_name(original_node.func))
            self.changed = True
            func = self._public(attr) if attr in autodurable.__all__ else self._inline(attr)
            return updated_node.with_changes(func=func)
        public = public_recorded(site.name, bool(updated_node.args))
        if public is not None:
            self.dropped_roots.add(_root_name(original_node.func))
            self.changed = True
            return updated_node.with_changes(func=self._public(public))
        literal = self._literal(site.name)
        if literal is None:
            self._left_alone(site)
            return updated_node
        self.changed = True
        args = [cst.Arg(cst.SimpleString(literal)), cst.Arg(updated_node.func), *updated_node.args]
        return updated_node.with_changes(func=self._inline("recorded"), args=args)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> Any:
        found = self.positions.get(original_node)
        if not self.blocks or found is None:
            return updated_node
        site = self.blocks.get((found.start.line, found.start.column))
        context = self.block_context.get((site.line, site.col)) if site else None
        if site is None or context is None or context[1] is None:
            return updated_node  # a block outside any function: top level, not rewritten
        literal = self._literal(site.name)
        if literal is None:  # pragma: no cover - a with-statement is never inside an f-string
            return updated_node
        self.changed = True
        return self._block(updated_node, site, literal, *context)

    def _block(
        self,
        node: cst.With,
        site: Site,
        literal: str,
        names: list[str],
        declared_global: set[str] | None,
    ) -> cst.FlattenSentinel[cst.BaseStatement]:
        """The with-statement as a local step function, then the names it bound bound again."""
        slug = re.sub(r"\W", "_", site.name.rpartition(":")[2].rpartition(".")[2]) or "block"
        function = self._fresh(f"_with_{slug}")
        shared_global = [n for n in names if declared_global and n in declared_global]
        shared_local = [n for n in names if n not in shared_global]
        body: list[cst.BaseStatement] = []
        if shared_global:
            body.append(_statement(f"global {', '.join(shared_global)}\n"))
        if shared_local:
            body.append(_statement(f"nonlocal {', '.join(shared_local)}\n"))
        inner = node.with_changes(leading_lines=())
        if names:  # a shared name cannot be annotated
            inner = cst.ensure_type(inner.visit(_DropAnnotations(set(names))), cst.With)
        body.append(inner)
        body.append(_statement(_returned(names, shared_global)))
        definition = cst.ensure_type(_statement(f"def {function}():\n    pass\n"), cst.FunctionDef)
        # Always "rerun", as the hook's blocks: the names a block binds are often handles.
        decorator = _code(f'autodurable.step(name={literal}, unrecordable="rerun")')
        definition = definition.with_changes(
            body=cst.IndentedBlock(body=body),
            asynchronous=cst.Asynchronous() if node.asynchronous else None,
            decorators=[cst.Decorator(decorator=decorator)],
            leading_lines=node.leading_lines,
        )
        self.uses_public = True
        call = f"{'await ' if node.asynchronous else ''}{function}()"
        statements: list[cst.BaseStatement] = [definition]
        if not names:
            statements.append(_statement(call + "\n"))
            return cst.FlattenSentinel(statements)
        bound = self._fresh(f"{function}_bound")
        statements.append(_statement(f"{bound} = {call}\n"))
        for name in names:  # on replay the block did not run: bind what it had bound
            rebind = f'if "{name}" in {bound}:\n    {name} = {bound}["{name}"]\n'
            statements.append(_statement(rebind))
        return cst.FlattenSentinel(statements)


def _returned(names: Sequence[str], shared_global: Sequence[str]) -> str:
    """The block function's return: the names it bound, in order (unbound ones left out).

    The comprehension's first iterable is evaluated in the block function itself,
    so ``locals()`` there are the block's (its ``nonlocal`` names included).
    """
    if not names:
        return "return {}\n"
    if not shared_global:
        return (
            "return {name: values[name] for values in [locals()] "
            f"for name in {_tuple(names)} if name in values}}\n"
        )
    pairs = ", ".join(
        f'("{name}", {"globals" if name in shared_global else "locals"}())' for name in names
    )
    return f"return {{name: values[name] for name, values in [{pairs}] if name in values}}\n"


def _tuple(names: Sequence[str]) -> str:
    """``("a", "b")`` (double quotes, as the rest of what we write)."""
    items = ", ".join(f'"{name}"' for name in names)
    return f"({items},)" if len(names) == 1 else f"({items})"


class _DropAnnotations(cst.CSTTransformer):
    """``x: T = v`` -> ``x = v`` and ``x: T`` -> ``pass`` for names the block shares."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested scope's annotations are its own

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign) -> Any:
        target = updated_node.target
        if not (isinstance(target, cst.Name) and target.value in self.names):
            return updated_node
        if updated_node.value is None:
            return cst.Pass(semicolon=updated_node.semicolon)
        return cst.Assign(
            targets=[cst.AssignTarget(target=target)],
            value=updated_node.value,
            semicolon=updated_node.semicolon,
        )


def _block_context(
    code: str, wanted: set[tuple[int, int]]
) -> dict[tuple[int, int], tuple[list[str], set[str] | None]]:
    """For each with-statement at (line, byte column): the names it binds, and the names
    its enclosing function declares global (None outside functions)."""
    found: dict[tuple[int, int], tuple[list[str], set[str] | None]] = {}
    stack: list[tuple[ast.AST, set[str] | None]] = [(ast.parse(code), None)]
    while stack:
        node, declared = stack.pop()
        if isinstance(node, ast.With | ast.AsyncWith):
            where = (node.lineno, node.col_offset)
            if where in wanted:
                found[where] = (bound_names(node), declared)
        for child in ast.iter_child_nodes(node):
            inner = declared
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = declared_global(child)
            elif isinstance(child, ast.ClassDef | ast.Lambda):
                inner = None
            stack.append((child, inner))
    return found


def _root_name(expression: cst.BaseExpression) -> str:
    """``time`` for ``time.sleep``, ``sleep`` for ``sleep``."""
    while isinstance(expression, cst.Attribute):
        expression = expression.value
    return expression.value if isinstance(expression, cst.Name) else ""
