"""What a model is shown about one module: its source, the analyser's plan, its blind spots.

The *undecided places* are what static rules cannot settle: calls on objects
of unknown type (a client passed in as a parameter, an attribute set from
one), calls into third-party modules missing from the I/O catalogue, and the
functions the analyser could only wrap coarsely or not at all.

Invariants:
- Pure: built from the text and the analyser's plan; nothing is run or written.
- The messages hold the module's source and the analyser's reasons, never
  the endpoint settings or the API key.
- The system message is generated from the guide's own rules and the plan's
  JSON schema, so the model is told exactly what the verifier enforces.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass

from .._analysis import ModulePlan, import_name
from . import _guide
from ._schema import schema_text
from ._source import Function, callee, definitions, numbered, own_calls

# Methods of builtin values (strings, lists, dicts, sets): calling them on a
# parameter is not I/O, and listing them would bury the calls that matter.
# fmt: off
_BUILTIN_METHODS = frozenset((
    "append", "add", "capitalize", "casefold", "clear", "copy", "count", "decode", "discard",
    "encode", "endswith", "extend", "find", "format", "get", "index", "insert", "isdigit",
    "items", "join", "keys", "lower", "lstrip", "partition", "pop", "popitem", "remove",
    "replace", "reverse", "rfind", "rpartition", "rsplit", "rstrip", "setdefault", "sort",
    "split", "splitlines", "startswith", "strip", "title", "union", "update", "upper",
    "values",
))
# fmt: on


@dataclass(frozen=True)
class Undecided:
    """A place the analyser cannot decide."""

    function: str
    line: int
    what: str  # one sentence, for people and models


def undecided(
    text: str, plan: ModulePlan, project_modules: set[str] | None = None
) -> list[Undecided]:
    """The places of a module the analyser could not decide, in line order."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    functions = definitions(tree)
    imports = _imports(tree)
    project = {import_name(m) for m in project_modules or ()}  # as imported (see _discover)
    out: list[Undecided] = []
    for function_plan in plan.functions:
        function = functions.get(function_plan.qualname)
        if function is None or function_plan.style == "manual":
            continue
        if function_plan.style in ("coarse", "unsafe"):
            out.append(Undecided(function.qualname, function_plan.line, function_plan.reason))
        for note in function_plan.notes:
            out.append(Undecided(function.qualname, function_plan.line, note))
        if function_plan.role == "step" and function_plan.style != "watched":
            continue  # whatever it calls is recorded with it (a watched one only maybe)
        out += _unknown_calls(function, imports, project)
    return sorted(out, key=lambda u: u.line)


def _unknown_calls(
    function: Function, imports: dict[str, str], project: set[str]
) -> list[Undecided]:
    params = _parameters(function.node)
    out: list[Undecided] = []
    seen: set[str] = set()
    for call in own_calls(function.node):
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr in _BUILTIN_METHODS:
            continue
        root = func.value
        depth = 1
        while isinstance(root, ast.Attribute):
            root, depth = root.value, depth + 1
        if not isinstance(root, ast.Name):
            continue
        text = callee(call)
        if text in seen:
            continue
        what = None
        if root.id in params and root.id not in ("self", "cls"):
            what = (
                f"calls {text} on `{root.id}`, a parameter of unknown type: the analyser "
                "cannot tell whether it does I/O"
            )
        elif root.id in ("self", "cls") and depth >= 2:
            what = (
                f"calls {text} on an attribute of unknown type: the analyser cannot tell "
                "whether it does I/O"
            )
        elif root.id in imports:
            module = imports[root.id]
            top = module.partition(".")[0]
            if top not in sys.stdlib_module_names and module not in project and top not in project:
                qualified = f"{module}.{text.partition('.')[2]}"
                if not _catalogued(qualified):
                    what = (
                        f"calls {text} in the third-party module {module}, which is not in the "
                        "I/O catalogue: the analyser treats it as computation"
                    )
        if what is not None:
            seen.add(text)
            out.append(Undecided(function.qualname, call.lineno, what))
    return out


