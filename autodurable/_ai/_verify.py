"""The verifier: does a module's text keep the rules of durable code?

It checks the *result*, not the intentions: the text is parsed, and the
analyser is asked about it with its workflow decorators blanked out, which
shows what the body of each workflow does by itself (a decorated workflow is
respected as written by both the analyser and the import hook, so I/O in its
body would otherwise go unseen). Workflow code is what the text decorates as a
workflow (a root) and what the analyser infers as one (no decorator).

Problems found:
- the text does not parse;
- a workflow does I/O (or reads the clock or randomness) outside any step:
  that code runs again on every replay;
- a function that does I/O is left undecorated and a workflow of the module
  calls it (directly or through other undecorated functions): the same;
- a workflow (a root: it carries the decorator) takes a client as a parameter
  (`_inputs`): its inputs cannot be recorded, so it is not durable at all;
- with a plan: a role, I/O call or idempotency key the plan asked for is not
  what the text says.

Accepted, as the analyser accepts them: a live handle (a connection, a
subprocess) opened in workflow code runs again on resume by design; the
expressions the codemod already wrote as recorded calls are recorded.

Invariants:
- Pure: analyses texts in memory, writes nothing, runs nothing.
- Every problem names the function, the call and the line, in words a
  model (or a person) can act on.
- Module-local: calls are followed within the module (plain names,
  ``self.m``); a call into another module is checked when that module is.
"""

from __future__ import annotations

import ast

from .._analysis import FunctionPlan, ModulePlan
from .._analysis._facts import HELPER_PREFIXES
from ._inputs import client_inputs
from ._project import Project
from ._schema import RewritePlan
from ._source import (
    Function,
    autodurable_names,
    decorated_roles,
    definitions,
    dotted,
    durable_decorator,
    find_calls,
    local_calls,
    normalise_callee,
    own_calls,
)

_RECORDED_PUBLIC = ("now", "random", "uuid4", "sleep", "sleep_async")  # what the codemod writes
_IO_SITES = frozenset({"step", "astep", "iterate", "block", "ablock", "recorded"})


def verify(project: Project, module: str, text: str, plan: RewritePlan | None = None) -> list[str]:
    """The problems of `text` as the new text of `module` (an empty list: it is sound)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [f"the result does not parse: {exc.msg} (line {exc.lineno})"]
    functions = definitions(tree)
    written = decorated_roles(tree)
    roots = [q for q, role in written.items() if role == "workflow"]
    stripped, unchecked = _without_workflow_decorators(text, tree, functions, written)
    probe, why = project.plan(module, text=stripped)
    if probe is None:
        return [f"the analyser cannot read the result: {why}"]
    names = autodurable_names(tree)
    inline = {q for q, f in functions.items() if _written_inline(f, names)}
    if written or inline:
        # Durable code (written by the codemod or by hand): workflow code is also
        # what the analyser infers as a workflow, which gets no decorator (only roots
        # do) and whose body runs again on every replay all the same. (In a module
        # not made durable yet, nothing is workflow code: there is nothing to check.)
        written = written | {
            found.qualname: "workflow"
            for found in probe.functions
            if found.role == "workflow"
            and found.qualname in functions
            and found.qualname not in written
        }
    problems: list[str] = []
    for qualname in sorted(unchecked):
        problems.append(
            f"{qualname}: its @autodurable.workflow decorator shares its lines with other code; "
            "put it on a line of its own so that its body can be checked"
        )
    for qualname, role in written.items():
        found = probe.get(qualname)
        if role == "workflow" and found is not None and qualname not in unchecked:
            io = unrecorded_io(found, qualname in inline)
            if io:
                problems.append(
                    f"{qualname} is a workflow but {io} outside any step: that runs again on "
                    "every replay; move it into a step"
                )
    problems += _plain_io_called_by_workflows(functions, written, probe, inline)
    problems += _client_parameters(tree, functions, roots, plan)
    if plan is not None:
        problems += _as_planned(plan, functions, written)
    return problems


def made_durable(text: str) -> bool:
    """Whether a module's text holds anything autodurable wrote or a person decorated: a
    step or workflow decorator, or a recorded site (False for text that does not parse)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    if decorated_roles(tree):
        return True
    names = autodurable_names(tree)
    public = ("autodurable.watched", *(f"autodurable.{n}" for n in _RECORDED_PUBLIC))
    for function in definitions(tree).values():
        decorators = [dotted(d, names) for d in function.node.decorator_list]
        calls = [dotted(c.func, names) for c in own_calls(function.node)]
        if "autodurable.watched" in decorators or any(c in public for c in calls):
            return True
        if _written_inline(function, names):
            return True
    return False


