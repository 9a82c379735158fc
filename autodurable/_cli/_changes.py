"""Changing workflow code safely: ``autodurable workflows export | upgrade | rewind``
and ``autodurable replay --check FILE...``.

Invariants are those of the CLI (`_main`), and:
- ``export`` writes a file only where ``--output`` says, and never over an
  existing one without ``--force``; by default it prints the history.
- ``replay --check`` and ``upgrade --check`` execute no step and write nothing
  to the store; ``upgrade`` writes only the versions of workflows that replay
  cleanly; ``rewind`` changes one ended workflow.
- Bad input (a file that is not a history, an unknown id, a step out of
  range) is one line on stderr and exit 2, with nothing changed. A divergence
  found is exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._control._histories import export_history, read_history
from .._control._operations import workflow_info
from .._control._replay import replay_check
from .._control._timetravel import load_history, open_pdb, time_travel
from .._control._upgrade import upgrade_workflows
from .._core._runtime import get_runtime
from .._errors import AutodurableError
from ._format import emit, json_text
from ._workflows_act import import_modules


def export_command(args: argparse.Namespace) -> int:
    """``workflows export``."""
    text = json_text(export_history(args.workflow_id).to_json())
    if args.output is None:
        print(text)
        return 0
    target = Path(args.output)
    if target.exists() and not args.force:
        raise AutodurableError(f"{target} exists; add --force to replace it")
    target.write_text(text + "\n", encoding="utf-8")
    print(f"wrote the history of {args.workflow_id} to {target}", file=sys.stderr)
    return 0


def replay_command(args: argparse.Namespace) -> int:
    """``replay --check FILE...`` or ``replay ID [--until-step N] [--pdb]``."""
    if not args.check:
        return _travel_command(args)
    if args.until_step is not None or args.pdb:
        raise AutodurableError("--until-step and --pdb replay one workflow: leave out --check")
    import_modules(args.imports)
    histories = []
    for name in args.targets:  # every file is read first: a bad one changes nothing
        histories.append(read_history(name))
    outcomes = [replay_check(history) for history in histories]
    document = {
        "histories": [
            {"file": h.source, "workflow_id": o.workflow_id, "name": o.name, "steps": o.steps,
             "ended": o.ended, "divergence": o.divergence}
            for h, o in zip(histories, outcomes, strict=True)
        ]
    }  # fmt: skip
    lines = [f"{h.source}: {o}" for h, o in zip(histories, outcomes, strict=True)]
    emit(args, document, "\n".join(lines))
    return 0 if all(o.ok for o in outcomes) else 1


def _travel_command(args: argparse.Namespace) -> int:
    if len(args.targets) != 1:
        raise AutodurableError(
            "replay takes one workflow id or history file (--check takes several files)"
        )
    if args.pdb and args.json:
        raise AutodurableError("--pdb is interactive: leave out --json")
    import_modules(args.imports)
    history = load_history(args.targets[0])
    until = args.until_step if args.until_step is not None else (1 if args.pdb else None)
    if args.pdb:
        print(
            f"replaying {history.workflow_id} with nothing executed; pdb opens in the "
            f"workflow's code once step {until} returns its recorded result",
            file=sys.stderr,
        )
    travel = time_travel(history, until_step=until, debugger=open_pdb if args.pdb else None)
    outcome, point = travel.outcome, travel.stopped
    document: dict[str, Any] = {
        "workflow_id": outcome.workflow_id, "name": outcome.name, "steps": outcome.steps,
        "ended": outcome.ended, "divergence": outcome.divergence,
        "stopped": None if point is None or travel.debugged else {
            "step": point.step, "name": point.name, "status": point.status,
            "file": point.file, "line": point.line, "function": point.function,
            "locals": point.locals,
        },
    }  # fmt: skip
    text = str(outcome) if travel.debugged else str(travel)
    emit(args, document, text)
    return 0 if outcome.ok else 1


def upgrade_command(args: argparse.Namespace) -> int:
    """``workflows upgrade [--check]``."""
    import_modules(args.imports)
    found = upgrade_workflows(check=args.check)
    document = {
        "check": args.check,
        "workflows": [
            {"workflow_id": u.workflow_id, "name": u.name, "from": u.recorded_version,
             "to": u.code_version, "upgraded": u.upgraded, "why": u.why}
            for u in found
        ],
    }  # fmt: skip
    if not found:
        text = "no unfinished workflow of another version of its code"
    else:
        text = "\n".join(str(u) for u in found)
        if args.check:
            text = text.replace(": left: ", ": would stay: ").replace(
                "replays cleanly", "replays cleanly: would move"
            )
    emit(args, document, text)
    stuck = [u for u in found if not u.upgraded and not (args.check and "cleanly" in u.why)]
    return 1 if stuck else 0


def rewind_command(args: argparse.Namespace) -> int:
    """``workflows rewind ID --to-step N``."""
    info = workflow_info(args.workflow_id)
    store = get_runtime().store
    steps = store.list_steps(info.workflow_id)
    last = max((s.position for s in steps if not s.branch), default=0)
    if not 1 <= args.to_step <= max(last, 1):
        raise AutodurableError(
            f"{info.workflow_id} has steps 1 to {last}: --to-step takes one of them "
            f"(autodurable workflows steps {info.workflow_id} lists them)"
        )
    kept = store.rewind_workflow(info.workflow_id, args.to_step)
    if kept is None:
        raise AutodurableError(
            f"{info.workflow_id} is {info.status}: only a finished, failed or cancelled "
            "workflow can be rewound (cancel it first)"
        )
    document: dict[str, Any] = {"workflow_id": info.workflow_id, "to_step": args.to_step,
                                "steps_kept": kept, "status": "pending"}  # fmt: skip
    text = (
        f"rewound {info.workflow_id} to step {args.to_step}: {kept} recorded step(s) kept; "
        "it is pending, and runs from there in the next process that resumes workflows "
        "(one that calls autodurable.recover(), or `autodurable worker --import MODULE`)"
    )
    emit(args, document, text)
    return 0
