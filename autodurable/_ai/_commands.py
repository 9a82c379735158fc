"""``autodurable ai prompt | context | rewrite`` and ``autodurable mcp``: arguments and output.

Invariants:
- Importing this module imports neither libcst nor mcp: the command line
  starts without the extras, and a command that needs one says which extra
  to install (exit 2) instead of failing with a traceback.
- ``ai rewrite`` writes only with ``--write``, only modules whose plan was
  verified, and only text that parses (`_rewrite.write_checked`). Diffs and
  reports go to stdout, progress to stderr; the API key is never printed.
- Exit codes: 0 when every module was rewritten, unchanged or skipped; 1 when
  a module was given up on, rejected or failed; 2 on bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # libcst is an extra: import its users only to type
    from ._rewrite import Ask, ModuleOutcome
    from ._schema import RewritePlan

# Which extra installs which module (``[project.optional-dependencies]``).
_EXTRAS = {"libcst": "codemod", "mcp": "ai"}


def missing_extra(command: str, modules: tuple[str, ...]) -> str | None:
    """None when `modules` can be imported, else the message naming the extra to install."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    extras = sorted({"ai", *(_extra_for(m) for m in missing)})
    return (
        f"autodurable: {command} needs {', '.join(missing)}, which is not installed: "
        f"pip install 'autodurable[{','.join(extras)}]'"
    )


