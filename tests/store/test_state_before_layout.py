"""A state database written before the package's reorganisation opens and resumes now.

tests/fixtures/state-before-layout.db was written by the code of commit 7b16ca5
(before the modules moved into ``autodurable/_core``, ``_control``, ``_cli``) with
the workflows of tests/fixtures/old_state_app.py; tests/fixtures/make_old_state.py
regenerates it and documents what it holds. Each test works on a copy.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import autodurable

from ..helpers import child_env, count_lines, run_command, run_workflow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APP_VERSION = "state-before-layout"  # old_state_app.APP_VERSION, configured by the generator


@pytest.fixture
def old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the old database, configured; old_state_app importable; effects counted."""
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / "state-before-layout.db", path)
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setenv("OLD_STATE_EFFECTS", str(tmp_path / "effects"))
    autodurable.configure(database_url=f"sqlite:///{path}", app_version=APP_VERSION)
    yield path
    sys.modules.pop("old_state_app", None)


def test_the_finished_workflow_reads_back_with_its_result_and_event(old_state: Path) -> None:
    handle = autodurable.get_workflow("finished")
    assert handle.status() == "succeeded"
    assert handle.result(timeout=5) == [10, 20, 30]
    assert [(s.position, s.name) for s in handle.steps()] == [
        (1, "autodurable.set_event:stage"),
        (2, "add"),
        (3, "add"),
        (4, "add"),
        (5, "autodurable.set_event:stage"),
    ]
    assert autodurable.get_event("finished", "stage", timeout=0) == "done"


def test_the_killed_workflow_resumes_running_only_its_missing_step(old_state: Path) -> None:
    report = autodurable.recover()
    assert [h.workflow_id for h in report.resumed] == ["killed"]
    assert report.unrecoverable == [] and report.other_versions == []
    assert report.wait(timeout=30) == {"killed": [10, 20, 30]}
    # Steps 1 and 2 were recorded by the old code: replayed, not run again.
    assert count_lines(old_state.parent / "effects") == {"killed:3": 1}
    handle = autodurable.get_workflow("killed")
    assert handle.status() == "succeeded"
    assert [s.name for s in handle.steps()] == [
        "autodurable.set_event:stage",
        *["add"] * 3,
        "autodurable.set_event:stage",
    ]
    assert autodurable.recover().resumed == []


def test_the_cancelled_workflows_stored_error_is_workflow_cancelled(old_state: Path) -> None:
    handle = autodurable.get_workflow("cancelled")
    assert handle.status() == "cancelled"
    with pytest.raises(autodurable.WorkflowCancelled) as caught:
        handle.result(timeout=5)
    # Stored as "autodurable._errors:WorkflowCancelled": still the public class.
    assert type(caught.value) is autodurable.WorkflowCancelled
    assert (caught.value.workflow_id, caught.value.reason) == ("cancelled", "changed my mind")


def test_a_message_sent_then_is_received_now(old_state: Path) -> None:
    import old_state_app

    assert run_workflow(old_state_app.inbox, "inbox-1", "inbox-1") == "hello"


def test_the_cli_lists_the_old_workflows(old_state: Path) -> None:
    done = run_command(
        [sys.executable, "-m", "autodurable", "--database-url", f"sqlite:///{old_state}",
         "workflows", "list", "--json"],
        cwd=old_state.parent,
        env=child_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = {w["workflow_id"]: w for w in json.loads(done.stdout)["workflows"]}
    assert {wid: w["status"] for wid, w in listed.items()} == {
        "finished": "succeeded",
        "killed": "pending",
        "cancelled": "cancelled",
    }
    assert listed["finished"]["name"] == "old_state_app:order"
    assert listed["finished"]["app_version"] == APP_VERSION
