"""Replay checks and patches, on both stores: a history exported from the store is
replayed by the current code without running a step; an inserted, removed,
renamed or reordered step is caught with both steps named; patched code replays
old histories on the old branch and runs new executions on the new one; then
`deprecate_patch`, then its removal."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest

import autodurable
from autodurable._control._histories import HistoryError, export_history, read_history
from autodurable._control._replay import replay_check

from ..helpers import Crash, crash_points, maybe_crash, run_workflow

pytestmark = pytest.mark.usefixtures("database")

ran: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()


@autodurable.step
def reserve(order: str) -> str:
    ran["reserve"] += 1
    return f"r-{order}"


@autodurable.step
def charge(order: str, cents: int) -> int:
    ran["charge"] += 1
    return cents


@autodurable.step
def charge_card(order: str, cents: int) -> int:
    ran["charge_card"] += 1
    return cents


@autodurable.step
def email(order: str) -> str:
    ran["email"] += 1
    return f"mail-{order}"


@autodurable.step
def sms(order: str) -> str:
    ran["sms"] += 1
    return f"sms-{order}"


@autodurable.step
def audit(order: str) -> None:
    ran["audit"] += 1


@autodurable.workflow(name="orders")
def v1(order: str) -> list:
    out = [reserve(order), charge(order, 100)]
    maybe_crash("v1 after charge")
    return [*out, email(order)]


def history_of(workflow_id: str) -> dict:
    """The exported history, through JSON (as a file would hold it)."""
    return json.loads(json.dumps(export_history(workflow_id).to_json()))


def test_the_same_code_replays_its_history_without_running_a_step():
    assert run_workflow(v1, "o1", "o1") == ["r-o1", 100, "mail-o1"]
    before = dict(ran)
    outcome = replay_check(history_of("o1"), workflow=v1)
    assert outcome.ok and outcome.ended == "finished" and outcome.steps == 3
    assert dict(ran) == before  # nothing ran
    assert autodurable.get_workflow("o1").status() == "succeeded"  # the store untouched


@autodurable.workflow(name="orders")
def inserted(order: str) -> list:
    out = [reserve(order)]
    audit(order)
    return [*out, charge(order, 100), email(order)]


@autodurable.workflow(name="orders")
def removed(order: str) -> list:
    return [reserve(order), charge(order, 100)]


@autodurable.workflow(name="orders")
def renamed(order: str) -> list:
    return [reserve(order), charge_card(order, 100), email(order)]


@autodurable.workflow(name="orders")
def reordered(order: str) -> list:
    return [charge(order, 100), reserve(order), email(order)]


@autodurable.workflow(name="orders")
def appended(order: str) -> list:
    out = [reserve(order), charge(order, 100), email(order)]
    audit(order)
    return out


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (inserted, "step 2: the recorded history has step 'charge' here but the code now "
                   "calls 'audit'"),
        (removed, "the code returns before step 3 ('email')"),
        (renamed, "step 2: the recorded history has step 'charge' here but the code now "
                  "calls 'charge_card'"),
        (reordered, "step 1: the recorded history has step 'reserve' here but the code "
                    "now calls 'charge'"),
        (appended, "the record ends (succeeded) after its 3 step(s), but the code goes on"),
    ],
)  # fmt: skip
def test_changed_code_diverges_at_the_first_changed_step(code, says):
    run_workflow(v1, "o2", "o2")
    before = dict(ran)
    outcome = replay_check(history_of("o2"), workflow=code)
    assert not outcome.ok
    assert says in outcome.divergence
    assert dict(ran) == before


def test_a_pending_history_replays_and_the_code_goes_on():
    crash_points.add("v1 after charge")
    with pytest.raises(Crash):
        run_workflow(v1, "o3", "o3")
    outcome = replay_check(history_of("o3"), workflow=v1)
    assert outcome.ok and outcome.ended == "continues" and outcome.steps == 2
    assert ran["email"] == 0


def test_bad_histories_are_one_clear_error(tmp_path):
    run_workflow(v1, "o4", "o4")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(HistoryError, match=r"broken.json: not JSON .*autodurable workflows export"):
        read_history(broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(HistoryError, match=r"other.json: not an autodurable history"):
        read_history(other)
    damaged = history_of("o4")
    del damaged["workflow"]["inputs"]
    with pytest.raises(HistoryError, match=r"a damaged history \(workflow.inputs is not a"):
        read_history(damaged)

    @autodurable.workflow(name="refunds")
    def refunds(order: str) -> None:
        return None

    with pytest.raises(HistoryError, match=r"the history of workflow 'orders', not of 'refunds'"):
        replay_check(history_of("o4"), workflow=refunds)


# -- patches ---------------------------------------------------------------------------


@autodurable.workflow(name="notify")
def notify_v1(order: str) -> list:
    out = [reserve(order)]
    maybe_crash("notify after reserve")
    return [*out, email(order)]


@autodurable.workflow(name="notify")
def notify_v2(order: str) -> list:
    out = [reserve(order)]
    maybe_crash("notify after reserve")
    if autodurable.patched("sms"):
        return [*out, sms(order)]
    return [*out, email(order)]


@autodurable.workflow(name="notify")
def notify_v3(order: str) -> list:
    out = [reserve(order)]
    autodurable.deprecate_patch("sms")
    return [*out, sms(order)]


@autodurable.workflow(name="notify")
def notify_v4(order: str) -> list:
    return [reserve(order), sms(order)]


def test_patched_code_replays_old_histories_and_runs_new_ones_on_the_new_branch():
    run_workflow(notify_v1, "old-done", "a")  # finished before the patch
    crash_points.add("notify after reserve")
    with pytest.raises(Crash):
        run_workflow(notify_v1, "old-waiting", "b")  # stopped before the patch point
    # The patched code: old histories replay on the old branch ...
    assert replay_check(history_of("old-done"), workflow=notify_v2).ok
    # ... a workflow recorded up to the patch point is a new execution from there on.
    assert run_workflow(notify_v2, "old-waiting", "b") == ["r-b", "sms-b"]
    assert run_workflow(notify_v2, "new", "c") == ["r-c", "sms-c"]
    names = [s.name for s in autodurable.get_workflow("new").steps()]
    assert names[1] == "patch:sms"
    assert replay_check(history_of("new"), workflow=notify_v2).ok
    # Without the patch, the new histories do not replay.
    assert not replay_check(history_of("new"), workflow=notify_v1).ok
    # deprecate_patch: histories with the marker replay; new ones record none.
    assert replay_check(history_of("new"), workflow=notify_v3).ok
    assert run_workflow(notify_v3, "newer", "d") == ["r-d", "sms-d"]
    assert "patch:sms" not in [s.name for s in autodurable.get_workflow("newer").steps()]
    # Then the call removed: what notify_v3 recorded replays.
    assert replay_check(history_of("newer"), workflow=notify_v4).ok
    assert not replay_check(history_of("new"), workflow=notify_v4).ok  # markers: v3 first


def test_a_patch_id_must_be_a_string():
    @autodurable.workflow
    def bad() -> bool:
        return autodurable.patched("")

    with pytest.raises(autodurable.AutodurableError, match="a patch id must be a non-empty"):
        bad()


@autodurable.workflow(name="logs")
def logs_a_warning(order: str) -> str:
    logging.getLogger("autodurable").warning("checked %s", order)
    return reserve(order)


def test_a_replay_leaves_the_packages_logging_as_it_found_it(caplog):
    assert run_workflow(logs_a_warning, "l1", "l1") == "r-l1"
    logging.getLogger("autodurable").setLevel(logging.NOTSET)  # as a fresh process has it
    # The replay quiets the package's logger while it runs (the outcome says it all)...
    assert replay_check(history_of("l1"), workflow=logs_a_warning).ok
    caplog.clear()
    # ...and its warnings reach the application's handlers again afterwards.
    logging.getLogger("autodurable").warning("after the replay")
    assert "after the replay" in caplog.text