def _extra_for(module: str) -> str:
    """The extra that installs `module`: "ai" if the installed metadata says so, else the
    table above."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires("autodurable") or []
    except PackageNotFoundError:  # a plain checkout, not installed
        requirements = []
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        in_ai = re.search(r"extra\s*==\s*[\"']ai[\"']", marker)
        if in_ai and re.match(rf"{re.escape(module)}\b", name.strip(), re.IGNORECASE):
            return "ai"
    return _EXTRAS.get(module, "ai")


def add_ai_parser(commands: Any) -> None:
    """``autodurable ai ...``."""
    ai = commands.add_parser(
        "ai",
        help="AI-assisted durability: the guide for coding assistants, and model-proposed "
        "rewrites verified by the analyser",
        description="A model proposes, the analyser verifies, the codemod writes.",
    )
    ai.set_defaults(ai_parser=ai)
    sub = ai.add_subparsers(dest="ai_command", metavar="COMMAND")
    prompt = sub.add_parser(
        "prompt",
        help="print the guide for coding assistants (generated from the installed API)",
        description="Print the guide for coding assistants: workflows and steps, the rules "
        "of durable code, idempotency keys, options and the public API, generated from the "
        "installed package. Add it to your assistant's context.",
    )
    prompt.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead")
    prompt.add_argument(
        "--check", metavar="FILE", help="exit 1 if FILE is not the current guide (for CI)"
    )
    context = sub.add_parser(
        "context",
        help="print what `ai rewrite` would send to the model for each module",
        description="Print the messages `ai rewrite` sends for each module (the source, the "
        "analyser's plan with reasons, the places it could not decide). Sends nothing.",
    )
    context.add_argument("paths", nargs="+", metavar="PATH")
    context.add_argument("--json", action="store_true", help="the messages as JSON")
    rewrite = sub.add_parser(
        "rewrite",
        help="ask a model for what static rules cannot see; verify; show a diff (--write writes)",
        description="For each module: send its source and the analyser's plan to an "
        "OpenAI-compatible chat-completions endpoint, take back a plan (roles, I/O calls, "
        "step options, idempotency keys, splits), verify it with the analyser (problems go "
        "back to the model, at most --max-rounds times), apply it with the codemod and show "
        "the diff. Nothing is written without --write.",
    )
    rewrite.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    rewrite.add_argument("--write", action="store_true", help="write the verified changes")
    rewrite.add_argument(
        "--plan", metavar="FILE", help="apply this plan (JSON) instead of asking a model"
    )
    rewrite.add_argument("--max-rounds", type=int, metavar="N", help="plans per module (3)")
    rewrite.add_argument("--model", help="model name (AUTODURABLE_AI_MODEL)")
    rewrite.add_argument(
        "--base-url",
        help="endpoint, up to /v1 (AUTODURABLE_AI_BASE_URL, OPENAI_BASE_URL; for Ollama "
        "http://localhost:11434/v1)",
    )
    rewrite.add_argument(
        "--api-key-env", metavar="VAR", help="the environment variable holding the API key"
    )
    rewrite.add_argument(
        "--api-key",
        help="the API key (prefer AUTODURABLE_AI_API_KEY or --api-key-env: a key on the "
        "command line is visible to other users of the machine)",
    )
    rewrite.add_argument("--timeout", type=float, metavar="SECONDS", help="per request (120)")
    rewrite.add_argument(
        "--no-json-mode",
        dest="json_mode",
        action="store_const",
        const=False,
        help='do not send response_format {"type": "json_object"} (for servers without it)',
    )
    rewrite.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def add_mcp_parser(commands: Any) -> None:
    """``autodurable mcp``."""
    commands.add_parser(
        "mcp",
        help="serve the analyser, codemod and verifier to coding agents (MCP, stdio)",
        description="A Model Context Protocol server on stdin/stdout. Tools: explain, plan, "
        "apply (a dry run unless dry_run is false), verify; resource: autodurable://guide.",
    )


def main_ai(args: argparse.Namespace) -> int:
    """Run ``autodurable ai ...``; returns the exit code."""
    if args.ai_command == "prompt":
        return _prompt(args)
    if args.ai_command == "context":
        return _context(args)
    if args.ai_command == "rewrite":
        return _rewrite(args)
    args.ai_parser.print_help()
    return 0


def main_mcp() -> int:
    """Run ``autodurable mcp`` until the client closes the connection."""
    problem = missing_extra("autodurable mcp", ("mcp", "libcst"))
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from ._mcp import serve

    serve()
    return 0


def _prompt(args: argparse.Namespace) -> int:
    from ._guide import render_guide

    guide = render_guide()
    if args.check:
        try:
            current = Path(args.check).read_text(encoding="utf-8")
        except OSError as exc:
            print(f"autodurable: cannot read {args.check}: {exc}", file=sys.stderr)
            return 2
        if current != guide:
            print(
                f"{args.check} is not the current guide: autodurable ai prompt -o {args.check}",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(guide, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    sys.stdout.write(guide)
    return 0


def _modules(paths: list[str]) -> tuple[list[tuple[Any, str]], list[str]]:
    """(project, module) for each Python file under `paths`, and the files that are not modules."""
    from ..codemods._run import gather_files
    from ._project import Project, load_project, project_root

    projects: dict[Path, Project] = {}
    found: list[tuple[Any, str]] = []
    outside: list[str] = []
    for file in gather_files(paths):
        root = project_root(file.parent)
        if root not in projects:
            projects[root] = load_project(file)
        project = projects[root]
        module = project.module_of(file)
        if module is None:
            outside.append(str(file))
        else:
            found.append((project, module))
    return found, outside


def _context(args: argparse.Namespace) -> int:
    from ._rewrite import messages_for

    if _missing_paths(args.paths):
        return 2
    found, outside = _modules(args.paths)
    everything: list[dict[str, Any]] = []  # {"module": str, "messages": list[dict[str, str]]}
    for project, module in found:
        messages = messages_for(project, module)
        if messages is None:
            print(f"{module}: cannot be analysed", file=sys.stderr)
            continue
        everything.append({"module": module, "messages": messages})
    if args.json:
        print(json.dumps(everything, indent=2))
    else:
        for index, item in enumerate(everything):
            if index == 0:
                print(f"--- system ---\n{item['messages'][0]['content']}")
            print(f"--- user ({item['module']}) ---\n{item['messages'][1]['content']}")
    for path in outside:
        print(f"{path}: skipped: not a module of its project", file=sys.stderr)
    return 0


def _rewrite(args: argparse.Namespace) -> int:
    problem = missing_extra("autodurable ai rewrite", ("libcst",))
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from ._rewrite import rewrite_module

    if _missing_paths(args.paths):
        return 2
    if (args.max_rounds is not None and args.max_rounds < 1) or (
        args.timeout is not None and args.timeout <= 0
    ):
        print("autodurable: --max-rounds takes a number >= 1, --timeout one > 0", file=sys.stderr)
        return 2
    found, outside = _modules(args.paths)
    if not found:
        print("autodurable: no modules to rewrite under the given paths", file=sys.stderr)
        return 2
    given: RewritePlan | None = None
    ask: Ask | None = None
    rounds = 1
    if args.plan:
        if len(found) != 1:
            print("autodurable: --plan applies to one module: give one file", file=sys.stderr)
            return 2
        given = _read_plan(args.plan)
        if given is None:
            return 2
    else:
        ask, rounds = _ask_model(args, found[0][0].ai)

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    outcomes = [
        rewrite_module(project, module, ask=ask, plan=given, max_rounds=rounds, report=progress)
        for project, module in found
    ]
    failed = _show_changes(outcomes, write=args.write)
    _print_report(outcomes, outside, written=args.write)
    return 1 if failed else 0


def _read_plan(path: str) -> RewritePlan | None:
    """The plan in the file `path`, or None after saying why it cannot be used."""
    from ._schema import PlanError, parse_plan

    try:
        return parse_plan(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"autodurable: cannot read {path}: {exc}", file=sys.stderr)
        return None
    except PlanError as exc:
        print(f"autodurable: {path} is not a valid plan: {exc}", file=sys.stderr)
        return None


def _ask_model(args: argparse.Namespace, pyproject: Any) -> tuple[Ask, int]:
    """The model to ask (options, environment, then pyproject) and the rounds allowed per module."""
    from ._client import ChatClient
    from ._settings import max_rounds, resolve

    options = {
        "base_url": args.base_url,
        "model": args.model,
        "api_key": args.api_key,
        "api_key_env": args.api_key_env,
        "timeout": args.timeout,
        "json_mode": args.json_mode,
    }
    endpoint = resolve(options, os.environ, pyproject)
    rounds = max_rounds(args.max_rounds, pyproject)
    client = ChatClient(endpoint)
    if not args.quiet:
        print(f"autodurable: asking {endpoint.describe()}", file=sys.stderr)
    return client.complete, rounds


def _show_changes(outcomes: list[ModuleOutcome], *, write: bool) -> bool:
    """Print each changed module's diff, writing it when `write`; True if any module failed."""
    from ..codemods._run import unified_diff
    from ._rewrite import write_checked

    failed = False
    for outcome in outcomes:
        candidate = outcome.candidate
        if outcome.changed and candidate is not None and candidate.text is not None:
            shown = _display(outcome.path)
            sys.stdout.write(unified_diff(candidate.original, candidate.text, shown))
            if write:
                why = write_checked(outcome.path, candidate.original, candidate.text)
                if why:
                    print(f"{shown}: {why}", file=sys.stderr)
                    failed = True
                else:
                    outcome.written = True
        failed |= outcome.status in ("gave up", "rejected", "failed")
    return failed


def _print_report(outcomes: list[ModuleOutcome], outside: list[str], *, written: bool) -> None:
    """Print what happened to each module, the paths skipped, and the summary line."""
    from ._rewrite import render_outcome, render_summary

    print()
    for outcome in outcomes:
        print(render_outcome(outcome, written=written))
    for path in outside:
        print(f"{_display(path)}: skipped: not a module of its project")
    print(render_summary(outcomes, written=written))


def _missing_paths(paths: list[str]) -> bool:
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"autodurable: no such file or folder: {missing[0]}", file=sys.stderr)
    return bool(missing)


def _display(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