def _catalogued(name: str) -> bool:
    from .._analysis._catalogue import default_catalogue  # read only: is the name known?

    return default_catalogue().kind(name) is not None


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return set(names)


def _imports(tree: ast.Module) -> dict[str, str]:
    """Top-level ``import x`` / ``import x as y`` bindings: name -> module."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    out[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
    return out


def plan_table(plan: ModulePlan) -> str:
    """The analyser's plan, one line per function: ``line  name  role/style  reason``."""
    lines = []
    for function in plan.functions:
        lines.append(
            f"- {function.qualname} (line {function.line}): {function.role}/{function.style}: "
            f"{function.reason}"
        )
    return "\n".join(lines) or "- (no functions)"


def module_context(
    module: str,
    path: str,
    text: str,
    plan: ModulePlan,
    places: list[Undecided],
    problems: list[str] | None = None,
) -> str:
    """The user message for one module; `problems` are the verifier's, of the text as it is."""
    shown = "\n".join(f"- {p.function}, line {p.line}: {p.what}" for p in places)
    found = "\n".join(f"- {problem}" for problem in problems or [])
    already = (
        ["Problems the module has already (fixing them is welcome, not required):", "", found, ""]
        if found
        else []
    )
    return "\n".join(
        [
            f"Module `{module}` ({path}).",
            "",
            "Source, with line numbers:",
            "",
            "```python",
            numbered(text),
            "```",
            "",
            "The analyser's plan (role/style: reason). Styles: decorate = a decorator is "
            "added; inline = workflow whose own I/O expressions become steps; coarse = the "
            "whole function is one step; manual = decorated by hand; none = left as is.",
            "",
            plan_table(plan),
            "",
            "Places the analyser could not decide:",
            "",
            shown or "- none",
            "",
            *already,
            "Answer with the plan for this module: one JSON object, nothing else.",
        ]
    )


SYSTEM = """\
You make Python modules durable with autodurable. A static analyser has already
decided what it can; you decide what it cannot see, and your answer is checked by
that analyser before anything is written. Answer with ONE JSON object that follows
the schema below, nothing else (no prose, no code fences).

# What autodurable is

{concepts}

# Rules your plan must keep (the verifier enforces them)

{rules}

# Idempotency keys

{idempotency}

# How to answer

- roles: give a function a role ("step", "workflow" or "plain") only where the
  analyser's plan is wrong or blind, with the reason. A function that performs an
  external call the analyser cannot see (a client passed in as a parameter, an
  unknown third-party library) should be a "step". A function that calls steps is
  a workflow and must do no I/O itself.
- io: list every call you believe does I/O that the analyser did not see
  (function and callee as written, e.g. "payments.charge"); each must end up
  inside a step.
- options: retries (a number of retries) and timeout (seconds) for steps that
  call slow or flaky services.
- idempotency_keys: calls to pass autodurable.idempotency_key() to, as the keyword
  the API expects (payments, e-mail, anything charged or sent); the call must be
  in a step or a workflow.
- splits: when a function mixes I/O with computation or with calls to steps, give
  its full new code (the function, same name and parameters, plus the new
  helper functions it calls) in "code"; same indentation as a module-level def.
- Use function names exactly as in the analyser's plan (methods as Class.method).
- Every entry needs a reason. An empty plan ({{}}) is a valid answer.

# JSON schema of the answer

{schema}
"""


def system_message() -> str:
    """The system message: the guide's rules and the plan schema."""
    return SYSTEM.format(
        concepts=_guide.CONCEPTS,
        rules=_guide.RULES,
        idempotency=_guide.IDEMPOTENCY,
        schema=schema_text(),
    )


def feedback(problems: list[str]) -> str:
    """The message that sends a rejected plan's problems back to the model."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        "Your plan was rejected; nothing was applied. The problems, exactly:\n"
        f"{listed}\n"
        "Answer with a corrected plan for the same module: one JSON object, nothing else."
    )