def unrecorded_io(plan: FunctionPlan, written_inline: bool = False) -> str | None:
    """What a function's body does outside steps, were it workflow code (None: nothing).

    `plan` is the analyser's plan of the function *without* a workflow decorator.
    `written_inline`: its recordable expressions were already written as recorded
    calls (``autodurable.inline.run_step(...)``, the codemod's inline style): what
    is left are handles the analyser runs again on resume by design, so only
    recordable expressions still unwritten count.
    """
    if plan.style == "manual" or plan.reason.startswith("set in [tool.autodurable.roles]"):
        return None
    sites = [s for s in plan.sites if s.kind in _IO_SITES]
    if sites and (written_inline or plan.style == "inline"):
        shown = ", ".join(f"{s.name.rpartition(':')[2]} at line {s.line}" for s in sites)
        return f"calls {shown}"
    if written_inline or plan.reason.startswith("returns a live"):
        return None  # a handle: runs again on resume, as the analyser decided and said
    if (plan.role == "step" and plan.style in ("decorate", "coarse")) or plan.style == "unsafe":
        return plan.reason  # "calls requests.post at line 17"
    return None


def _written_inline(function: Function, names: dict[str, str]) -> bool:
    """Whether the body holds calls the codemod writes for recorded expressions."""
    return any(
        (dotted(call.func, names) or "").startswith(HELPER_PREFIXES)
        for call in own_calls(function.node)
    )


def _without_workflow_decorators(
    text: str, tree: ast.Module, functions: dict[str, Function], written: dict[str, str]
) -> tuple[str, set[str]]:
    """`text` with each ``@autodurable.workflow`` line blanked (line numbers kept), and the
    workflows whose decorator could not be blanked cleanly."""
    names = autodurable_names(tree)
    lines = text.splitlines(keepends=True)
    unchecked: set[str] = set()
    for qualname, role in written.items():
        if role != "workflow":
            continue
        found = durable_decorator(functions[qualname].node, names)
        assert found is not None
        decorator = found[1]
        first, last = decorator.lineno, decorator.end_lineno or decorator.lineno
        head = lines[first - 1].encode("utf-8")[: decorator.col_offset].decode("utf-8", "ignore")
        tail_bytes = lines[last - 1].encode("utf-8")[decorator.end_col_offset or 0 :]
        tail = tail_bytes.decode("utf-8", "ignore").strip()
        if head.strip() != "@" or (tail and not tail.startswith("#")):
            unchecked.add(qualname)
            continue
        for index in range(first - 1, last):
            ending = "\r\n" if lines[index].endswith("\r\n") else "\n"
            lines[index] = ending
    return "".join(lines), unchecked


def _client_parameters(
    tree: ast.Module, functions: dict[str, Function], roots: list[str], plan: RewritePlan | None
) -> list[str]:
    """Workflows whose inputs cannot be recorded (a client parameter), by the plan's entry."""
    entries = {r.function: i for i, r in enumerate(plan.roles)} if plan is not None else {}
    return [
        (f"roles[{entries[found.workflow]}]: " if found.workflow in entries else "")
        + found.message()
        for found in client_inputs(tree, functions, roots)
    ]


