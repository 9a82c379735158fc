"""Apply a model's plan to one module, in memory: splits, keys, roles, options.

The order keeps every position valid for the step that uses it:

1. splits replace functions by the model's code (text, line ranges);
2. idempotency keys are added to calls (libcst, found by the analyser's
   positions in the text of step 1);
3. roles: the analyser is run with the plan's roles as overrides (the very
   ``roles`` mechanism of ``[tool.autodurable.roles]``) and the codemod
   (`autodurable.codemods.make_durable.MakeDurableCommand`) writes that module plan: the
   analyser's own decisions and the model's, in one pass;
4. options are added to the step decorators the codemod wrote (libcst).

Invariants:
- Nothing is written: the result is a `Candidate` (a text and what changed).
- A plan naming a function, call or keyword that is not there is rejected
  with a problem that says what is there instead; nothing of it is applied.
- Roles set in ``[tool.autodurable.roles]`` or by hand-written decorators win
  over the model: contradicting them is a problem, not an override.
- Every text handed on parses; the last check is `_verify.verify`. Problems the
  module already had before the plan are warnings, not reasons to reject it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._analysis import ModulePlan
from ._project import Project
from ._schema import IdempotencyKey, IOCall, RewritePlan, RoleChange, StepOptions
from ._source import (
    Function,
    autodurable_names,
    callee,
    decorated_roles,
    definitions,
    dotted,
    find_calls,
    no_such_function,
    normalise_callee,
    own_calls,
)
from ._splits import apply_splits

KEY_CALL = "autodurable.idempotency_key()"


@dataclass(frozen=True)
class Change:
    """One change in the result, who decided it and why."""

    by: str  # "model" or "analyser"
    function: str
    what: str
    reason: str


@dataclass
class Candidate:
    """A module after a plan: its new text, or the problems that stopped it."""

    module: str
    path: str
    original: str
    text: str | None = None
    plan: ModulePlan | None = None  # the analyser's plan the codemod wrote
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)  # what the user may want to do by hand
    warnings: list[str] = field(default_factory=list)  # problems the module had before
    already: list[str] = field(default_factory=list)  # what the plan asked for and was there
    planned: bool = False  # whether the plan asked for anything

    @property
    def ok(self) -> bool:
        """Whether the candidate can be shown and written."""
        return not self.problems and self.text is not None

    @property
    def status(self) -> str:
        """ "rejected", "verified" (it changes the module), "already applied" (a plan whose
        every entry the module already has: nothing changed) or "nothing to change"."""
        if not self.ok:
            return "rejected"
        if self.text != self.original:
            return "verified"
        return "already applied" if self.planned or self.already else "nothing to change"


def apply_plan(
    project: Project, module: str, plan: RewritePlan, *, unrecordable: str = "rerun"
) -> Candidate:
    """Apply `plan` to `module` (in memory) and verify the result."""
    from ._verify import verify

    original = project.texts[module]
    candidate = Candidate(module, project.paths[module], original)
    candidate.planned = any((plan.roles, plan.io, plan.options, plan.idempotency_keys, plan.splits))
    try:
        tree = ast.parse(original)
    except SyntaxError as exc:
        candidate.problems.append(f"the module does not parse: {exc.msg} (line {exc.lineno})")
        return candidate
    text = apply_splits(original, tree, plan, candidate)
    if candidate.problems:
        return candidate
    tree = ast.parse(text)  # `_apply_splits` only hands on text that parses
    functions = definitions(tree)
    _check_names(plan, functions, tree, project, module, candidate)
    if candidate.problems:
        return candidate
    text = keyed = _apply_keys(text, tree, plan, functions, candidate)
    if candidate.problems:
        return candidate
    roles = {f"{module}:{r.function}": r.role for r in plan.roles}
    module_plan, why = project.plan(module, text=text, roles=roles)
    if module_plan is None:
        candidate.problems.append(f"the analyser cannot read the result: {why}")
        return candidate
    candidate.plan = module_plan
    for entry in plan.options:
        found = module_plan.get(entry.function)
        if found is not None and found.role != "step":
            candidate.problems.append(
                f"options for {entry.function}: options apply to steps, and {entry.function} "
                f"would be {found.role} code ({found.reason}); make it a step or drop the options"
            )
    if candidate.problems:
        return candidate
    text = _codemod(project, module, text, module_plan, unrecordable, candidate)
    if candidate.problems:
        return candidate
    text = _apply_options(text, plan, candidate)
    if candidate.problems:
        return candidate
    candidate.text = text
    baseline = None
    if any(r.role == "plain" for r in plan.roles):
        baseline = project.plan(module, text=keyed)[0]
    _record(plan, module_plan, baseline, module, keyed, candidate)
    lines = LineMap(original, text)
    verified = verify(project, module, text, plan)
    if verified:
        # What the module did wrong before the plan is not the plan's fault: reported, and
        # shown to the model in the context, but it does not reject the plan.
        already = {_unnumbered(p) for p in verify(project, module, original)}
        for problem in verified:
            target = candidate.warnings if _unnumbered(problem) in already else candidate.problems
            target.append(lines.translate(problem))
    return candidate


def _unnumbered(problem: str) -> str:
    return re.sub(r"\bline \d+", "line ?", problem)


class LineMap:
    """Line numbers of a result, told in the original's numbers where the line is unchanged.

    The model saw the original with line numbers; the verifier reads the result,
    which has decorators and imports inserted.
    """

    def __init__(self, original: str, result: str) -> None:
        import difflib

        self.map: dict[int, int] = {}
        matcher = difflib.SequenceMatcher(
            None, original.splitlines(), result.splitlines(), autojunk=False
        )
        for block in matcher.get_matching_blocks():
            for offset in range(block.size):
                self.map[block.b + offset + 1] = block.a + offset + 1

    def translate(self, text: str) -> str:
        """Every "line N" of the result as the original's line, or "line N of the result"."""

        def one(match: re.Match[str]) -> str:
            line = int(match.group(1))
            found = self.map.get(line)
            return f"line {found}" if found is not None else f"line {line} of the result"

        return re.sub(r"\bline (\d+)\b", one, text)


