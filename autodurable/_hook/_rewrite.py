"""`rewrite(tree, plan)`: apply a module's plan to its AST. Pure: no imports, no I/O.

Invariants:
- Decorators are added innermost (last in the list), so framework decorators
  (``@app.route``, ``@functools.cache``, ``@staticmethod``, ``@property``) wrap
  the durable function, not the other way round.
- Every new node takes the position of the node it replaces: line numbers in
  tracebacks are the original ones, and the source file is unchanged, so
  ``inspect.getsource`` still works.
- Functions are found by qualname and line (a qualname can be defined more
  than once); sites by position (line, column, end line, end column) and node
  type. A site that matches nothing is left alone (the plan came from the same
  source, so that only happens if they disagree, and then doing nothing is safe).
- A with-block site becomes a local function sharing the names the block binds
  (``nonlocal``, or ``global`` at module level and for names declared global);
  annotations of those names inside the block are dropped, since a shared name
  cannot be annotated (local annotations are never evaluated anyway; at module
  level the name is then missing from ``__annotations__``).
- Only statements whose lines hold a site or a function to decorate are
  visited; the rest of the tree is left as the parser made it (a cold start
  rewrites every module of the project).
- New nodes take their positions when they are made (`_located`), so the
  tree compiles without a pass over all of it.
- The helper module is imported once, as ``__autodurable__``, after the
  docstring and ``from __future__`` imports, and only if something uses it.
- Invisible outside workflow code: every recorded site is guarded by
  ``__autodurable__.workflow_code()`` (one C call), and when that is false the original
  expression or statement runs as it was written, in the original frame.
  Inferred steps are wrapped with a proxy that wrapt bypasses outside workflow
  code; inferred workflows are not wrapped at all (only roots start workflows),
  and a workflow that is a root (configured) is.
"""

from __future__ import annotations

import ast
import bisect
import copy
from typing import Any

from .._analysis import FunctionPlan, ModulePlan, Site
from .._analysis._blocks import bound_names, declared_global
from .._analysis._catalogue import recorded_step_name
from .._analysis._walk import child_nodes

HELPER = "__autodurable__"
Position = tuple[int, int, int, int]


def _position(node: ast.AST) -> Position:
    return (
        node.lineno,  # type: ignore[attr-defined]
        node.col_offset,  # type: ignore[attr-defined]
        node.end_lineno or node.lineno,  # type: ignore[attr-defined]
        node.end_col_offset or 0,  # type: ignore[attr-defined]
    )


def _helper(attr: str, at: ast.AST) -> ast.expr:
    node = ast.Attribute(value=ast.Name(id=HELPER, ctx=ast.Load()), attr=attr, ctx=ast.Load())
    return _located(node, at)


def _located(node: Any, at: ast.AST) -> Any:
    """Give the new nodes of `node` the position of `at`.

    Nodes that already have a position (the original code moved into a new
    node, or new nodes located before) are not entered: their subtrees are
    complete, so this stays proportional to what the rewrite added.
    """
    stack = [node]
    while stack:
        new = stack.pop()
        if "lineno" in new._attributes and getattr(new, "lineno", None) is not None:
            continue
        ast.copy_location(new, at)
        stack += child_nodes(new)
    return node


def rewrite(tree: ast.Module, plan: ModulePlan, *, script: bool = False) -> ast.Module:
    """Apply `plan` to `tree` (modified in place and returned).

    With `script`, the module's top level is rewritten too (the launched
    program's own statements are workflow code).
    """
    if plan.opted_out:
        return tree
    functions = {(p.qualname, p.line): p for p in plan.functions}
    sites: dict[Position, Site] = {}
    for function in plan.functions:
        if _sites_apply(function):
            for site in function.sites:
                sites[(site.line, site.col, site.end_line, site.end_col)] = site
    if script and plan.top_level is not None:
        for site in plan.top_level.sites:
            sites[(site.line, site.col, site.end_line, site.end_col)] = site
    site_lines = {site.line for site in sites.values()}
    lines = site_lines | {line for (_, line), p in functions.items() if p.decorated}
    transformer = _Rewriter(functions, sites, sorted(lines), site_lines)
    transformer.visit(tree)
    unsafe = not_durable(plan)
    if transformer.changed or unsafe:
        _insert_helper_import(tree)
    if unsafe:
        _insert_report(tree, unsafe)
    return tree


