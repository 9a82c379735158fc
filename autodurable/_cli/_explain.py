"""``autodurable explain``: the plan for some files, as a table or as JSON.

Invariants: reads and analyses files, writes nothing; ``--strict`` fails when a
function does I/O that cannot be made durable, or a file does not parse.

What cannot be made durable (each shown with why and the fix, and counted by
`unsafe`): a function the analyser cannot wrap safely (style ``unsafe``); a
function with a note (a lambda, generator or special method doing I/O, an
untyped call that runs again on replay); and a plain function that calls
methods on a parameter of unknown type the run-time watch does not cover
(``gateway.charges.create(...)`` on an unannotated ``gateway``): if that is
I/O, nothing records it. The last kind is added here, to copies of the plans,
from the files' text (`_analysis._params`): the analyser's plans stay as the
hook and the codemod use them.
"""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

from .._analysis import FunctionPlan, ModulePlan, ProjectPlan
from .._analysis._params import functions, parameter_calls
from .._core._config import LimitSettings, Settings
from .._hook._cache import ProjectState
from .._project import project_root
from ._format import json_text


def plans_for(paths: list[str], settings: Settings) -> tuple[list[ModulePlan], dict[str, str]]:
    """The module plans of the files under `paths`, and the files that could not be read."""
    selected: list[ModulePlan] = []
    errors: dict[str, str] = {}
    projects: dict[Path, ProjectPlan] = {}
    for raw in paths:
        path = Path(raw).resolve()
        if not path.exists():
            errors[raw] = "no such file or folder"
            continue
        root = project_root(path if path.is_dir() else path.parent)
        if root not in projects:
            # The same modules and plan as the import hook (and its plan cache).
            state = ProjectState(root, settings.io, settings.roles, settings.exclude)
            projects[root] = state.plan
        project = projects[root]
        for module in project.modules.values():
            module_path = Path(module.path).resolve()
            inside = module_path == path or (path.is_dir() and path in module_path.parents)
            if inside and module not in selected:
                selected.append(module)
        for failed, reason in project.errors.items():
            failed_path = Path(failed).resolve()
            if failed_path == path or path in failed_path.parents:
                errors[failed] = reason
    selected.sort(key=lambda m: m.path)
    return [_with_blind_spots(m) for m in selected], errors


def unsafe(plans: list[ModulePlan]) -> list[FunctionPlan]:
    """Functions doing I/O that cannot be made durable, or may (for ``--strict``)."""
    return [f for m in plans for f in m.functions if f.style == "unsafe" or f.notes]


