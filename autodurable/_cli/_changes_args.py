"""The arguments of ``autodurable workflows export | upgrade | rewind`` and
``autodurable replay`` (their commands are in `_changes`).

Invariant: defining the arguments imports nothing but argparse's helpers here,
so building a command's parser costs nothing of what its command needs.
"""

from __future__ import annotations

from typing import Any

from ._format import step_number


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
