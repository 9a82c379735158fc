"""Facts about one function (or a module's top level): its I/O, its calls, its sites.

A *site* is a place in workflow code that the rewrite turns into a recorded
step without changing what the code computes:
- ``step`` / ``astep``: an expression chain starting at an I/O call
  (``requests.get(u).json()["x"]``); the chain's value is recorded. An
  expression statement's value is discarded (recorded as None). A call
  returning a live handle (``conn.execute(...)``, ``open(...)``) is a site only
  as an expression statement, where its value is not needed.
- ``iterate``: the iterable of a ``for`` that does I/O; recorded as a list.
- ``block`` / ``ablock``: a ``with`` / ``async with`` statement whose context
  manager is a live handle (``open``, a connection); the whole statement runs as
  one step that returns the names it binds.
- ``recorded``: a call of a clock or of randomness, recorded as a step (a
  chain on its result, ``datetime.now().isoformat()``, is one ``step`` site).
- ``durable``: a call replaced by its durable version (``time.sleep``).

Invariants:
- Positions are (line, column, end line, end column) of the AST, so the import
  hook (on ``ast``) and the codemod (on libcst) find the same places.
- When a function's I/O cannot be made into sites safely, ``inline_problem``
  says why; the function is then not rewritten inline.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from ._blocks import block_problem, class_cell
from ._catalogue import IO, NONDETERMINISTIC, PURE
from ._django import reads_related
from ._scope import TABLE, Scope, dict_get_default
from ._unresolved import suspicious
from ._walk import child_nodes, walk

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_STDLIB = frozenset(sys.stdlib_module_names)
_RELEASES = (".close", ".aclose")
# Builtins that consume an iterable at once.
_CONSUMERS = frozenset({"list", "tuple", "set", "len", "sorted", "sum", "min", "max", "any", "all"})

# The runtime helpers rewritten code calls, by their public name and by the private
# one files codemodded before the helpers were public still import.
HELPER_PREFIXES = ("autodurable.inline.", "autodurable._inline.")


@dataclass(frozen=True)
class Site:
    """A place in workflow code that becomes a recorded step."""

    kind: str  # step | astep | iterate | block | ablock | recorded | durable
    name: str  # the step name (or the replacement, for durable)
    line: int
    col: int
    end_line: int
    end_col: int
    discard: bool = False
    # What the site's step calls: catalogue names of I/O and "@module:qualname" of
    # project functions (their own APIs count too): what limits on APIs match.
    apis: tuple[str, ...] = ()

    @classmethod
    def at(
        cls, kind: str, name: str, node: ast.AST, discard: bool = False, apis: tuple[str, ...] = ()
    ) -> Site:
        """A site spanning `node`."""
        return cls(
            kind,
            name,
            node.lineno,  # type: ignore[attr-defined]
            node.col_offset,  # type: ignore[attr-defined]
            node.end_lineno or node.lineno,  # type: ignore[attr-defined]
            node.end_col_offset or 0,  # type: ignore[attr-defined]
            discard,
            apis,
        )


@dataclass(frozen=True)
class CallSite:
    """One call of interest: what it calls and where."""

    name: str
    line: int


@dataclass
class Facts:
    """What the analyser knows about one function or module top level."""

    io: list[CallSite] = field(default_factory=list)
    nondeterministic: list[CallSite] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)  # project functions ("@mod:qual")
    sites: list[Site] = field(default_factory=list)
    io_in_loop: bool = False
    lambda_io: list[CallSite] = field(default_factory=list)
    inline_problem: str | None = None
    returns_handle: CallSite | None = None
    # Calls that could not be typed and may be I/O (`_unresolved`): the function
    # is confirmed at run time, never made inline workflow code that re-runs them.
    unresolved: list[CallSite] = field(default_factory=list)
    # Method calls (``x.f(...)``) seen, and those on something the analyser could
    # not type: how much of a program's calls it follows (reported, not used).
    method_calls: int = 0
    untyped_calls: int = 0

    @property
    def direct(self) -> bool:
        """Whether it does I/O or nondeterminism itself."""
        return bool(self.io or self.nondeterministic)


_WRITE_MODES = set("wax+")


_HANDLERS: dict[type, Callable[[FactCollector, ast.AST], None]] = {}


_LEAVES = frozenset({ast.Name, ast.Constant})


class FactCollector(ast.NodeVisitor):
    """Collects `Facts` from a function body, not entering nested definitions."""

    def __init__(self, scope: Scope, owner: str, is_async: bool) -> None:
        self.scope = scope
        self.owner = owner  # qualname, or "<module>"
        self.is_async = is_async
        self.facts = Facts()
        self._loops = 0
        self._claimed: set[int] = set()  # ids of call nodes already inside a site
        self._path: list[ast.AST] = []  # the node being visited and its ancestors

    # -- entry points ---------------------------------------------------------

    def collect(self, body: list[ast.stmt]) -> Facts:
        """Visit a body and return the facts."""
        for statement in body:
            self.visit(statement)
        return self.facts

    def visit(self, node: ast.AST) -> None:
        """Visit `node`, keeping the path to it (chains climb to their root on it)."""
        path = self._path
        path.append(node)
        cls = type(node)
        handler = _HANDLERS.get(cls)
        if handler is None:  # ``NodeVisitor.visit``'s lookup, done once per node type
            handler = getattr(FactCollector, f"visit_{cls.__name__}", FactCollector.generic_visit)
            _HANDLERS[cls] = handler
        handler(self, node)
        path.pop()

    def generic_visit(self, node: ast.AST) -> None:
        """Visit the children that can hold calls (not contexts or operators)."""
        for child in child_nodes(node):
            if type(child) not in _LEAVES:  # the commonest nodes: not worth a visit
                self.visit(child)

    def visit_Name(self, node: ast.AST) -> None:
        return  # a leaf: nothing to collect (and the most common node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in self.scope.index.foreign_key_names and isinstance(node.ctx, ast.Load):
            related = reads_related(self.scope, node)
            if related is not None:
                # ``book.author``: the related row is loaded when read. No site can
                # record an attribute read, so the function is one step.
                self.facts.io.append(CallSite(related, node.lineno))
                self._problem(f"a read of the related {related} at line {node.lineno}")
        self.visit(node.value)

    visit_Constant = visit_Name

    # -- nested scopes are other units -----------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        return  # its methods are units of their own

    def visit_comprehension(self, node: ast.comprehension) -> None:
        lazy = self._lazy(node.iter)
        if lazy is not None:  # ``sum(o.total for o in queryset)``: the query runs here
            self.facts.io.append(CallSite(lazy, node.iter.lineno))
            self._problem(f"a {lazy} iterated in a comprehension at line {node.iter.lineno}")
        self.generic_visit(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        parent = self._path[-2] if len(self._path) > 1 else None
        if parent is not None and self._records(parent):
            return  # the thunk of a recorded expression (codemodded code): already a step
        for call in [n for n in walk(node.body) if isinstance(n, ast.Call)]:
            name = self.scope.callee(call)
            if name is not None and name.startswith("@"):
                self._project_call(name, call.lineno)  # run when something calls the lambda
            elif name is not None and self.scope.catalogue.kind(name) == IO:
                # The lambda runs when something calls it (a pool, a sort): I/O of
                # this function that no site can record.
                self.facts.lambda_io.append(CallSite(name, call.lineno))
                self.facts.io.append(CallSite(name, call.lineno))
                self._problem(f"a lambda at line {call.lineno} calls {name}")

    # -- statements that open sites ----------------------------------------------

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        if isinstance(node, ast.For | ast.AsyncFor):
            self.visit(node.target)
            self._iterable(node.iter, isinstance(node, ast.AsyncFor))
        self._loops += 1
        if isinstance(node, ast.While):
            self.visit(node.test)  # evaluated on every round
        for statement in node.body:
            self.visit(statement)
        self._loops -= 1
        for statement in node.orelse:
            self.visit(statement)

    visit_For = visit_AsyncFor = visit_While = _loop

    def _iterable(self, expr: ast.expr, is_async: bool) -> None:
        lazy = self._lazy(expr)
        if lazy is not None and not is_async and self._chain_problem(expr) is None:
            # ``for order in Order.objects.filter(...)``: iterating runs the query.
            self.facts.io.append(CallSite(lazy, expr.lineno))
            if self._loops:
                self.facts.io_in_loop = True
            self.facts.sites.append(Site.at("iterate", f"{self.owner}:{lazy}", expr))
            self._claim(expr)
            return
        calls = self._io_calls(expr)
        recordable = not is_async and not any(self._handle_call(c) for c in calls)
        if calls and recordable and self._chain_problem(expr) is None:
            self._record_io(calls)
            origin = self._chain_origin(calls[0], IO)
            self.facts.sites.append(Site.at("iterate", self._step_name(origin), expr))
            self._claim(expr)
            return
        self.visit(expr)

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        # A handle opened by I/O (a file, a connection); not a client whose making
        # is pure (``async with httpx.AsyncClient() as client``): its block holds the
        # calls that use it, each recorded where it is.
        handles: list[ast.expr] = [
            item.context_expr
            for item in node.items
            if isinstance(item.context_expr, ast.Call)
            and self._handle_call(item.context_expr)
            and self._kind(item.context_expr) != PURE
        ]
        # A database transaction (``with transaction.atomic():``, ``with conn:``) is
        # one step with all it holds: recorded piece by piece, a crash inside it
        # would replay writes that its rollback undid.
        found = (self._transaction(item.context_expr) for item in node.items)
        transaction = next((t for t in found if t is not None), None)
        calls = [c for c in walk(node) if isinstance(c, ast.Call) and self._is_io(c)]
        if transaction is not None and not self._does_anything(node.body):
            transaction = None  # ``with session.begin(): yield session``: a provider
        if not handles and transaction is None:
            self.generic_visit(node)
            return
        since = self._since()
        if transaction is not None:
            handles.append(transaction[1])
            if not any(call is transaction[1] for call in calls):
                self.facts.io.append(CallSite(transaction[0], node.lineno))
        self._record_io(calls)
        self._claim(node)
        problem = block_problem(node)
        if problem is not None:
            self._problem(f"{problem} inside the with-block at line {node.lineno}")
        else:
            kind = "ablock" if isinstance(node, ast.AsyncWith) else "block"
            name = self._step_name(handles[0])
            self.facts.sites.append(Site.at(kind, name, node, apis=self._apis(since)))
        if self._loops:
            self.facts.io_in_loop = True

    visit_With = visit_AsyncWith = _with

    # -- calls ------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        if id(node) in self._claimed:
            return
        name = self.scope.callee(node)
        kind = self._call_kind(node, name)
        if node.args or node.keywords:
            self._references(node)
        known = name is not None and self._known(name, kind)
        if isinstance(node.func, ast.Attribute):
            self.facts.method_calls += 1
            self.facts.untyped_calls += not known
        if not known and suspicious(node):
            self.facts.unresolved.append(CallSite(ast.unparse(node.func), node.lineno))
        lazy = self._lazy(node.args[0]) if name in _CONSUMERS and node.args else None
        if lazy is not None:
            self._io_site(node, lazy)  # ``list(queryset)``, ``len(queryset)``: the query runs
            return
        if name is not None and name.startswith("@"):
            self._project_call(name, node.lineno)
        elif name in self.scope.catalogue.durable:
            self.facts.sites.append(
                Site.at("durable", self.scope.catalogue.durable[name], node.func)
            )
            if kind == NONDETERMINISTIC:  # ``random.shuffle``: randomness, recorded
                self.facts.nondeterministic.append(CallSite(name, node.lineno))
        elif kind == NONDETERMINISTIC:
            origin = self._chain_origin(node, NONDETERMINISTIC)
            root, parent, _ = self._chain_root()
            if root is not origin and self._chain_problem(root) is None:
                # ``datetime.now().strftime(f)``: the chain's value is recorded, as one step.
                where = CallSite(self.scope.callee(origin) or name, origin.lineno)  # type: ignore[arg-type]
                self.facts.nondeterministic.append(where)
                discard = isinstance(parent, ast.Expr)
                step = Site.at("step", self._step_name(origin), root, discard=discard)
                self.facts.sites.append(step)
                self._claim(root)
                return
            self.facts.nondeterministic.append(CallSite(name, node.lineno))  # type: ignore[arg-type]
            self.facts.sites.append(Site.at("recorded", name, node.func))  # type: ignore[arg-type]
        elif kind == IO:
            origin = self._chain_origin(node, IO)
            self._io_site(origin, self.scope.callee(origin) or name)  # type: ignore[arg-type]
            return
        self.generic_visit(node)

    def _io_site(self, call: ast.Call, name: str) -> None:
        since = self._since()
        self.facts.io.append(CallSite(name, call.lineno))
        if self._loops:
            self.facts.io_in_loop = True
        root, parent, grandparent = self._chain_root()
        self._claim(root)
        for inner in walk(root):  # I/O nested in the chain is part of the same step
            if isinstance(inner, ast.Call) and inner is not call and self._is_io(inner):
                self.facts.io.append(CallSite(self.scope.callee(inner) or "?", inner.lineno))
        statement = isinstance(parent, ast.Expr)
        if self._handle_call(call) and root is call and not statement:
            if self._writes_file(call, name):
                self._problem(
                    f"{name}() for writing outside a with-block at line {call.lineno} would "
                    "truncate the file again on resume"
                )
            return  # a live handle: cannot be recorded, runs again on resume
        problem = self._chain_problem(root)
        if problem is not None:
            self._problem(f"{problem} at line {call.lineno}")
            return
        if isinstance(parent, ast.Await):
            discard = isinstance(grandparent, ast.Expr)
            self.facts.sites.append(
                Site.at("astep", self._step_name(call), parent, discard, self._apis(since))
            )
        else:
            discard = isinstance(parent, ast.Expr)
            self.facts.sites.append(
                Site.at("step", self._step_name(call), root, discard, self._apis(since))
            )

    # -- helpers ------------------------------------------------------------------

    def _since(self) -> tuple[int, int]:
        """Where the I/O and project calls noted from now on start (see `_apis`)."""
        return len(self.facts.io), len(self.facts.calls)

    def _apis(self, since: tuple[int, int]) -> tuple[str, ...]:
        """The I/O and project functions noted since `since`: what a site calls."""
        io = [call.name for call in self.facts.io[since[0] :]]
        project = [call.name for call in self.facts.calls[since[1] :]]
        return tuple(dict.fromkeys(io + project))

    def _claim(self, node: ast.AST) -> None:
        """Mark the calls under `node` as part of one site; still note the project calls.

        A project function called inside a site runs inside that site's step, but
        it is called all the same: role propagation must see it.
        """
        self._claimed.update(id(inner) for inner in walk(node))
        stack: list[ast.AST] = [node]
        while stack:
            inner = stack.pop()
            if isinstance(inner, ast.Call):
                name = self.scope.callee(inner)
                if name is not None and name.startswith("@"):
                    self._project_call(name, inner.lineno)
            if not isinstance(inner, FunctionNode | ast.ClassDef | ast.Lambda):
                stack.extend(child_nodes(inner))

    def _lazy(self, expr: ast.expr) -> str | None:
        """The type of `expr` if iterating over it is I/O (a queryset), else None."""
        found = self.scope.resolve(expr)
        return self.scope.lazy_type(found)

    def _known(self, name: str, kind: str | None) -> bool:
        """Whether a resolved callee is something definite: catalogued, the standard
        library's, a builtin, or a function or class of the project (not
        ``@mod:C.unset_attr.get``, not an uncatalogued third-party package)."""
        if not name.startswith("@"):
            top, dot, _ = name.partition(".")
            return kind is not None or not dot or top in _STDLIB
        index = self.scope.index
        owner = name[:-2] if name.endswith("()") else name
        return (
            ":" not in owner
            or owner in index.functions
            or owner in index.classes
            or owner.startswith(TABLE)
        )

    def _named(self, node: ast.expr) -> bool:
        """Whether `node` names a function through modules and classes only
        (``os.path.getmtime``), not an attribute of a value (``resp.text``)."""
        while isinstance(node, ast.Attribute):
            node = node.value
        if not isinstance(node, ast.Name):
            return False
        root = self.scope.resolve(node)
        return root is not None and not root.endswith("()")

    def _project_call(self, name: str, line: int) -> None:
        """Note a call of the project's `name`; making an instance calls its ``__init__``;
        calling out of a dispatch table may call any function it holds."""
        index = self.scope.index
        if name.startswith(TABLE):
            for held in index.tables.get(name[len(TABLE) :], []):
                if held in index.functions:
                    self.facts.calls.append(CallSite(held, line))
            return
        self.facts.calls.append(CallSite(name, line))
        if name in index.classes:
            init = index.member(name, "__init__")
            if init is not None and init.startswith("@"):
                self.facts.calls.append(CallSite(init, line))

    def _step_name(self, call: ast.expr) -> str:
        name = self.scope.callee(call) if isinstance(call, ast.Call) else None
        return f"{self.owner}:{name or 'io'}"

    def _kind(self, call: ast.Call) -> str | None:
        return self._call_kind(call, self.scope.callee(call))

    def _call_kind(self, call: ast.Call, name: str | None) -> str | None:
        if name is None or name.startswith("@") or name.endswith(_RELEASES):
            return None  # closing a handle releases it: no effect to record or replay
        positional = len(call.args)
        return self.scope.catalogue.call_kind(name, positional, bool(positional or call.keywords))

    def _references(self, node: ast.Call) -> None:
        """Functions passed to be called elsewhere (``pool.map(fetch, urls)``,
        ``Thread(target=work)``, ``sorted(paths, key=os.path.getmtime)``): a project
        function is called all the same; an I/O function is I/O this function starts,
        which no site can record."""
        values = [*node.args, *(k.value for k in node.keywords)]
        if dict_get_default(node) is not None:
            values = [node.args[0]]  # ``TOOLS.get(name, search)`` returns the default
        for value in values:
            if not isinstance(value, ast.Name | ast.Attribute):
                continue
            ref = self.scope.resolve(value)
            if ref is None or ref.endswith("()"):
                continue
            if ref.startswith("@"):
                if ref in self.scope.index.functions:
                    self.facts.calls.append(CallSite(ref, value.lineno))
            elif "." in ref and self._named(value) and self.scope.catalogue.kind(ref) == IO:
                self.facts.io.append(CallSite(ref, value.lineno))
                self._problem(f"{ref} is passed at line {value.lineno} to be called elsewhere")
                if self._loops:
                    self.facts.io_in_loop = True

    def _is_io(self, call: ast.Call) -> bool:
        return self._kind(call) == IO

    def _records(self, node: ast.AST) -> bool:
        """Whether `node` calls one of the hook's recording helpers (``autodurable.inline``)."""
        return isinstance(node, ast.Call) and (self.scope.callee(node) or "").startswith(
            HELPER_PREFIXES
        )

    def _io_calls(self, expr: ast.expr) -> list[ast.Call]:
        """The I/O calls in `expr`, breadth-first, but not those in the thunks of recorded
        expressions (codemodded code: ``run_iterate(..., lambda: ...)`` is a step already)."""
        nodes: list[ast.AST] = [expr]
        index = 0
        while index < len(nodes):
            node = nodes[index]
            index += 1
            children = child_nodes(node)
            if self._records(node):
                children = [c for c in children if not isinstance(c, ast.Lambda)]
            nodes += children
        return [c for c in nodes if isinstance(c, ast.Call) and self._is_io(c)]

    def _record_io(self, calls: list[ast.Call]) -> None:
        for call in calls:
            self.facts.io.append(CallSite(self.scope.callee(call) or "?", call.lineno))
        if calls and self._loops:
            self.facts.io_in_loop = True

    def _transaction(self, expr: ast.expr) -> tuple[str, ast.expr] | None:
        """(what, expr) if `expr`, as a context manager, is a database transaction."""
        ref = self.scope.callee(expr) if isinstance(expr, ast.Call) else self.scope.resolve(expr)
        if ref is None or not self.scope.catalogue.opens_transaction(ref):
            return None
        return ref.removesuffix("()"), expr

    def _does_anything(self, body: list[ast.stmt]) -> bool:
        """Whether `body` does I/O or calls a function of the project (maybe a step)."""
        return any(
            isinstance(node, ast.Call)
            and (self._is_io(node) or (self.scope.callee(node) or "").startswith("@"))
            for statement in body
            for node in walk(statement)
        )

    def _handle_call(self, call: ast.Call) -> bool:
        name = self.scope.callee(call)
        return bool(name) and self.scope.catalogue.is_handle(name)  # type: ignore[arg-type]

    @staticmethod
    def _writes_file(call: ast.Call, name: str) -> bool:
        if name not in ("open", "io.open"):
            return False
        mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
        for keyword in call.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
        return (
            isinstance(mode, ast.Constant)
            and isinstance(mode.value, str)
            and bool(_WRITE_MODES & set(mode.value))
        )

    def _chain_origin(self, call: ast.Call, kind: str) -> ast.Call:
        """The innermost call of `kind` in a chain: ``requests.get(u)`` in
        ``requests.get(u).json()``."""
        node = call
        while True:
            inner: ast.expr = node.func
            while isinstance(inner, ast.Attribute | ast.Subscript):
                inner = inner.value
            if isinstance(inner, ast.Call) and inner is not node and self._kind(inner) == kind:
                node = inner
            else:
                return node

    def _chain_root(self) -> tuple[ast.expr, ast.AST | None, ast.AST | None]:
        """The chain holding the call being visited, and the chain's parent and grandparent.

        Climbs from the call through attribute, subscript and method-call links.
        The chain's origin (`_chain_origin`) hangs below the visited call by such
        links only, so climbing from either gives the same root.
        """
        path = self._path
        at = len(path) - 1
        while at > 0:
            node, parent = path[at], path[at - 1]
            if isinstance(parent, ast.Attribute | ast.Subscript) and not isinstance(
                parent.ctx, ast.Load
            ):
                break  # an assignment target (``get(u)["k"] = v``) is no expression
            if (isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is node) or (
                isinstance(parent, ast.Call) and parent.func is node
            ):
                at -= 1
            else:
                break
        chain_parent = path[at - 1] if at > 0 else None
        chain_grandparent = path[at - 2] if at > 1 else None
        return path[at], chain_parent, chain_grandparent  # type: ignore[return-value]

    @staticmethod
    def _chain_problem(root: ast.expr) -> str | None:
        for inner in walk(root):
            if isinstance(inner, ast.Yield | ast.YieldFrom):
                return "a yield inside an I/O expression"
            if isinstance(inner, ast.NamedExpr):
                return "an assignment expression (:=) inside an I/O expression"
            if isinstance(inner, ast.Await):
                return "an await inside an I/O expression"
            if class_cell(inner):
                return "a super() call inside an I/O expression"
        return None

    def _problem(self, text: str) -> None:
        if self.facts.inline_problem is None:
            self.facts.inline_problem = text


def in_transaction(scope: Scope, node: FunctionNode, facts: Facts) -> None:
    """A function decorated to run in one database transaction (``@transaction.atomic``)
    is one step with all it calls: recorded piece by piece, a crash inside it would
    replay writes that its rollback undid. Notes that on `facts`."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        ref = scope.resolve(target)
        if ref is None or not scope.catalogue.opens_transaction(ref):
            continue
        if facts.direct or facts.calls or facts.unresolved:
            facts.io.append(CallSite(ref, node.lineno))
            if facts.inline_problem is None:
                facts.inline_problem = f"it runs in one database transaction (@{ref})"
        return


def returns_handle(scope: Scope, nodes: list[ast.stmt]) -> CallSite | None:
    """If the function returns a live handle (``return sqlite3.connect(...)``): which, where.

    `nodes` are the function's own statements (`_walk.own_statements`).
    """
    for node in nodes:
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            name = scope.callee(node.value)
            if name and scope.catalogue.is_handle(name):
                return CallSite(name, node.lineno)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
            ref = scope.lookup(node.value.id)
            if ref and ref.endswith("()") and scope.catalogue.is_handle(ref[:-2]):
                return CallSite(ref[:-2], node.lineno)
    return None