def not_durable(plan: ModulePlan) -> list[tuple[str, int, str]]:
    """(qualname, line, why) of the functions the plan cannot make durable safely
    (what ``explain --strict`` fails on): a rewritten module names them when the
    launcher runs it."""
    return [
        (f.qualname, f.line, f.notes[0] if f.notes else f.reason)
        for f in plan.functions
        if f.style == "unsafe" or f.notes
    ]


def _insert_report(tree: ast.Module, entries: list[tuple[str, int, str]]) -> None:
    """``__autodurable__.not_durable(__file__, (...))`` right after the helper import."""
    position = next(
        index
        for index, node in enumerate(tree.body)
        if isinstance(node, ast.Import) and node.names[0].asname == HELPER
    )
    anchor = tree.body[position]
    # compile() takes a tuple of constants in a Constant; typeshed lists scalars only.
    report = ast.Constant(tuple(entries))  # type: ignore[arg-type]
    call = ast.Call(
        func=ast.Attribute(ast.Name(HELPER, ast.Load()), "not_durable", ast.Load()),
        args=[ast.Name("__file__", ast.Load()), report],
        keywords=[],
    )
    statement = ast.Expr(call)
    for node in ast.walk(statement):
        ast.copy_location(node, anchor)
    tree.body.insert(position + 1, statement)


def changes(plan: ModulePlan) -> bool:
    """Whether `rewrite` changes a module (not run as the script) with this plan."""
    if plan.opted_out:
        return False
    return any(
        function.decorated or (function.sites and _sites_apply(function))
        for function in plan.functions
    ) or bool(not_durable(plan))


def _sites_apply(function: FunctionPlan) -> bool:
    """Whether the rewrite records the sites of `function` (workflow code, or inline)."""
    return function.role != "plain" or function.style == "inline"


def _in_workflow_code(at: ast.AST) -> ast.expr:
    """``__autodurable__.workflow_code()``: true exactly where a site is recorded."""
    return _located(ast.Call(func=_helper("workflow_code", at), args=[], keywords=[]), at)


def _guarded(recorded: Any, plain: Any, at: ast.AST) -> ast.expr:
    """``recorded if __autodurable__.workflow_code() else plain``."""
    return _located(ast.IfExp(test=_in_workflow_code(at), body=recorded, orelse=plain), at)