def _plain_io_called_by_workflows(
    functions: dict[str, Function], written: dict[str, str], probe: ModulePlan, inline: set[str]
) -> list[str]:
    graph = local_calls(functions)
    problems: list[str] = []
    reported: set[str] = set()
    for workflow in (q for q, role in written.items() if role == "workflow"):
        # Undecorated functions run as part of the workflow that calls them.
        pending = [(callee, line, workflow) for callee, line in graph.get(workflow, [])]
        seen: set[str] = set()
        while pending:
            name, line, caller = pending.pop()
            if name in seen or name in written:
                continue
            seen.add(name)
            found = probe.get(name)
            io = unrecorded_io(found, name in inline) if found is not None else None
            if io and name not in reported:
                reported.add(name)
                via = "" if caller == workflow else f" (through {caller})"
                problems.append(
                    f"{name} is not a step but {io}, and the workflow {workflow} calls it{via} "
                    f"at line {line}: that runs again on every replay; make {name} a step"
                )
            pending += [(callee, at, name) for callee, at in graph.get(name, [])]
    return problems


def _as_planned(
    plan: RewritePlan,
    functions: dict[str, Function],
    written: dict[str, str],
) -> list[str]:
    """What the plan asked for and the text does not say."""
    problems: list[str] = []
    for index, role in enumerate(plan.roles):
        actual = written.get(role.function, "plain")
        if role.function in functions and actual != role.role:
            problems.append(
                f"roles[{index}]: {role.function} should be a {role.role}, but the result "
                f"makes it {actual}"
            )
    graph = local_calls(functions)
    callers: dict[str, set[str]] = {}
    for caller, calls in graph.items():
        for callee, _ in calls:
            callers.setdefault(callee, set()).add(caller)
    for index, io in enumerate(plan.io):
        function = functions.get(io.function)
        if function is None:
            continue
        home = _home(io.function, io.call, functions)
        home_role = written.get(home) if home else None
        if home_role == "step" or (
            home and home_role is None and _only_under_steps(home, callers, written)
        ):
            continue
        call = normalise_callee(io.call)
        if home_role == "workflow":
            where = f"{home} is a workflow"
        else:
            where = f"{home or io.function} is not a step (nor called only by steps)"
        problems.append(
            f"io[{index}]: {call} does I/O ({io.reason}), but {where}: the call would run "
            f"unrecorded, again on every replay; it must be made inside a step"
        )
    for index, key in enumerate(plan.idempotency_keys):
        function = functions.get(key.function)
        if function is None:
            continue
        key_calls = find_calls(function, key.call)
        if not any(any(k.arg == key.keyword for k in c.keywords) for c in key_calls):
            problems.append(f"idempotency_keys[{index}]: the key was not written")
        key_role = written.get(key.function)
        if key_role is None and not _only_under_steps(key.function, callers, written):
            problems.append(
                f"idempotency_keys[{index}]: {key.function} is neither a step nor a workflow, "
                "and autodurable.idempotency_key() is defined only in steps and workflows; "
                "make it a step"
            )
    return problems


def _home(function: str, call: str, functions: dict[str, Function]) -> str | None:
    """The function that makes `call`: `function` itself, or a function nested in it
    (the codemod moves with-blocks into local step functions)."""
    if find_calls(functions[function], call):
        return function
    prefix = f"{function}.<locals>."
    for qualname, inner in functions.items():
        if qualname.startswith(prefix) and find_calls(inner, call):
            return qualname
    return None


def _only_under_steps(name: str, callers: dict[str, set[str]], written: dict[str, str]) -> bool:
    """Whether every module-local path to `name` starts in a step (and there is one)."""
    seen: set[str] = set()
    pending = list(callers.get(name, ()))
    if not pending:
        return False
    while pending:
        caller = pending.pop()
        if caller in seen:
            continue
        seen.add(caller)
        role = written.get(caller)
        if role == "workflow":
            return False
        if role is None:
            above = callers.get(caller)
            if not above:
                return False  # reached from outside the module: unknown
            pending += above
    return True