# -- names ----------------------------------------------------------------------------------


def _check_names(
    plan: RewritePlan,
    functions: dict[str, Function],
    tree: ast.Module,
    project: Project,
    module: str,
    out: Candidate,
) -> None:
    manual = decorated_roles(tree)
    configured = project.settings.roles
    groups: tuple[tuple[str, Sequence[RoleChange | IOCall | StepOptions | IdempotencyKey]], ...] = (
        ("roles", plan.roles),
        ("io", plan.io),
        ("options", plan.options),
        ("idempotency_keys", plan.idempotency_keys),
    )
    entries: list[tuple[str, int, str]] = [
        (kind, i, e.function) for kind, items in groups for i, e in enumerate(items)
    ]
    for kind, index, name in entries:
        if name not in functions:
            out.problems.append(f"{kind}[{index}]: {no_such_function(name, functions)}")
    seen: dict[str, str] = {}
    for index, role in enumerate(plan.roles):
        where = f"roles[{index}] ({role.function})"
        if role.function not in functions:
            continue
        if role.function in seen:
            out.problems.append(f"{where}: a second role for {role.function}; give one")
            continue
        seen[role.function] = role.role
        by_hand = manual.get(role.function)
        if by_hand is not None and by_hand != role.role:
            out.problems.append(
                f"{where}: {role.function} is decorated with @autodurable.{by_hand} by hand; the "
                "rewrite does not override hand-written decorators"
            )
        key = f"{module}:{role.function}"
        if key in configured and configured[key] != role.role:
            out.problems.append(
                f"{where}: {key} is set to {configured[key]} in [tool.autodurable.roles]; the "
                "project's configuration wins"
            )
        node = functions[role.function].node
        if role.role != "plain" and _is_generator(node):
            out.problems.append(
                f"{where}: {role.function} is a generator, which cannot be a {role.role} (its "
                "items cannot be recorded); split the I/O out of it instead"
            )
    with_options: set[str] = set()
    for index, entry in enumerate(plan.options):
        if entry.function in with_options:
            out.problems.append(f"options[{index}]: a second entry for {entry.function}")
        with_options.add(entry.function)
        if entry.retries is None and entry.timeout is None:
            out.problems.append(f"options[{index}] ({entry.function}): neither retries nor timeout")
    for index, io in enumerate(plan.io):
        function = functions.get(io.function)
        if function is not None and not find_calls(function, io.call):
            out.problems.append(f"io[{index}]: {_no_such_call(function, io.call)}")


