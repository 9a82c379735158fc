"""How well the analyser classifies real application idioms, against human labels.

Run ``python benchmarks/transparency.py [--suite PATH] [--misses] [--check]``, or
``python benchmarks/transparency.py --scan PATH [PATH ...]``.

The suite in ``benchmarks/idioms/`` has one module per idiom family (HTTP
clients, ORMs, cloud SDKs, messaging, files and processes, LLM clients, clocks
and randomness, framework injection, concurrency, negatives). Every function
carries its label on its ``def`` line: ``# expect: step`` (it does I/O or
nondeterminism itself), ``workflow`` (no I/O of its own, calls the project's
steps or workflows) or ``plain`` (neither); ``benchmarks/idioms/README.md``
gives the rule. The script runs ``autodurable explain --json`` on the suite (in a
child process, exactly what a user sees), matches each plan to its label by
file and ``def`` line, and prints per family and in total:

- step recall: labelled steps whose own I/O the plan records: made steps
  (role ``step``, any style), workflow code with inline sites (role
  ``workflow``, style ``inline``: each I/O expression is recorded on its own,
  which is a finer way of recording it), or watched (style ``watched``:
  confirmed at run time);
- step precision: among functions whose own I/O the plan records statically
  (a step that is not watched, or inline workflow code), the share labelled
  step; a watched function is confirmed at run time, so it never counts
  against precision;
- static / watched: how many labelled steps were resolved statically and how
  many are left to the run-time watch; "static share" is the first over all
  labelled steps;
- workflow accuracy: labelled workflows with role ``workflow``;
- plain harmed: the share of labelled-plain functions made steps or watched.

The totals also count the labelled steps recorded as inline workflow code,
and labelled-plain functions made workflows.

``--suite PATH`` scores another folder labelled by the same rule (for instance
the held-out ``benchmarks/idioms_heldout/``); its families are its modules.
``--misses`` lists every disagreement (and every labelled step left to the
watch) with the plan's reason. ``--check`` exits 1 unless recall, precision and
workflow accuracy are at least 0.95, the static share at least 0.85 and plain
harmed at most 0.10; without it the exit status is 0 whatever the scores.

``--scan PATH [PATH ...]`` analyses other code instead, for instance installed
packages (``site-packages/<pkg>``): each path (a package folder or a module)
is copied, ``.py`` files only, into a temporary project of its own (a
``pyproject.toml`` marks its root, so that no enclosing project is analysed
with it) and the script prints, per path, the functions, steps, workflows,
watched functions and the share watched, and the share of method calls
(``x.f(...)``) made on objects the analyser could not type. Nothing is
labelled there: it shows how much of unfamiliar code would be left to the
run-time watch.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IDIOMS = ROOT / "benchmarks" / "idioms"
FAMILIES = [
    "web_clients",
    "orms",
    "cloud_sdks",
    "messaging",
    "files_processes",
    "llm_clients",
    "clocks_random",
    "framework_injection",
    "concurrency",
    "negatives",
]
LABELS = ("step", "workflow", "plain")
LABEL = re.compile(r"#\s*expect:\s*(\w+)")
THRESHOLDS = {  # metric: (bound, "min" or "max")
    "recall": (0.95, "min"),
    "precision": (0.95, "min"),
    "workflow": (0.95, "min"),
    "static": (0.85, "min"),
    "plain harmed": (0.10, "max"),
}


@dataclass
class Labelled:
    """A function of the suite and its label (None when the def line has none)."""

    family: str
    path: Path
    qualname: str
    line: int
    decorator_lines: list[int]
    label: str | None


@dataclass
class Predicted:
    role: str
    style: str
    reason: str
    matched: bool = True


def labelled_functions(folder: Path = IDIOMS) -> list[Labelled]:
    """Every function and method of the suite's modules, with its label."""
    return [f for path in sorted(folder.glob("*.py")) for f in functions_of(path)]


