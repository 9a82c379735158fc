"""Changing workflow code safely from the command line, on both stores: export a
history and replay it (`replay --check`), move waiting workflows of an older
version to the code here (`workflows upgrade`, and `upgrade = "when-compatible"`
at recover()), rewind an ended workflow in place (`workflows rewind`); bad input
is one line and changes nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import autodurable
from autodurable._cli import main
from autodurable._core._runtime import get_runtime

from ..helpers import Crash, crash_points, maybe_crash, run_workflow, wait_until

pytestmark = pytest.mark.usefixtures("database")

ran: Counter[str] = Counter()
VARIANT = {"second": "pack"}  # which step the code calls second: the code "changes"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()
    VARIANT["second"] = "pack"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@autodurable.step
def pick(order: str) -> str:
    ran["pick"] += 1
    return f"picked {order}"


@autodurable.step
def pack(order: str) -> str:
    ran["pack"] += 1
    return f"packed {order}"


@autodurable.step
def wrap(order: str) -> str:
    ran["wrap"] += 1
    return f"wrapped {order}"


@autodurable.step
def ship(order: str) -> str:
    ran["ship"] += 1
    return f"shipped {order}"


@autodurable.workflow
def fulfil(order: str) -> list[str]:
    done = [pick(order), (pack if VARIANT["second"] == "pack" else wrap)(order)]
    maybe_crash("before ship")
    return [*done, ship(order)]


def test_export_then_replay_check_passes_and_then_catches_a_change(capsys, tmp_path):
    run_workflow(fulfil, "f1", "o1")
    history = tmp_path / "f1.json"
    status, _, err = cli(capsys, "workflows", "export", "f1", "--output", str(history))
    assert status == 0 and f"wrote the history of f1 to {history}" in err
    document = json.loads(history.read_text())
    assert [s["name"] for s in document["steps"]] == ["pick", "pack", "ship"]
    before = dict(ran)
    status, out, _ = cli(capsys, "replay", "--check", str(history))
    assert status == 0 and "f1: replays its 3 step(s) and ends as recorded" in out
    VARIANT["second"] = "wrap"
    status, out, _ = cli(capsys, "replay", "--check", str(history), "--json")
    assert status == 1
    (found,) = json.loads(out)["histories"]
    assert found["ended"] == "diverged"
    assert (
        "step 2: the recorded history has step 'pack' here but the code now calls 'wrap'"
        in (found["divergence"])
    )
    assert dict(ran) == before  # no step ran
    # export refuses to overwrite, and prints without --output
    status, _, err = cli(capsys, "workflows", "export", "f1", "--output", str(history))
    assert status == 2 and "exists; add --force" in err
    status, out, _ = cli(capsys, "workflows", "export", "f1")
    assert status == 0 and json.loads(out)["workflow"]["workflow_id"] == "f1"


def test_bad_histories_and_ids_are_one_line_and_nothing_runs(capsys, tmp_path):
    good = tmp_path / "good.json"
    run_workflow(fulfil, "f2", "o2")
    cli(capsys, "workflows", "export", "f2", "--output", str(good))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    before = dict(ran)
    status, out, err = cli(capsys, "replay", "--check", str(good), str(bad))
    assert status == 2 and out == ""
    assert err.strip().endswith("write one with `autodurable workflows export ID --output FILE`")
    assert err.count("\n") == 1 and "bad.json: not an autodurable history" in err
    assert dict(ran) == before
    status, _, err = cli(capsys, "workflows", "export", "nope")
    assert status != 0 and "nope" in err and err.count("\n") == 1
    status, _, err = cli(capsys, "workflows", "rewind", "f2", "--to-step", "9")
    assert status == 2 and "f2 has steps 1 to 3: --to-step takes one of them" in err


def test_upgrade_moves_the_waiting_workflows_that_replay_and_leaves_the_others(capsys, database):
    autodurable.configure(database_url=database, app_version="v1")
    for workflow_id, second in (("same", "pack"), ("changed", "wrap")):
        VARIANT["second"] = second
        crash_points.add("before ship")
        with pytest.raises(Crash):
            run_workflow(fulfil, workflow_id, workflow_id)
    # The deploy: version v2 of the code, which calls pack second.
    VARIANT["second"] = "pack"
    autodurable.configure(database_url=database, app_version="v2")
    status, out, _ = cli(capsys, "workflows", "upgrade", "--check")
    assert status == 1
    assert "same (" in out and "replays cleanly: would move" in out
    assert "changed (" in out and "does not replay on the code here" in out
    assert {w.workflow_id: w.app_version for w in autodurable.list_workflows()} == {
        "same": "v1",
        "changed": "v1",
    }  # --check wrote nothing
    status, out, _ = cli(capsys, "workflows", "upgrade", "--json")
    moved = {w["workflow_id"]: w["upgraded"] for w in json.loads(out)["workflows"]}
    assert status == 1 and moved == {"same": True, "changed": False}
    report = autodurable.recover()
    assert [u.workflow_id for u in report.other_versions] == ["changed"]  # left to v1
    assert autodurable.get_workflow("same").result(timeout=30) == [
        "picked same", "packed same", "shipped same",
    ]  # fmt: skip
    assert ran["ship"] == 1


def test_recover_upgrades_compatible_workflows_when_configured(database, tmp_path):
    autodurable.configure(database_url=database, app_version="v1")
    crash_points.add("before ship")
    with pytest.raises(Crash):
        run_workflow(fulfil, "auto", "auto")
    Path("pyproject.toml").write_text('[tool.autodurable]\nupgrade = "when-compatible"\n')
    autodurable.configure(database_url=database, app_version="v2")
    autodurable.recover()
    assert autodurable.get_workflow("auto").result(timeout=30)[-1] == "shipped auto"
    assert get_runtime().store.get_workflow("auto").app_version == "v2"


def test_rewind_runs_an_ended_workflow_again_from_a_step_in_place(capsys):
    assert run_workflow(fulfil, "r1", "o3")[-1] == "shipped o3"
    status, out, _ = cli(capsys, "workflows", "rewind", "r1", "--to-step", "2", "--json")
    assert status == 0 and json.loads(out) == {
        "workflow_id": "r1", "to_step": 2, "steps_kept": 1, "status": "pending",
    }  # fmt: skip
    VARIANT["second"] = "wrap"  # the fixed code runs from step 2
    autodurable.recover()
    wait_until(lambda: autodurable.get_workflow("r1").status() == "succeeded")
    assert autodurable.get_workflow("r1").result() == ["picked o3", "wrapped o3", "shipped o3"]
    assert ran == Counter(pick=1, pack=1, wrap=1, ship=2)
    status, _, err = cli(capsys, "workflows", "rewind", "r1", "--to-step", "1")
    assert status == 0
    status, out, _ = cli(capsys, "workflows", "show", "r1", "--json")
    rewinds = json.loads(out)["events"]["autodurable.rewinds"]
    assert [r["to_step"] for r in rewinds] == [2, 1]  # every rewind kept, oldest first
    status, _, err = cli(capsys, "workflows", "rewind", "r1", "--to-step", "1")
    assert status == 2 and "r1 is pending: only a finished, failed or cancelled" in err
