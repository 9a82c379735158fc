"""``autodurable mcp``: the analyser, the codemod and the verifier as Model Context Protocol tools.

A coding agent is the model here: it reads the guide (resource
``autodurable://guide``), asks `explain` or `plan` about a file, proposes a
plan (the schema `autodurable ai rewrite` uses), and `apply` verifies it and
shows the diff; only ``dry_run=False`` writes.

Tools (results are JSON objects, each bounded: see `_pages`):
- ``explain(paths, cursor=None, max_chars=20000, include_plain=False)``: the
  analyser's plan with reasons, and the undecided places, one page at a time
  (``next`` is the cursor of the following page, null on the last); plain
  functions are counted, not listed, unless ``include_plain``;
- ``plan(path)``: the same for one file, the diff the codemod would write as is,
  and the JSON schema of a rewrite plan;
- ``apply(path, plan=None, dry_run=True)``: validate, apply, verify; the diff, what
  changed and why, or the exact problems;
- ``verify(path, plan=None)``: with a plan, whether it would verify; without, the
  problems of the file as it is (I/O in workflows outside steps, say).

Every result of apply and verify carries ``ok`` and a ``status`` that says what
``ok`` means: a plan the file already holds is ok ("already applied", nothing
changes), a file nothing was made durable in is not ("nothing to verify").

Invariants:
- Files are read afresh on every call (an agent edits them in between).
- ``apply`` writes only with ``dry_run=False``, only a verified result that
  parses, only a file under the folder the server was started in, and only if
  the file still holds what was read.
- Nothing is printed on stdout: it carries the protocol.
- No result grows with the project: lists come in pages, diffs are cut at
  ``max_chars`` with a note saying how to see them whole.
"""

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from . import _guide, _pages
from ._apply import apply_plan
from ._context import undecided
from ._project import Project, load_project
from ._rewrite import write_checked
from ._schema import PlanError, RewritePlan, parse_plan, plan_from_data

GUIDE_URI = "autodurable://guide"
INSTRUCTIONS = (
    "Make Python code durable with autodurable. Read the resource autodurable://guide "
    "first. Call explain or plan to see the analyser's decisions and the places it cannot "
    "decide; propose a plan (roles, io, options, idempotency_keys, splits, each with a "
    "reason) and call apply: it verifies the plan with the analyser and returns the diff, or "
    "the exact problems to fix. apply writes only with dry_run=false."
)


def _tool_error(message: str) -> Exception:
    """An error whose message reaches the client (other exceptions are reported as crashes)."""
    try:
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:  # mcp 1.x (the codes cover mcp 1 and 2 installed: hence unused-ignore)
        from mcp.server.fastmcp.exceptions import (  # type: ignore[no-redef, import-not-found, unused-ignore]
            ToolError,
        )
    return ToolError(message)


def _module(path: str) -> tuple[Project, str]:
    if not os.path.isfile(path):
        raise _tool_error(f"no such file: {path}")
    project = load_project(path)
    module = project.module_of(path)
    if module is None:
        raise _tool_error(
            f"{path} is not a module of the project at {project.root} (excluded, or not "
            "importable by name)"
        )
    return project, module


def _plan_or_problems(plan: dict[str, Any] | str | None) -> tuple[RewritePlan | None, list[str]]:
    if plan is None:
        return RewritePlan(), []
    try:
        # Agents send the plan as an object, or sometimes as its JSON text.
        return (parse_plan(plan) if isinstance(plan, str) else plan_from_data(plan)), []
    except PlanError as exc:
        return None, exc.problems


Cursor = Annotated[
    str | None,
    Field(
        description="where to continue: the `next` of the previous result of this tool for "
        "the same paths; omit it for the first page"
    ),
]
MaxChars = Annotated[
    int,
    Field(
        description=f"the most characters of JSON in one result (between "
        f"{_pages.MIN_MAX_CHARS} and {_pages.MAX_MAX_CHARS}); longer results come in pages",
        ge=_pages.MIN_MAX_CHARS,
        le=_pages.MAX_MAX_CHARS,
    ),
]
IncludePlain = Annotated[
    bool,
    Field(description="list plain functions (no I/O, no steps) too; by default they are counted"),
]