def blind_spot(function: FunctionPlan, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The note for a plain function calling methods on untyped parameters, or None."""
    if function.role != "plain" or function.style != "none" or function.reason.startswith("set "):
        return None
    name = function.qualname.rpartition(".")[2]
    if name.startswith("__") and name.endswith("__"):
        return None  # special methods are never wrapped (and say so when they do I/O)
    calls = parameter_calls(node)
    if not calls:
        return None
    first = calls[0]
    shown = ", ".join(f"{c.call} (line {c.line})" for c in calls[:3])
    more = f" and {len(calls) - 3} more" if len(calls) > 3 else ""
    return (
        f"calls {shown}{more} on `{first.parameter}`, a parameter of unknown type: if that "
        f"is I/O (a client handed in), nothing records it and it runs again on replay; "
        f'annotate `{first.parameter}` with its class, or make it a step ("{function.key}" = '
        '"step" in [tool.autodurable.roles], or @autodurable.step); if it does no I/O, set it '
        '"plain" there'
    )


def _with_blind_spots(module: ModulePlan) -> ModulePlan:
    """`module` with a note on each plain function calling methods on untyped parameters."""
    if module.opted_out:
        return module
    try:
        with open(module.path, encoding="utf-8") as fh:
            nodes = functions(ast.parse(fh.read()))
    except (OSError, SyntaxError, ValueError):
        return module
    changed = False
    planned: list[FunctionPlan] = []
    for function in module.functions:
        node = nodes.get((function.qualname, function.line))
        note = blind_spot(function, node) if node is not None else None
        if note is not None:
            function = function.model_copy(update={"notes": [*function.notes, note]})
            changed = True
        planned.append(function)
    return module.model_copy(update={"functions": planned}) if changed else module


def limited_steps(plans: list[ModulePlan], settings: Settings) -> dict[str, list[str]]:
    """The limits on APIs ([tool.autodurable.limits]) each step is under, as text, by
    the step function's key (``"module:qualname"``); a site of inline workflow code
    is shown under its function, by line."""
    if not settings.limits:
        return {}
    from .._analysis._apis import expand
    from .._core._limits import key_matches

    def under(project: ProjectPlan, apis: list[str] | tuple[str, ...]) -> str:
        names = expand(project, apis)
        found = [
            f"{key} ({_limit_text(limit)})"
            for key, limit in sorted(settings.limits.items())
            if any(key_matches(key, name) for name in names)
        ]
        return ", ".join(found)

    shown: dict[str, list[str]] = {}
    projects: dict[Path, ProjectPlan] = {}
    for module in plans:
        root = project_root(Path(module.path).parent)
        if root not in projects:
            projects[root] = ProjectState(root, settings.io, settings.roles, settings.exclude).plan
        project = projects[root]
        for function in module.functions:
            lines = []
            if function.role == "step" and under(project, function.apis):
                lines.append(under(project, function.apis))
            for site in function.sites:
                if under(project, site.apis):
                    lines.append(f"line {site.line} ({site.name}): {under(project, site.apis)}")
            if lines:
                shown[function.key] = lines
    return shown


def limit_warnings(plans: list[ModulePlan], settings: Settings) -> list[str]:
    """One warning per limit key that matches no API and no function of the project."""
    if not settings.limits or not plans:
        return []
    from .._analysis._apis import unmatched_keys

    root = project_root(Path(plans[0].path).parent)
    project = ProjectState(root, settings.io, settings.roles, settings.exclude).plan
    return unmatched_keys(list(settings.limits), settings.io, project)


def _limit_text(limit: LimitSettings) -> str:
    parts = [f"concurrency {limit.concurrency}"] if limit.concurrency else []
    if limit.rate:
        parts.append(f"rate {limit.rate}" + (f" of {limit.units}" if limit.units else ""))
    return ", ".join(parts)


def render_table(
    plans: list[ModulePlan], errors: dict[str, str], limits: dict[str, list[str]] | None = None
) -> str:
    """The plan as text for people; with `limits` (`limited_steps`), the limits on APIs
    each step is under."""
    lines: list[str] = []
    for module in plans:
        lines.append(f"{os.path.relpath(module.path)}  ({module.module})")
        if module.opted_out:
            lines.append("    opted out (autodurable: off): left as is")
            continue
        rows = [f for f in module.functions if f.role != "plain" or f.notes or f.style != "none"]
        if not rows:
            lines.append("    nothing to make durable")
        width = max((len(f.qualname) for f in rows), default=0)
        for function in rows:
            how = f"{function.role}/{function.style}"
            lines.append(
                f"    {function.line:>5}  {function.qualname:<{width}}  {how:<18} {function.reason}"
            )
            lines += [f"           note: {note}" for note in function.notes]
            lines += [f"           limits: {line}" for line in (limits or {}).get(function.key, [])]
        plain = len(module.functions) - len(rows)
        if plain:
            lines.append(f"           ({plain} plain function(s) not shown)")
    for path, reason in errors.items():
        lines.append(f"{os.path.relpath(path)}: skipped: {reason}")
    flagged = unsafe(plans)
    if flagged:
        lines.append(
            f"{len(flagged)} function(s) may do I/O that cannot be made durable (the notes "
            "above say why, and the fix); `autodurable explain --strict` fails on them"
        )
    if any(f.role == "workflow" for m in plans for f in m.functions):
        lines += textwrap.wrap(ROOTS_RULE, 88)
    return "\n".join(lines)


ROOTS_RULE = (
    "Workflows start only at durable roots: the script run by `autodurable run`, and "
    "functions decorated with @autodurable.workflow or set as workflows in "
    "[tool.autodurable.roles]. The other workflows above are workflow code when a root "
    "calls them; called from plain code (a test, a library, a thread of their own) they "
    "run as plain code, record nothing, and cost nothing."
)


def render_json(plans: list[ModulePlan], errors: dict[str, str]) -> str:
    """The plan as JSON for tools: {"modules": [...], "errors": {...}}."""
    data = {"modules": [m.model_dump(mode="json") for m in plans], "errors": errors}
    return json_text(data)