def _is_generator(node: ast.AST) -> bool:
    from ._source import own_nodes

    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in own_nodes(node))  # type: ignore[arg-type]


def _no_such_call(function: Function, text: str) -> str:
    calls = sorted({(callee(c), c.lineno) for c in own_calls(function.node)}, key=lambda c: c[1])
    shown = ", ".join(f"{name} (line {line})" for name, line in calls[:15]) or "none"
    return f"{function.qualname} makes no call to {normalise_callee(text)} (its calls: {shown})"


# -- 2. idempotency keys --------------------------------------------------------------------


def _apply_keys(
    text: str,
    tree: ast.Module,
    plan: RewritePlan,
    functions: dict[str, Function],
    out: Candidate,
) -> str:
    targets: dict[tuple[int, int], str] = {}  # (line, byte column) of the call -> keyword
    names = autodurable_names(tree)
    for index, key in enumerate(plan.idempotency_keys):
        where = f"idempotency_keys[{index}] ({key.function}, {key.call})"
        function = functions[key.function]
        calls = find_calls(function, key.call)
        if not calls:
            out.problems.append(f"{where}: {_no_such_call(function, key.call)}")
            continue
        if len(calls) > 1:
            on_line = [c for c in calls if c.lineno == key.line]
            if len(on_line) != 1:
                lines = ", ".join(str(c.lineno) for c in calls)
                out.problems.append(
                    f"{where}: {key.function} calls {callee(calls[0])} on lines {lines}; give "
                    'the line of the one call ("line")'
                )
                continue
            calls = on_line
        call = calls[0]
        given = next((k for k in call.keywords if k.arg == key.keyword), None)
        if given is not None and _is_key(given.value, names):
            out.already.append(
                f"{key.function}: {callee(call)} (line {call.lineno}) passes "
                f"{key.keyword}={KEY_CALL} already"
            )
            continue
        if given is not None:
            out.problems.append(
                f"{where}: the call at line {call.lineno} already passes {key.keyword}="
            )
            continue
        if any(k.arg is None for k in call.keywords):
            out.problems.append(
                f"{where}: the call at line {call.lineno} passes **keywords, which may hold "
                f"{key.keyword} already; add the key by hand"
            )
            continue
        position = (call.lineno, call.col_offset)
        if position in targets:
            out.problems.append(f"{where}: a second key for the call at line {call.lineno}")
            continue
        targets[position] = key.keyword
        out.changes.append(
            Change(
                "model",
                key.function,
                f"passes {key.keyword}={KEY_CALL} to {callee(call)} (line {call.lineno})",
                key.reason,
            )
        )
    if out.problems or not targets:
        return text
    import libcst as cst

    from autodurable.codemods._imports import add_imports

    from ._cst import AddKeywords

    module = cst.parse_module(text)
    wrapper = cst.MetadataWrapper(module)
    transformer = AddKeywords(text, targets, KEY_CALL)
    result = wrapper.visit(transformer)
    if transformer.missing:
        lines = ", ".join(str(line) for line, _ in sorted(transformer.missing))
        out.problems.append(f"idempotency_keys: could not find the calls at line(s) {lines}")
        return text
    return add_imports(result, ["autodurable"]).code