def explain(
    paths: list[str],
    cursor: Cursor = None,
    max_chars: MaxChars = _pages.DEFAULT_MAX_CHARS,
    include_plain: IncludePlain = False,
) -> dict[str, Any]:
    """The analyser's plan of the Python files under `paths`: for each function its role
    (step / workflow / plain), style and the reason, and the places the analyser could not
    decide (calls on objects of unknown type, unknown third-party calls). Paginated: at most
    `max_chars` characters per result; when `next` is not null, call again with
    cursor=next for the rest."""
    from ..codemods._run import gather_files

    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise _tool_error(f"no such file or folder: {missing[0]}")
    modules: list[dict[str, Any]] = []
    projects: dict[str, Project] = {}
    for file in gather_files(paths):
        project = next((p for p in projects.values() if p.module_of(file)), None)
        if project is None:
            project = load_project(file)
            projects[str(project.root)] = project
        module = project.module_of(file)
        if module is None:
            continue
        found, why = project.plan(module)
        if found is None:
            modules.append({"module": module, "path": str(file), "error": why})
            continue
        places = undecided(project.texts[module], found, set(project.paths))
        modules.append(_described(module, str(file), found, places, include_plain))
    try:
        return _pages.page(modules, cursor, max_chars)
    except _pages.CursorError as exc:
        raise _tool_error(str(exc)) from None


def _described(
    module: str, path: str, found: Any, places: list[Any], include_plain: bool = True
) -> dict[str, Any]:
    undecided_in = {p.function for p in places}  # plain, but the analyser is not sure
    shown = [
        f
        for f in found.functions
        if include_plain
        or f.role != "plain"
        or f.style != "none"
        or f.notes
        or f.qualname in undecided_in
    ]
    return {
        "module": module,
        "path": path,
        "opted_out": found.opted_out,
        "plain_functions": len(found.functions) - len(shown),
        "functions": [
            {
                "function": f.qualname,
                "line": f.line,
                "role": f.role,
                "style": f.style,
                "reason": f.reason,
                "notes": f.notes,
            }
            for f in shown
        ],
        "undecided": [{"function": p.function, "line": p.line, "what": p.what} for p in places],
    }


def plan(path: str, max_chars: MaxChars = _pages.DEFAULT_MAX_CHARS) -> dict[str, Any]:
    """The analyser's plan of one file with reasons, the places it could not decide, the diff
    `autodurable codemod` would write as is (cut at `max_chars` characters, with a note), and
    the JSON schema of the plan `apply` takes."""
    project, module = _module(path)
    found, why = project.plan(module)
    if found is None:
        raise _tool_error(f"{path} cannot be analysed: {why}")
    text = project.texts[module]
    described = _described(module, path, found, undecided(text, found, set(project.paths)))
    candidate = apply_plan(project, module, RewritePlan())
    diff = _diff(path, candidate.original, candidate.text)
    described["codemod_diff"], cut = _pages.capped(
        diff, max_chars, f"`autodurable codemod {path}` prints it whole"
    )
    if cut:
        described["codemod_diff_cut"] = cut
    described["codemod_problems"] = candidate.problems
    described["plan_schema"] = RewritePlan.model_json_schema()
    return described


def apply(
    path: str,
    plan: dict[str, Any] | str | None = None,
    dry_run: bool = True,
    max_chars: MaxChars = _pages.DEFAULT_MAX_CHARS,
) -> dict[str, Any]:
    """Validate a rewrite plan for one file (the schema `plan` returns; omit it to apply the
    analyser's plan alone), apply it with the codemod and verify the result. Returns the diff
    (cut at `max_chars` characters, with a note) and every change with its reason, or the
    exact problems. Writes the file only when dry_run is false and the result verified."""
    project, module = _module(path)
    proposed, problems = _plan_or_problems(plan)
    if proposed is None:
        return {"ok": False, "problems": problems, "diff": "", "written": False}
    candidate = apply_plan(project, module, proposed)
    result: dict[str, Any] = {
        "ok": candidate.ok,
        "status": candidate.status,
        "problems": candidate.problems,
        "diff": "",
        "changes": [
            {"by": c.by, "function": c.function, "change": c.what, "reason": c.reason}
            for c in candidate.changes
        ],
        "advice": candidate.advice,
        "warnings": candidate.warnings,
        "already": candidate.already,
        "written": False,
    }
    if candidate.ok:
        diff = _diff(path, candidate.original, candidate.text)
        result["diff"], cut = _pages.capped(
            diff, max_chars, "apply with dry_run=false writes it whole; `git diff` shows it"
        )
        if cut:
            result["diff_cut"] = cut
    if not candidate.ok or dry_run or candidate.text in (None, candidate.original):
        return result
    if not _inside(path, Path.cwd()):
        result["problems"] = [f"not written: {path} is outside {Path.cwd()}, where the server runs"]
        result["ok"] = False
        return result
    assert candidate.text is not None
    why = write_checked(project.paths[module], candidate.original, candidate.text)
    if why:
        result["ok"], result["problems"] = False, [why]
    else:
        result["written"] = True
    return result


