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
from ._format import emit, json_text, step_number
from ._workflows_act import import_modules


def add_workflow_parsers(sub: Any, common: Any) -> None:
    """``workflows export | upgrade | rewind`` (`common` adds --json and --database-url)."""
    export = sub.add_parser(
        "export",
        help="a workflow's recorded history as JSON (for replay checks)",
        description="Write a workflow's recorded history (its inputs and steps) as JSON: "
        "keep histories of production workflows as fixtures, and replay them against new "
        "code with `autodurable replay --check FILE` or pytest --autodurable-replay DIR.",
    )
    export.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    export.add_argument("--output", "-o", metavar="FILE", help="write it here (default: print)")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    common(export, json_output=False)

    upgrade = sub.add_parser(
        "upgrade",
        help="move waiting workflows of older versions to this code when they replay on it",
        description="Replay each unfinished workflow recorded by another version of its code "
        "against the code here (no step runs), and record this code's version on those that "
        "replay cleanly, so that executors of this code resume them. The others are listed "
        "with their first divergence.",
    )
    upgrade.add_argument("--check", action="store_true", help="only say what would move")
    upgrade.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import this module first: one defining the workflows (repeat)",
    )  # fmt: skip
    common(upgrade)

    rewind = sub.add_parser(
        "rewind",
        help="run an ended workflow again in place from step N (the counterpart of fork)",
        description="Make a finished, failed or cancelled workflow pending again under its own "
        "id: the steps before --to-step keep their recorded results, the ones from it on are "
        "forgotten and run again (under the same idempotency keys) by whichever executor "
        "adopts it. Messages it received from that step on are not delivered again.",
    )
    rewind.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    rewind.add_argument(
        "--to-step", type=step_number, required=True, metavar="N",
        help="the first step to run again (autodurable workflows steps ID lists them)",
    )  # fmt: skip
    common(rewind)


def add_replay_parser(commands: Any) -> None:
    """``autodurable replay --check FILE...`` and ``autodurable replay ID``."""
    replay = commands.add_parser(
        "replay",
        help="replay a recorded workflow with the current code, running nothing "
        "(step through it with --pdb; check histories with --check)",
        description="Run a recorded workflow's current code in this process with every "
        "step, message and clock reading answered from the record: nothing is executed. "
        "`replay ID` replays one workflow (an id in the state database, or a file written "
        "by `autodurable workflows export`); --until-step N stops where the code calls "
        "step N and shows what it knew there; --pdb opens the debugger in the workflow's "
        "code there (step 1 by default). `replay --check FILE...` reports the first "
        "divergence of each history: a step inserted, removed, renamed or moved, other "
        "arguments, another result.",
    )
    replay.add_argument(
        "targets", nargs="+", metavar="ID|FILE",
        help="a workflow id or a history file (with --check: history files)",
    )  # fmt: skip
    replay.add_argument(
        "--check", action="store_true", help="check each history file and report divergences"
    )
    replay.add_argument(
        "--until-step", type=step_number, metavar="N",
        help="stop where the code calls step N (autodurable workflows steps ID lists them)",
    )  # fmt: skip
    replay.add_argument(
        "--pdb", action="store_true",
        help="open pdb in the workflow's code where it calls step N (default 1), then go on",
    )  # fmt: skip
    replay.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import this module first: one defining the workflows (repeat)",
    )  # fmt: skip
    replay.add_argument("--json", action="store_true", help="one JSON document on stdout")


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