def _is_key(value: ast.expr, names: dict[str, str]) -> bool:
    """Whether `value` is ``autodurable.idempotency_key()`` (under any import of it)."""
    return (
        isinstance(value, ast.Call)
        and not value.args
        and not value.keywords
        and dotted(value.func, names) == "autodurable.idempotency_key"
    )


# -- 3. roles, through the codemod ----------------------------------------------------------


def _codemod(
    project: Project,
    module: str,
    text: str,
    module_plan: ModulePlan,
    unrecordable: str,
    out: Candidate,
) -> str:
    from libcst.codemod import CodemodContext, TransformFailure, TransformSuccess, transform_module

    from autodurable.codemods.make_durable import MakeDurableCommand

    context = CodemodContext(filename=project.paths[module], full_module_name=module)
    command = MakeDurableCommand(context, unrecordable, module_plan=module_plan)
    result = transform_module(command, text)
    if isinstance(result, TransformFailure):
        out.problems.append(f"the codemod failed: {type(result.error).__name__}: {result.error}")
        return text
    return result.code if isinstance(result, TransformSuccess) else text


# -- 4. options -----------------------------------------------------------------------------


def _apply_options(text: str, plan: RewritePlan, out: Candidate) -> str:
    if not plan.options:
        return text
    import libcst as cst

    from ._cst import AddOptions

    wanted: dict[str, dict[str, str]] = {}
    for entry in plan.options:
        values: dict[str, str] = {}
        if entry.retries is not None:
            values["retries"] = str(entry.retries)
        if entry.timeout is not None:
            values["timeout"] = _number(entry.timeout)
        wanted[entry.function] = values
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        out.changes.append(Change("model", entry.function, f"step options {shown}", entry.reason))
    names = autodurable_names(ast.parse(text))
    transformer = AddOptions(wanted, names)
    result = cst.parse_module(text).visit(transformer)
    out.problems += transformer.problems
    out.already += [f"{f}: its step decorator sets these options already" for f in transformer.same]
    for function in sorted(set(wanted) - transformer.done):
        if not any(function in p for p in transformer.problems):
            out.problems.append(
                f"options for {function}: it carries no @autodurable.step decorator to put them on"
            )
    return result.code if not out.problems else text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- the record -----------------------------------------------------------------------------


def _record(
    plan: RewritePlan,
    module_plan: ModulePlan,
    baseline: ModulePlan | None,
    module: str,
    keyed: str,
    out: Candidate,
) -> None:
    """What changed, the model's entries first; advice for what the source cannot say."""

    by_model = {r.function: r for r in plan.roles}
    model_changes: list[Change] = []
    for split in plan.splits:
        model_changes.append(Change("model", split.function, "split (new code)", split.reason))
    for role in plan.roles:
        model_changes.append(Change("model", role.function, f"role {role.role}", role.reason))
        natural = baseline.get(role.function) if baseline is not None else None
        if role.role == "plain" and natural is not None and natural.role != "plain":
            out.advice.append(
                f"{role.function} stays plain in the source, but `autodurable run` would make it "
                f'a {natural.role}; to keep it plain there too, add "{module}:{role.function}" = '
                '"plain" to [tool.autodurable.roles]'
            )
    for io in plan.io:
        model_changes.append(
            Change("model", io.function, f"{normalise_callee(io.call)} does I/O", io.reason)
        )
    lines = LineMap(out.original, keyed)  # the analyser read the text with keys added
    analyser = [
        Change("analyser", f.qualname, f"role {f.role}", lines.translate(f.reason))
        for f in module_plan.functions
        if f.role != "plain"
        and f.style not in ("manual", "unsafe")
        and not f.is_generator
        and f.qualname not in by_model
    ]
    out.changes = model_changes + out.changes + analyser