def verify(path: str, plan: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """With a plan: whether it verifies for this file (the problems, exactly), and its
    status: "verified" (it would change the file), "already applied" (the file holds it:
    nothing would change) or "rejected". Without: the problems of the file as it is now:
    workflows doing I/O outside steps, undecorated functions doing I/O called by workflows,
    workflows taking clients, functions the analyser cannot wrap safely; a file nothing was
    made durable in is not ok: its status is "nothing to verify"."""
    from ._verify import made_durable
    from ._verify import verify as check

    project, module = _module(path)
    if plan is not None:
        proposed, problems = _plan_or_problems(plan)
        if proposed is None:
            return {"ok": False, "status": "rejected", "problems": problems, "warnings": []}
        candidate = apply_plan(project, module, proposed)
        return {
            "ok": candidate.ok,
            "status": candidate.status,
            "problems": candidate.problems,
            "warnings": candidate.warnings,
            "already": candidate.already,
        }
    text = project.texts[module]
    problems = check(project, module, text)
    warnings: list[str] = []
    found, _ = project.plan(module)
    if found is not None:
        for function in found.functions:
            if function.style == "unsafe":
                problems.append(f"{function.qualname}: {function.reason}")
            warnings += [f"{function.qualname}: {note}" for note in function.notes]
    result: dict[str, Any] = {"ok": not problems, "status": "verified", "problems": problems}
    if problems:
        result["status"] = "problems"
    elif not made_durable(text):
        result["ok"], result["status"] = False, "nothing to verify"
        result["message"] = (
            f"{path} has no autodurable decorator or recorded site: nothing in it is durable "
            "yet, so there is nothing to verify; call plan to see what the codemod would "
            "write, and apply to write it"
        )
    result["warnings"] = warnings
    return result


def guide() -> str:
    """The guide for coding assistants (Markdown)."""
    return _guide.render_guide()


def _diff(path: str, original: str, new: str | None) -> str:
    from ..codemods._run import unified_diff

    if new is None or new == original:
        return ""
    return unified_diff(original, new, os.path.relpath(path) if not os.path.isabs(path) else path)


def _inside(path: str, folder: Path) -> bool:
    target = Path(os.path.realpath(path))
    return target == folder.resolve() or folder.resolve() in target.parents


def build_server() -> Any:
    """The server object, tools and resource registered (mcp 2's MCPServer, or mcp 1's FastMCP)."""
    from .. import __version__

    try:
        from mcp.server.mcpserver import MCPServer as Server
    except ImportError:  # mcp 1.x (the codes cover mcp 1 and 2 installed: hence unused-ignore)
        from mcp.server.fastmcp import (  # type: ignore[no-redef, attr-defined, unused-ignore]
            FastMCP as Server,
        )
    kwargs: dict[str, Any] = {"instructions": INSTRUCTIONS}
    try:
        server = Server("autodurable", version=__version__, **kwargs)
    except TypeError:  # mcp 1.x takes no version
        server = Server("autodurable", **kwargs)
    for tool in (explain, plan, apply, verify):
        server.add_tool(tool)
    server.resource(GUIDE_URI, name="guide", mime_type="text/markdown", description=(
        "autodurable's guide for coding assistants: workflows, steps, the rules, the API"
    ))(guide)  # fmt: skip
    return server


def serve() -> None:
    """Serve on stdin/stdout until the client disconnects."""
    build_server().run("stdio")