class _Rewriter(ast.NodeTransformer):
    def __init__(
        self,
        functions: dict[tuple[str, int], FunctionPlan],
        sites: dict[Position, Site],
        lines: list[int],
        site_lines: set[int],
    ) -> None:
        self.functions = functions
        self.sites = sites
        self.lines = lines  # sorted: where a site starts or a decorated function is defined
        self.site_lines = site_lines
        self.changed = False
        self._qualname: list[str] = []
        self._functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []  # enclosing ones

    def _touches(self, node: ast.stmt) -> bool:
        """Whether anything the plan changes starts inside `node`'s lines."""
        first, last = self._span(node)
        index = bisect.bisect_left(self.lines, first)
        return index < len(self.lines) and self.lines[index] <= last

    def _inside_touched(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Whether something other than `node`'s own decorator is to change in it."""
        first, last = self._span(node)
        marked = bisect.bisect_right(self.lines, last) - bisect.bisect_left(self.lines, first)
        own = node.lineno in self.lines and node.lineno not in self.site_lines
        return marked > (1 if own else 0)

    @staticmethod
    def _span(node: ast.stmt) -> tuple[int, int]:
        first = node.lineno
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([first, *(d.lineno for d in node.decorator_list)])
        return first, node.end_lineno or first

    # -- definitions: decorators, and qualnames to find them by ---------------------

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        qualname = ".".join([*self._qualname, node.name])
        plan = self.functions.get((qualname, node.lineno))
        if plan is not None and plan.decorated:
            # Innermost: framework decorators keep wrapping what they wrapped.
            prefix = "a" if isinstance(node, ast.AsyncFunctionDef) else ""
            kind = (
                "watched" if plan.style == "watched" else "step" if plan.role == "step" else "root"
            )
            node.decorator_list.append(_helper(prefix + kind, node))
            self.changed = True
        if not self._inside_touched(node):
            return node  # the usual case: a decorator, and nothing to change inside
        self._qualname += [node.name, "<locals>"]
        self._functions.append(node)
        self.generic_visit(node)
        self._functions.pop()
        del self._qualname[-2:]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _definition

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._qualname.append(node.name)
        self.generic_visit(node)
        self._qualname.pop()
        return node

    # -- sites --------------------------------------------------------------------

    def _site(self, node: ast.AST, *kinds: str) -> Site | None:
        site = self.sites.get(_position(node))
        return site if site is not None and site.kind in kinds else None

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.stmt) and not self._touches(node):
            return node  # nothing to change in there: not worth a visit
        if isinstance(node, ast.expr):
            site = self._site(node, "step", "iterate")
            if site is not None:
                return self._step(node, site)
        if isinstance(node, ast.Await):
            site = self._site(node, "astep")
            if site is not None:
                return self._astep(node, site)
        return super().visit(node)

    def _step(self, node: ast.expr, site: Site) -> ast.expr:
        self.changed = True
        thunk = _located(ast.Lambda(args=_no_args(), body=copy.deepcopy(node)), node)
        args: list[ast.expr] = [_located(ast.Constant(site.name), node), thunk]
        if site.discard:
            args.append(_located(ast.Constant(True), node))
        runner = "run_iterate" if site.kind == "iterate" else "run_step"
        call = _located(ast.Call(func=_helper(runner, node), args=args, keywords=[]), node)
        return _guarded(call, node, node)

    def _astep(self, node: ast.Await, site: Site) -> ast.expr:
        self.changed = True
        thunk = _located(ast.Lambda(args=_no_args(), body=copy.deepcopy(node.value)), node)
        args: list[ast.expr] = [_located(ast.Constant(site.name), node), thunk]
        if site.discard:
            args.append(_located(ast.Constant(True), node))
        call = ast.Call(func=_helper("run_astep", node), args=args, keywords=[])
        return _guarded(_located(ast.Await(value=_located(call, node)), node), node, node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        site = self.sites.get(_position(node.func))
        if site is None or site.kind not in ("recorded", "durable"):
            return node
        self.changed = True
        durable = copy.deepcopy(node)
        if site.kind == "durable":
            durable.func = _helper(site.name.rpartition(":")[2], node.func)
            return _guarded(durable, node, node)
        name = recorded_step_name(site.name, bool(node.args or node.keywords))
        args = [_located(ast.Constant(name), node), durable.func, *durable.args]
        call = ast.Call(func=_helper("recorded", node), args=args, keywords=durable.keywords)
        return _guarded(_located(call, node), node, node)

    def _with(self, node: ast.With | ast.AsyncWith) -> Any:
        site = self._site(node, "block", "ablock")
        if site is None:
            return self.generic_visit(node)
        self.changed = True
        declared = declared_global(self._functions[-1]) if self._functions else None
        plain = copy.deepcopy(node)
        recorded = _block(node, site, declared)
        return _located(ast.If(test=_in_workflow_code(node), body=recorded, orelse=[plain]), node)

    visit_With = visit_AsyncWith = _with


def _no_args() -> ast.arguments:
    return ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )


class _DropLocalAnnotations(ast.NodeTransformer):
    """``x: T = v`` -> ``x = v`` and ``x: T`` -> nothing, for names the block shares.

    A name declared nonlocal or global cannot be annotated. Annotations of a
    function's local names are never evaluated, so dropping them changes nothing
    there; at module level the name is just missing from ``__annotations__``.
    """

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        if not (isinstance(node.target, ast.Name) and node.target.id in self.names):
            return node
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)

    def _scope(self, node: ast.AST) -> ast.AST:
        return node  # a nested scope's annotations are its own

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _scope


