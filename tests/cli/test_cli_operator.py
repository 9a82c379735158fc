"""The operator's commands, on SQLite and on PostgreSQL: ``show --follow``, ``start``,
``cancel`` / ``resume`` by filter, the ``--version`` / ``--error`` filters, the running
attempt in ``steps``, and the hints at the moment they matter (versions, forks).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

import autodurable
from autodurable._cli._main import main
from autodurable._core._runtime import get_runtime
from autodurable._store import (
    CANCELLED,
    FAILED,
    PENDING,
    RETRYING,
    SUCCEEDED,
    WAITING,
    WorkflowRecord,
)

from ..helpers import wait_until

pytestmark = pytest.mark.usefixtures("database")

HERE = __name__


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse: usage errors
        status = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@autodurable.step
def double(x):
    return x * 2


@autodurable.workflow
def doubler(x, extra=0):
    return double(x) + extra


@autodurable.workflow
def approval(order):
    autodurable.set_event("status", "waiting")
    decision = autodurable.recv("approval", timeout=60)
    return {"order": order, "decision": decision}


class CardDeclined(Exception):
    pass


@autodurable.step
def charge(x):
    raise CardDeclined(f"card {x} declined")


@autodurable.workflow
def checkout(x):
    double(x)
    return charge(x)


def _snapshot():
    return [(w.workflow_id, w.status, w.updated_at) for w in get_runtime().store.list_workflows()]


# -- show --follow ----------------------------------------------------------------------------


def test_show_follow_prints_new_steps_until_the_workflow_ends(capsys):
    handle = autodurable.start(autodurable.options(approval, workflow_id="f-1"), "o-1")
    store = get_runtime().store
    wait_until(lambda: any(s.status == WAITING for s in store.list_steps("f-1")))
    threading.Timer(0.5, autodurable.send, ("f-1", "yes"), {"topic": "approval"}).start()
    status, out, err = cli(capsys, "workflows", "show", "f-1", "--follow", "--timeout", "30s")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "workflow   f-1"
    steps = [line for line in lines if line.startswith("step ")]
    assert steps[0].startswith("step 1  autodurable.set_event:status  succeeded  1 attempt")
    assert steps[1].startswith("step 2  autodurable.recv:approval  waiting")
    assert steps[2].startswith("step 2  autodurable.recv:approval  succeeded")  # it changed
    assert lines[-1] == 'f-1 succeeded: {"order": "o-1", "decision": "yes"}'
    assert "following f-1 until it ends" in err
    handle.result(30)


def test_show_follow_json_lines_exit_codes_and_timeout(capsys):
    autodurable.start(autodurable.options(approval, workflow_id="f-2"), "o-2")
    store = get_runtime().store
    wait_until(lambda: any(s.status == WAITING for s in store.list_steps("f-2")))
    started = time.monotonic()
    status, out, _ = cli(capsys, "workflows", "show", "f-2", "-f", "--timeout", "1s", "--json")
    assert status == 3 and time.monotonic() - started < 10
    events = [json.loads(line) for line in out.splitlines()]  # one document per line
    assert [e["event"] for e in events] == ["workflow", "step", "step", "timeout"]
    assert events[0]["workflow_id"] == "f-2" and events[0]["status"] == PENDING
    assert events[2]["place"] == "2" and events[2]["status"] == WAITING
    assert events[-1]["timed_out"] is True and events[-1]["status"] == PENDING

    cli(capsys, "workflows", "cancel", "f-2")
    status, out, _ = cli(capsys, "workflows", "show", "f-2", "--follow", "--json")
    assert status == 1  # as wait: cancelled
    assert json.loads(out.splitlines()[-1])["event"] == "ended"

    with pytest.raises(CardDeclined):
        autodurable.options(checkout, workflow_id="f-3")(3)
    status, out, _ = cli(capsys, "workflows", "show", "f-3", "--follow")
    assert status == 1 and out.splitlines()[-1] == "f-3 failed: CardDeclined: card 3 declined"
    status, _, err = cli(capsys, "workflows", "show", "nope", "--follow")
    assert status == 2 and err.startswith("autodurable: no workflow with id 'nope'")
    status, _, err = cli(capsys, "workflows", "show", "f-3", "--timeout", "1s")
    assert status == 2 and "--timeout goes with --follow" in err


# -- start -----------------------------------------------------------------------------------


def test_start_records_a_pending_workflow_for_an_executor_or_runs_it_here(capsys):
    status, out, err = cli(capsys, "workflows", "start", f"{HERE}:doubler", "4",
                           "--kwargs", '{"extra": 1}', "--id", "s-1", "--json")  # fmt: skip
    assert status == 0, err
    assert json.loads(out) == {
        "workflow_id": "s-1",
        "name": f"{HERE}:doubler",
        "status": PENDING,
        "app_version": get_runtime().store.get_workflow("s-1").app_version,
    }
    record = get_runtime().store.get_workflow("s-1")
    assert (record.status, record.executor_id) == (PENDING, None)  # for whoever recovers it
    assert json.loads(record.inputs) == {"args": [4], "kwargs": {"extra": 1}}
    report = autodurable.recover()
    assert [h.workflow_id for h in report.resumed] == ["s-1"]
    assert report.wait(30) == {"s-1": 9}

    status, out, err = cli(capsys, "workflows", "start", f"{HERE}:doubler", "5", "--run")
    assert status == 0, err
    assert out.split(": ", 1)[1].strip() == "10"
    status, out, _ = cli(capsys, "workflows", "start", f"{HERE}:checkout", "6", "--run")
    assert status == 1 and "failed: CardDeclined: card 6 declined" in out


def test_start_refuses_bad_input_with_one_line_and_records_nothing(capsys):
    autodurable.options(doubler, workflow_id="taken")(1)
    before = _snapshot()
    for args, expected in (
        ([f"{HERE}:missing"], "has no attribute 'missing'"),
        (["no_such_module_here:fn", "1"], "module 'no_such_module_here' cannot be imported"),
        (["no_colon"], "is not a qualified name"),
        ([f"{HERE}:double", "1"], "no longer decorated with @workflow"),
        ([f"{HERE}:doubler", "{oops"], "argument 1 is not valid JSON"),
        ([f"{HERE}:doubler", "1", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
        ([f"{HERE}:doubler", "1", "--kwargs", "{"], "--kwargs is not valid JSON"),
        ([f"{HERE}:doubler", "1", "2", "3"], "does not take these arguments"),
        ([f"{HERE}:doubler", "1", "--id", "taken"], "a workflow with id 'taken' exists already"),
        ([f"{HERE}:doubler", "1", "--id", "taken", "--run"], "exists already"),
    ):
        status, out, err = cli(capsys, "workflows", "start", *args)
        assert status == 2, args
        assert expected in err and "nothing was recorded" in err, err
        assert len(err.strip().splitlines()) == 1 and out == ""
    assert _snapshot() == before


# -- cancel and resume by filter --------------------------------------------------------------


def test_cancel_and_resume_by_filter_need_all_matching_and_report_each(capsys):
    for workflow_id in ("p-1", "p-2"):
        cli(capsys, "workflows", "start", f"{HERE}:doubler", "1", "--id", workflow_id)
    cli(capsys, "workflows", "start", f"{HERE}:checkout", "1", "--id", "other")
    autodurable.options(doubler, workflow_id="done")(1)
    before = _snapshot()

    status, _, err = cli(capsys, "workflows", "cancel", "--name", "*:doubler")
    assert status == 2
    assert "2 workflow(s) match these filters: add --all-matching to cancel them all" in err
    status, _, err = cli(capsys, "workflows", "cancel", "p-1", "--name", "*:doubler")
    assert status == 2 and "takes a workflow ID or filters" in err
    status, _, err = cli(capsys, "workflows", "cancel")
    assert status == 2 and "needs a workflow ID, or filters" in err
    status, _, err = cli(capsys, "workflows", "cancel", "--status", "failed", "--yes")
    assert status == 2 and "invalid choice" in err  # cancel acts on pending workflows only
    status, out, _ = cli(capsys, "workflows", "cancel", "--name", "*:doubler", "--dry-run")
    assert status == 0 and out.startswith("would cancel 2 workflow(s); nothing was changed")
    assert "p-1" in out and "p-2" in out and "other" not in out
    assert _snapshot() == before

    status, out, _ = cli(capsys, "workflows", "cancel", "--name", "*:doubler", "--all-matching",
                         "--reason", "bad batch")  # fmt: skip
    assert status == 0
    assert out.splitlines() == [
        "cancelled p-2",
        "cancelled p-1",
        "cancelled 2 of 2 matching workflow(s): running ones stop at their next step boundary",
    ]
    store = get_runtime().store
    assert [store.get_workflow(i).status for i in ("p-1", "p-2", "other", "done")] == [
        CANCELLED, CANCELLED, PENDING, SUCCEEDED,
    ]  # fmt: skip

    status, out, _ = cli(capsys, "workflows", "resume", "--status", "cancelled", "--dry-run",
                         "--json")  # fmt: skip
    assert status == 0
    assert json.loads(out) == {"dry_run": True, "matched": ["p-2", "p-1"], "results": []}
    status, out, _ = cli(capsys, "workflows", "resume", "--name", "*:doubler", "--yes", "--json")
    assert status == 0
    document = json.loads(out)
    assert [(r["workflow_id"], r["resumed"], r["status"]) for r in document["results"]] == [
        ("p-2", True, PENDING),
        ("p-1", True, PENDING),
    ]
    status, _, err = cli(capsys, "workflows", "resume", "--name", "*:doubler", "--yes", "--run")
    assert status == 2 and "--run runs one workflow here" in err
    status, out, _ = cli(capsys, "workflows", "resume", "--status", "failed", "--yes")
    assert status == 0 and out.strip() == "resumed 0 of 0 matching workflow(s)"


def test_list_and_batch_filters_by_version_and_error_type(capsys):
    with pytest.raises(CardDeclined):
        autodurable.options(checkout, workflow_id="declined")(1)
    autodurable.configure(app_version="2024.05.1")
    autodurable.options(doubler, workflow_id="tagged")(1)
    with pytest.raises(CardDeclined):
        autodurable.options(checkout, workflow_id="declined-tagged")(2)

    def listed(*filters: str) -> list[str]:
        status, out, err = cli(capsys, "workflows", "list", *filters, "--json")
        assert status == 0, err
        return [w["workflow_id"] for w in json.loads(out)["workflows"]]

    assert listed("--version", "2024.05.1") == ["declined-tagged", "tagged"]
    assert listed("--app-version", "2024.05.1", "--status", "failed") == ["declined-tagged"]
    assert listed("--error", "CardDeclined") == ["declined-tagged", "declined"]
    assert listed("--error", f"{HERE}:CardDeclined") == ["declined-tagged", "declined"]
    assert listed("--error", f"{HERE}.CardDeclined") == ["declined-tagged", "declined"]
    assert listed("--error", "ValueError") == []
    assert listed("--version", "0.0") == []
    status, out, _ = cli(capsys, "workflows", "list", "--version", "2024.05.1")
    assert out.splitlines()[0].split()[-1] == "VERSION" and "2024.05.1" in out.splitlines()[1]

    status, out, _ = cli(capsys, "workflows", "resume", "--error", "CardDeclined",
                         "--app-version", "2024.05.1", "--all-matching")  # fmt: skip
    assert status == 0 and out.startswith("resumed declined-tagged: 1 recorded step(s) kept")
    assert get_runtime().store.get_workflow("declined").status == FAILED


# -- steps: the running attempt -----------------------------------------------------------------

gate = {"attempts": 0, "release": threading.Event(), "running": threading.Event()}


@autodurable.step(retries=autodurable.Retry(max_attempts=3, initial_interval=1.5, jitter=0))
def flaky_call():
    gate["attempts"] += 1
    if gate["attempts"] == 1:
        raise ConnectionError("try again")
    gate["running"].set()
    gate["release"].wait(30)
    return "done"


@autodurable.workflow
def retried():
    double(1)
    return flaky_call()


def test_steps_shows_the_running_attempt_of_a_retried_step(capsys):
    gate.update(attempts=0, release=threading.Event(), running=threading.Event())
    handle = autodurable.start(autodurable.options(retried, workflow_id="r-1"))
    store = get_runtime().store
    wait_until(lambda: any(s.status == RETRYING for s in store.list_steps("r-1")))
    status, out, _ = cli(capsys, "workflows", "steps", "r-1")
    row = out.splitlines()[2].split()
    assert row[:4] == ["2", "flaky_call", "retrying", "(attempt"] and row[4] == "2"
    assert gate["running"].wait(30)
    status, out, _ = cli(capsys, "workflows", "steps", "r-1")
    assert status == 0
    assert out.splitlines()[2].split()[:6] == ["2", "flaky_call", "running", "(attempt", "2)", "1"]
    status, out, _ = cli(capsys, "workflows", "steps", "r-1", "--json")
    running = json.loads(out)["running"]
    assert [(r["place"], r["name"], r["attempt"], r["state"]) for r in running] == [
        ("2", "flaky_call", 2, "running")
    ]
    gate["release"].set()
    assert handle.result(30) == "done"
    status, out, _ = cli(capsys, "workflows", "steps", "r-1", "--json")
    assert "running" not in json.loads(out)  # only a pending workflow has that key


# -- hints at the moment they matter --------------------------------------------------------


def _other_version(workflow_id: str, status: str) -> None:
    now = time.time()
    error = json.dumps({"~": "exception", "c": "builtins:ValueError", "m": "x"})
    get_runtime().store.create_workflow(
        WorkflowRecord(workflow_id, f"{HERE}:doubler", status, '{"args":[2],"kwargs":{}}',
                       None, error if status == FAILED else None, None, now, now,
                       "0123456789ab")
    )  # fmt: skip


def test_resuming_a_workflow_of_another_version_says_so_with_the_fix(capsys):
    _other_version("old", FAILED)
    before = _snapshot()
    status, _, err = cli(capsys, "workflows", "resume", "old")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "was started by version 0123456789ab of its code and the code here is version" in err
    assert "executors running this code would leave it pending" in err
    assert "--any-version" in err and "nothing was changed" in err
    assert _snapshot() == before
    status, out, err = cli(capsys, "workflows", "resume", "old", "--any-version")
    assert status == 0, err
    assert get_runtime().store.get_workflow("old").app_version is None

    _other_version("old-pending", PENDING)
    status, _, err = cli(capsys, "workflows", "resume", "old-pending")
    assert status == 2
    assert "is pending already, left for a process running version 0123456789ab" in err
    assert "autodurable workflows resume old-pending --run" in err

    _other_version("old-2", FAILED)
    status, out, _ = cli(capsys, "workflows", "resume", "--name", f"{HERE}:doubler",
                         "--all-matching")  # fmt: skip
    assert status == 1  # one of them was not resumed, and each line says why
    assert "not resumed: workflow 'old-2' was started by version 0123456789ab" in out
    assert "resumed 0 of 1 matching workflow(s)" in out


def test_fork_says_its_steps_run_again_under_new_idempotency_keys(capsys):
    autodurable.options(doubler, workflow_id="src")(3)
    status, out, err = cli(capsys, "workflows", "fork", "src", "--from-step", "1", "--id", "new")
    assert status == 0
    assert err.strip() == (
        "autodurable: note: steps from 1 on run again under new idempotency keys (new:1, ...): "
        "an API that deduplicates by key sees them as new requests"
    )
    status, out, err = cli(capsys, "workflows", "fork", "src", "--from-step", "1", "--id",
                           "new-2", "--json")  # fmt: skip
    assert status == 0 and err == ""
    assert json.loads(out)["idempotency_note"].startswith("steps from 1 on run again under new")
    status, out, err = cli(capsys, "workflows", "fork", "src", "--from-step", "1", "--id",
                           "new-3", "--run", "--json")  # fmt: skip
    assert status == 0, err
    document = json.loads(out)
    assert document["status"] == SUCCEEDED and "(new-3:1, ...)" in document["idempotency_note"]