def functions_of(path: Path) -> list[Labelled]:
    """The functions of one module in source order, with qualnames as Python writes them."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[Labelled] = []
    pending: list[tuple[ast.AST, str]] = [(ast.parse(source, str(path)), "")]
    while pending:
        node, prefix = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                pending.append((child, f"{prefix}{child.name}."))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                match = LABEL.search(lines[child.lineno - 1])
                found.append(
                    Labelled(
                        family=path.stem,
                        path=path.resolve(),
                        qualname=f"{prefix}{child.name}",
                        line=child.lineno,
                        decorator_lines=[d.lineno for d in child.decorator_list],
                        label=match.group(1) if match else None,
                    )
                )
                pending.append((child, f"{prefix}{child.name}.<locals>."))
            else:
                pending.append((child, prefix))
    return sorted(found, key=lambda f: f.line)


def explain(paths: list[Path], cwd: Path = ROOT) -> dict[str, Any]:
    """The JSON that ``autodurable explain --json PATHS`` prints."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-m", "autodurable", "explain", "--json", *map(str, paths)],
        cwd=cwd,
        env=env,
        capture_output=True,
        encoding="utf-8",
    )
    if done.returncode != 0:
        raise SystemExit(f"autodurable explain failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def predictions(functions: list[Labelled], data: dict[str, Any]) -> list[Predicted]:
    """The plan of each labelled function: matched by file and def (or decorator) line."""
    by_line: dict[tuple[Path, int], dict[str, Any]] = {}
    by_name: dict[tuple[Path, str], dict[str, Any]] = {}
    for module in data["modules"]:
        path = Path(module["path"]).resolve()
        for plan in module["functions"]:
            by_line[(path, plan["line"])] = plan
            by_name[(path, plan["qualname"])] = plan
    out = []
    for function in functions:
        lines = [function.line, *function.decorator_lines]
        plan = next((by_line[key] for n in lines if (key := (function.path, n)) in by_line), None)
        if plan is None or plan["qualname"] != function.qualname:
            plan = by_name.get((function.path, function.qualname), plan)
        if plan is None:
            out.append(Predicted("plain", "none", "no plan for this function", matched=False))
        else:
            out.append(Predicted(plan["role"], plan["style"], plan["reason"]))
    return out


def is_inline(p: Predicted) -> bool:
    return p.role == "workflow" and p.style == "inline"


def is_static_step(p: Predicted) -> bool:
    """Its own I/O is recorded, as decided statically."""
    return (p.role == "step" and p.style != "watched") or is_inline(p)


def is_step_or_watched(p: Predicted) -> bool:
    return is_static_step(p) or p.style == "watched"


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def score(pairs: list[tuple[Labelled, Predicted]]) -> dict[str, Any]:
    """Counts and metrics for some (label, prediction) pairs."""
    steps = [p for f, p in pairs if f.label == "step"]
    workflows = [p for f, p in pairs if f.label == "workflow"]
    plains = [p for f, p in pairs if f.label == "plain"]
    static_predicted = [f for f, p in pairs if is_static_step(p)]
    static = sum(is_static_step(p) for p in steps)
    watched = sum(p.style == "watched" for p in steps)
    return {
        "functions": len(pairs),
        "step": len(steps),
        "workflow_n": len(workflows),
        "plain": len(plains),
        "static_n": static,
        "watched_n": watched,
        "inline_n": sum(is_inline(p) for p in steps),
        "unmatched": sum(not p.matched for _, p in pairs),
        "recall": ratio(sum(is_step_or_watched(p) for p in steps), len(steps)),
        "precision": ratio(sum(f.label == "step" for f in static_predicted), len(static_predicted)),
        "static": ratio(static, len(steps)),
        "workflow": ratio(sum(p.role == "workflow" for p in workflows), len(workflows)),
        "plain harmed": ratio(
            sum(p.role == "step" or p.style == "watched" for p in plains), len(plains)
        ),
        "plain workflow": sum(p.role == "workflow" for p in plains),
    }


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    header = (
        f"{'family':<20} {'fns':>4} {'step':>5} {'wf':>4} {'plain':>5} {'recall':>7} "
        f"{'precis.':>7} {'static':>7} {'watched':>7} {'wf acc':>7} {'plain harmed':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, s in rows:
        if name == "total":
            print("-" * len(header))
        print(
            f"{name:<20} {s['functions']:>4} {s['step']:>5} {s['workflow_n']:>4} "
            f"{s['plain']:>5} {pct(s['recall']):>7} {pct(s['precision']):>7} "
            f"{s['static_n']:>7} {s['watched_n']:>7} {pct(s['workflow']):>7} "
            f"{pct(s['plain harmed']):>12}"
        )


def misses_target(metric: str, value: float | None) -> bool:
    """Whether a metric's value misses its target (an undefined metric misses nothing)."""
    bound, kind = THRESHOLDS[metric]
    return value is not None and (value < bound if kind == "min" else value > bound)


def failures(total: dict[str, Any]) -> list[str]:
    """The targets that the totals miss, as text."""
    return [
        f"{metric} {total[metric]:.3f} {'<' if kind == 'min' else '>'} {bound}"
        for metric, (bound, kind) in THRESHOLDS.items()
        if misses_target(metric, total[metric])
    ]


def print_totals(total: dict[str, Any]) -> None:
    print()
    print("totals")
    counts = f"step {total['step']}, workflow {total['workflow_n']}, plain {total['plain']}"
    print(f"  {'functions':<20} {total['functions']:>6}  ({counts})")
    for metric, (bound, kind) in THRESHOLDS.items():
        value = total[metric]
        target = f"{'>=' if kind == 'min' else '<='} {bound:.2f}"
        verdict = "-" if value is None else "MISSED" if misses_target(metric, value) else "ok"
        name = {"workflow": "workflow accuracy", "static": "static share"}.get(metric, metric)
        print(f"  {name:<20} {pct(value):>6}  (target {target}: {verdict})")
    print(
        f"  labelled steps: {total['static_n']} resolved statically, {total['watched_n']} watched"
    )
    print(f"  labelled steps recorded as inline workflow code: {total['inline_n']}")
    print(f"  labelled plain made workflows: {total['plain workflow']}")
    if total["unmatched"]:
        print(f"  labelled functions with no plan: {total['unmatched']}")


def miss_kind(function: Labelled, p: Predicted) -> str | None:
    """Why a function is listed by --misses (None: plan and label agree)."""
    if function.label == "step":
        if not is_step_or_watched(p):
            return "step missed"
        return "step watched" if p.style == "watched" else None
    if function.label == "workflow":
        if p.role == "workflow":
            return None
        return "workflow made step" if p.role == "step" else "workflow missed"
    if p.style == "watched":
        return "plain watched"
    if p.role == "step":
        return "plain made step"
    return "plain made workflow" if p.role == "workflow" else None


def print_misses(pairs: list[tuple[Labelled, Predicted]]) -> None:
    rows = [(kind, f, p) for f, p in pairs if (kind := miss_kind(f, p)) is not None]
    print()
    print(f"misses ({len(rows)})")
    for kind, f, p in rows:
        where = f"{f.family}.py:{f.line}"
        print(f"  {kind:<19} {where:<26} {f.qualname:<32} {p.role}/{p.style}: {p.reason}")


def run_suite(args: argparse.Namespace) -> int:
    suite = args.suite.resolve()
    families = FAMILIES if suite == IDIOMS else sorted(p.stem for p in suite.glob("[!_]*.py"))
    functions = labelled_functions(suite)
    unlabelled = [f for f in functions if f.label not in LABELS]
    for f in unlabelled:
        print(f"{f.family}.py:{f.line}: {f.qualname} has no valid label", file=sys.stderr)
    functions = [f for f in functions if f.label in LABELS]
    pairs = list(zip(functions, predictions(functions, explain([suite])), strict=True))
    rows = [
        (family, score([(f, p) for f, p in pairs if f.family == family])) for family in families
    ]
    total = score(pairs)
    print(f"labelled idioms: {len(pairs)} functions in {len(families)} families")
    print()
    print_table([*rows, ("total", total)])
    print_totals(total)
    if args.misses:
        print_misses(pairs)
    failed = failures(total)
    if args.check and (failed or unlabelled):
        print(f"\ncheck failed: {'; '.join(failed) or 'unlabelled functions'}", file=sys.stderr)
        return 1
    return 0


def copy_sources(source: Path, dest: Path) -> None:
    """Copy the .py files of a package folder (or one module) into `dest`."""
    if source.is_file():
        shutil.copy2(source, dest / source.name)
        return
    for path in source.rglob("*.py"):
        target = dest / source.name / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def run_scan(paths: list[str]) -> int:
    from autodurable._analysis import analyse_project

    header = (
        f"{'path':<28} {'files':>6} {'fns':>6} {'steps':>6} {'wfs':>6} "
        f"{'watched':>8} {'share watched':>14} {'untyped calls':>14}"
    )
    print(header)
    print("-" * len(header))
    for raw in paths:
        source = Path(raw).resolve()
        name = source.name
        if not source.exists():
            print(f"{name:<28} no such file or folder")
            continue
        with tempfile.TemporaryDirectory(prefix="transparency-") as tmp:
            project = Path(tmp)
            (project / "pyproject.toml").write_text('[project]\nname = "scan"\n')
            copy_sources(source, project)
            data = explain([project], cwd=project)
            stats = analyse_project(project).statistics
        plans = [plan for module in data["modules"] for plan in module["functions"]]
        steps = sum(p["role"] == "step" for p in plans)
        workflows = sum(p["role"] == "workflow" for p in plans)
        watched = sum(p["style"] == "watched" for p in plans)
        share = pct(ratio(watched, len(plans)))
        untyped = pct(ratio(stats["untyped_method_calls"], stats["method_calls"]))
        failed = f"  ({len(data['errors'])} file(s) skipped)" if data["errors"] else ""
        print(
            f"{name:<28} {len(data['modules']):>6} {len(plans):>6} {steps:>6} {workflows:>6} "
            f"{watched:>8} {share:>14} {untyped:>14}{failed}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every disagreement")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--suite", type=Path, default=IDIOMS, metavar="PATH", help="the labelled folder to score"
    )
    parser.add_argument(
        "--scan", nargs="+", metavar="PATH", help="analyse these packages or modules instead"
    )
    args = parser.parse_args(argv)
    if args.scan:
        return run_scan(args.scan)
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