def _block(
    node: ast.With | ast.AsyncWith, site: Site, declared_global: set[str] | None
) -> list[ast.stmt]:
    """A with-statement as a recorded step: a function that runs it and returns what it bound.

    `declared_global` is None at module level, else the names the enclosing
    function declares global (the block function declares them global too).
    """
    names = bound_names(node)
    function_name = f"__autodurable_block_{node.lineno}_{node.col_offset}__"
    values = "__autodurable_values__"
    body = _shared_names(names, declared_global)
    node = _DropLocalAnnotations(set(names)).visit(node)
    body.append(node)
    body.append(_assign(values, ast.Dict(keys=[], values=[])))
    body += [_store_if_bound(name, values) for name in names]
    body.append(ast.Return(value=ast.Name(id=values, ctx=ast.Load())))
    is_async = isinstance(node, ast.AsyncWith)
    definition_type = ast.AsyncFunctionDef if is_async else ast.FunctionDef
    definition = definition_type(
        name=function_name,
        args=_no_args(),
        body=body,
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    runner = "run_astep" if is_async else "run_step"
    call: ast.expr = ast.Call(
        func=_helper(runner, node),
        args=[ast.Constant(site.name), ast.Name(id=function_name, ctx=ast.Load())],
        keywords=[],
    )
    if is_async:
        call = ast.Await(value=call)
    result = "__autodurable_bound__"
    statements: list[ast.stmt] = [definition, _assign(result, call)]
    # on replay the block did not run: bind what it had bound
    statements += [_bind_if_recorded(name, result) for name in names]
    statements.append(
        ast.Delete(
            targets=[  # leave no trace in the namespace
                ast.Name(id=function_name, ctx=ast.Del()),
                ast.Name(id=result, ctx=ast.Del()),
            ]
        )
    )
    return [_located(statement, node) for statement in statements]


def _shared_names(names: list[str], declared_global: set[str] | None) -> list[ast.stmt]:
    """The block function's ``global`` and ``nonlocal`` declarations of the names it binds."""
    declarations: list[ast.stmt] = []
    if declared_global is None:
        shared_global, shared_local = list(names), []
    else:
        shared_global = [n for n in names if n in declared_global]
        shared_local = [n for n in names if n not in declared_global]
    if shared_global:
        declarations.append(ast.Global(names=shared_global))
    if shared_local:
        declarations.append(ast.Nonlocal(names=shared_local))
    return declarations


def _store_if_bound(name: str, values: str) -> ast.Try:
    """``try: values["name"] = name`` ``except NameError: pass``: record `name` if bound."""
    store = ast.Assign(
        targets=[
            ast.Subscript(
                value=ast.Name(id=values, ctx=ast.Load()),
                slice=ast.Constant(name),
                ctx=ast.Store(),
            )
        ],
        value=ast.Name(id=name, ctx=ast.Load()),
    )
    handler = ast.ExceptHandler(
        type=ast.Name(id="NameError", ctx=ast.Load()), name=None, body=[ast.Pass()]
    )
    return ast.Try(body=[store], handlers=[handler], orelse=[], finalbody=[])


def _bind_if_recorded(name: str, result: str) -> ast.If:
    """``if "name" in result: name = result["name"]``: bind `name` if the block had bound it."""
    return ast.If(
        test=ast.Compare(
            left=ast.Constant(name),
            ops=[ast.In()],
            comparators=[ast.Name(id=result, ctx=ast.Load())],
        ),
        body=[
            ast.Assign(
                targets=[ast.Name(id=name, ctx=ast.Store())],
                value=ast.Subscript(
                    value=ast.Name(id=result, ctx=ast.Load()),
                    slice=ast.Constant(name),
                    ctx=ast.Load(),
                ),
            )
        ],
        orelse=[],
    )


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=value)


def _insert_helper_import(tree: ast.Module) -> None:
    position = 0
    body = tree.body
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        position = 1  # after the docstring
    while (
        position < len(body)
        and isinstance(body[position], ast.ImportFrom)
        and body[position].module == "__future__"  # type: ignore[attr-defined]
    ):
        position += 1
    anchor = body[position] if position < len(body) else (body[-1] if body else None)
    node = ast.Import(names=[ast.alias(name="autodurable.inline", asname=HELPER)])
    for new in (node, node.names[0]):  # `_located` does not enter import aliases
        if anchor is not None:
            ast.copy_location(new, anchor)
        else:
            new.lineno, new.col_offset, new.end_lineno, new.end_col_offset = 1, 0, 1, 0
    body.insert(position, node)
