"""``autodurable workflows ...`` and ``autodurable send``, on SQLite and on PostgreSQL.

Every command in its table form and its ``--json`` form (whose keys are
pinned here: scripts rely on them), the exit codes, and bad input: an
unknown id, a step number past the last step, malformed JSON, each refused
with one clear line and a non-zero exit code, changing nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import autodurable
from autodurable._cli._main import main
from autodurable._core._runtime import get_runtime
from autodurable._store import CANCELLED, PENDING, SUCCEEDED, WAITING, WorkflowRecord

from ..helpers import child_env, wait_until, write_script

WORKFLOW_KEYS = {
    "workflow_id", "name", "status", "app_version", "executor_id", "created_at", "updated_at",
    "ended_at", "duration", "deadline", "forked_from", "forked_at_step", "inputs", "output",
    "error",
}  # fmt: skip
SHOW_KEYS = WORKFLOW_KEYS | {
    "steps_recorded",
    "events",
    "messages",
    "executor",
    "limit_waits",
    "streams",
}
STEP_KEYS = {
    "position", "branch", "place", "name", "status", "attempts", "started_at", "finished_at",
    "duration", "output", "error", "executor_id",
}  # fmt: skip
code = {"rate": 1.0}


@pytest.fixture(autouse=True)
def _reset():
    code["rate"] = 1.0


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse: --help, usage errors
        status = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def cli_json(capsys, *args: str) -> dict:
    status, out, err = cli(capsys, *args, "--json")
    assert status == 0, err
    return json.loads(out)


@autodurable.step
def price(x):
    return x * 10


@autodurable.step
def tax(amount):
    return amount * code["rate"]


@autodurable.step
def total(amount, taxes):
    return amount + taxes


@autodurable.workflow
def invoice(x):
    amount = price(x)
    return total(amount, tax(amount))


@autodurable.step
def reject(x):
    raise ValueError(f"order {x} is not refundable")


@autodurable.workflow
def refund(x):
    price(x)
    return reject(x)


@autodurable.workflow
def approval(order):
    autodurable.set_event("status", "waiting")
    decision = autodurable.recv("approval", timeout=60)
    autodurable.set_event("status", "decided")
    return {"order": order, "decision": decision}


def test_list_show_and_steps_for_people_and_scripts(database, capsys):
    autodurable.options(invoice, workflow_id="inv-1")(1)
    autodurable.options(invoice, workflow_id="inv-2")(2)
    with pytest.raises(ValueError, match=r"^order 3 is not refundable$"):
        autodurable.options(refund, workflow_id="ref-1")(3)

    status, out, _ = cli(capsys, "workflows", "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "STARTED", "DURATION", "VERSION"]
    assert [line.split()[0] for line in lines[1:]] == ["ref-1", "inv-2", "inv-1"]
    assert "failed" in lines[1] and f"{__name__}:refund" in lines[1]

    listed = cli_json(capsys, "workflows", "list", "--status", "failed")
    assert [w["workflow_id"] for w in listed["workflows"]] == ["ref-1"]
    assert set(listed) == {"workflows", "offset", "limit", "next_offset"}
    assert set(listed["workflows"][0]) == WORKFLOW_KEYS
    assert listed["workflows"][0]["error"]["type"] == "builtins:ValueError"
    page = cli_json(capsys, "workflows", "list", "--limit", "1", "--offset", "1")
    assert [w["workflow_id"] for w in page["workflows"]] == ["inv-2"] and page["next_offset"] == 2
    status, out, _ = cli(capsys, "workflows", "list", "--limit", "2")
    assert "more: add --offset 2 for the next 2" in out
    named = cli_json(capsys, "workflows", "list", "--name", "*:invoice", "--since", "1h")
    assert [w["workflow_id"] for w in named["workflows"]] == ["inv-2", "inv-1"]
    assert cli_json(capsys, "workflows", "list", "--until", "1h")["workflows"] == []
    status, out, _ = cli(capsys, "workflows", "list", "--status", "cancelled")
    assert status == 0 and out.strip() == "no workflows match"

    status, out, _ = cli(capsys, "workflows", "show", "ref-1")
    assert status == 0
    assert "status     failed: ValueError: order 3 is not refundable" in out
    assert "traceback:" in out and "in reject" in out
    assert "hint: continue it with: autodurable workflows resume ref-1" in out
    shown = cli_json(capsys, "workflows", "show", "inv-1")
    assert set(shown) == SHOW_KEYS
    assert (shown["output"], shown["steps_recorded"]) == (20.0, 3)
    assert shown["inputs"] == {"args": [1], "kwargs": {}}

    status, out, _ = cli(capsys, "workflows", "steps", "inv-1")
    assert status == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["STEP", "NAME", "STATUS", "ATTEMPTS", "DURATION", "RESULT"]
    assert [row[:4] for row in rows[1:]] == [
        ["1", "price", "succeeded", "1"],
        ["2", "tax", "succeeded", "1"],
        ["3", "total", "succeeded", "1"],
    ]
    assert rows[3][-1] == "20.0"
    steps = cli_json(capsys, "workflows", "steps", "ref-1")
    assert set(steps) == {"workflow_id", "steps"} and set(steps["steps"][0]) == STEP_KEYS
    assert steps["steps"][1]["error"]["message"] == "order 3 is not refundable"


def priced(x):
    """Work the workflow runs in a thread pool: a branch of two steps."""
    return tax(price(x))


@autodurable.workflow
def batch(xs):
    first = price(xs[0])  # its own step 1
    with ThreadPoolExecutor(2) as pool:
        return [first, *pool.map(priced, xs)]  # branches "2" and "3"


def test_steps_of_concurrent_work_are_listed_by_place(database, capsys):
    autodurable.options(batch, workflow_id="b")([1, 2])
    status, out, _ = cli(capsys, "workflows", "steps", "b")
    assert status == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][0] == "STEP"
    assert [row[:3] for row in rows[1:]] == [
        ["1", "price", "succeeded"],
        ["2.1", "price", "succeeded"],
        ["2.2", "tax", "succeeded"],
        ["3.1", "price", "succeeded"],
        ["3.2", "tax", "succeeded"],
    ]
    steps = cli_json(capsys, "workflows", "steps", "b")["steps"]
    assert all(set(step) == STEP_KEYS for step in steps)
    assert [(s["position"], s["branch"], s["place"]) for s in steps] == [
        (1, "", "1"),
        (1, "2", "2.1"),
        (2, "2", "2.2"),
        (1, "3", "3.1"),
        (2, "3", "3.2"),
    ]
    # --from-step counts the workflow's own positions: 3 is the last (3.1 and 3.2 are in it).
    status, out, err = cli(capsys, "workflows", "fork", "b", "--from-step", "3", "--id", "b-3")
    assert status == 0, err
    assert out.startswith("forked b as b-3: steps 1-2 reused")
    assert [s["place"] for s in cli_json(capsys, "workflows", "steps", "b-3")["steps"]] == [
        "1",
        "2.1",
        "2.2",
    ]
    status, _, err = cli(capsys, "workflows", "fork", "b", "--from-step", "4")
    assert status == 2 and "has steps recorded up to step 3: --from-step takes 1 to 3" in err


def test_cancel_send_and_resume_from_the_command_line(database, capsys):
    handle = autodurable.start(autodurable.options(approval, workflow_id="a-1"), "o-1")
    store = get_runtime().store
    wait_until(lambda: any(s.status == WAITING for s in store.list_steps("a-1")))
    status, out, _ = cli(capsys, "workflows", "steps", "a-1")
    assert "waiting for a message until" in out

    status, out, _ = cli(capsys, "workflows", "cancel", "a-1", "--reason", "wrong amount")
    assert status == 0 and out.startswith("cancelled a-1: a running workflow stops")
    with pytest.raises(autodurable.WorkflowCancelled, match="wrong amount"):
        handle.result(30)
    status, out, err = cli(capsys, "workflows", "cancel", "a-1")
    assert status == 1 and "has cancelled already" in out and err == ""  # one stream
    status, out, err = cli(capsys, "workflows", "cancel", "a-1", "--json")
    assert status == 1 and json.loads(out)["cancelled"] is False and err == ""
    shown = cli_json(capsys, "workflows", "show", "a-1")
    assert shown["status"] == CANCELLED and shown["error"]["message"] == "wrong amount"

    status, out, _ = cli(capsys, "send", "a-1", '{"approved": true}', "--topic", "approval")
    assert status == 0 and "it is cancelled: it receives the message once it is resumed" in out
    status, out, _ = cli(capsys, "workflows", "resume", "a-1")
    assert status == 0 and out.startswith("resumed a-1: pending again, 2 recorded step(s) kept")
    assert "autodurable workflows resume a-1 --run" in out
    assert store.get_workflow("a-1").status == PENDING

    status, out, err = cli(capsys, "workflows", "resume", "a-1", "--run")
    assert status == 0, err
    assert out.startswith('a-1 succeeded: {"order": "o-1", "decision": {"approved": true}}')
    assert store.get_workflow("a-1").status == SUCCEEDED
    status, out, err = cli(capsys, "workflows", "resume", "a-1")
    assert status == 2 and "has succeeded; there is nothing to resume" in err


def test_fork_with_changed_code_from_the_command_line(database, capsys):
    autodurable.options(invoice, workflow_id="inv")(3)
    code["rate"] = 0.2  # the fix
    status, out, err = cli(capsys, "workflows", "fork", "inv", "--from-step", "2", "--run",
                           "--id", "inv-fixed")  # fmt: skip
    assert status == 0, err
    assert out.startswith("inv-fixed succeeded: 36.0")
    forked = cli_json(capsys, "workflows", "show", "inv-fixed")
    assert (forked["forked_from"], forked["forked_at_step"]) == ("inv", 2)

    # Without --run it waits for an executor that has the code: recover() is one.
    status, out, _ = cli(capsys, "workflows", "fork", "inv", "--from-step", "3", "--id", "later")
    assert status == 0
    assert out.startswith("forked inv as later: steps 1-2 reused, the current code runs from")
    report = autodurable.recover()
    assert [h.workflow_id for h in report.resumed] == ["later"]
    assert report.wait(30) == {"later": 60.0}  # steps 1-2 reused, with the old tax: 30 + 30


def test_bad_input_is_one_clear_line_a_nonzero_exit_and_changes_nothing(database, capsys):
    autodurable.options(invoice, workflow_id="inv")(1)
    store = get_runtime().store
    before = [(w.workflow_id, w.status, w.updated_at) for w in store.list_workflows()]
    for command in (
        ["workflows", "show", "nope"],
        ["workflows", "steps", "nope"],
        ["workflows", "cancel", "nope"],
        ["workflows", "resume", "nope"],
        ["workflows", "fork", "nope", "--from-step", "1"],
        ["workflows", "delete", "inv", "nope"],
        ["send", "nope", '"yes"'],
    ):
        status, _, err = cli(capsys, *command)
        assert status == 2, command
        assert err.startswith("autodurable: no workflow with id 'nope'"), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    status, _, err = cli(capsys, "workflows", "fork", "inv", "--from-step", "4")
    assert status == 2
    assert "has steps recorded up to step 3: --from-step takes 1 to 3" in err
    status, _, err = cli(capsys, "workflows", "fork", "inv", "--from-step", "0")
    assert status == 2 and "step numbers start at 1" in err
    status, _, err = cli(capsys, "send", "inv", "{approved: yes}")
    assert status == 2 and "the message is not valid JSON" in err and "nothing was sent" in err
    status, _, err = cli(capsys, "send", "inv", "null")
    assert status == 2 and "recv() returns on a timeout" in err
    status, _, err = cli(capsys, "send", "inv", '"late"')
    assert status == 1 and "has succeeded: nothing will receive the message" in err
    status, _, err = cli(capsys, "workflows", "list", "--since", "yesterday")
    assert status == 2 and "neither a duration ago" in err
    status, _, err = cli(capsys, "workflows", "gc", "--older-than", "30")
    assert status == 2 and "is not a duration" in err
    after = [(w.workflow_id, w.status, w.updated_at) for w in store.list_workflows()]
    assert after == before
    assert store.list_messages("inv") == [] and store.list_messages("nope") == []


def test_send_with_an_idempotency_key_delivers_once(database, capsys):
    args = ("send", "later", '{"approved": true}', "--topic", "approval")
    status, _, err = cli(capsys, *args, "--idempotency-key", "k1")
    assert status == 2 and "--allow-unknown sends it anyway" in err
    sent = cli_json(capsys, *args, "--idempotency-key", "k1", "--allow-unknown")
    assert sent == {"workflow_id": "later", "topic": "approval", "sent": True}
    status, out, _ = cli(capsys, *args, "--idempotency-key", "k1", "--allow-unknown")
    assert status == 0 and "not sent again" in out
    assert len(get_runtime().store.list_messages("later")) == 1
    assert autodurable.options(approval, workflow_id="later")("o-2") == {
        "order": "o-2",
        "decision": {"approved": True},
    }


def test_delete_and_gc(database, capsys):
    for workflow_id in ("old-1", "old-2"):
        autodurable.options(invoice, workflow_id=workflow_id)(1)
    handle = autodurable.start(autodurable.options(approval, workflow_id="waiting"), "o")
    assert autodurable.get_event("waiting", "status", timeout=30) == "waiting"
    status, _, err = cli(capsys, "workflows", "delete", "old-1", "waiting")
    assert status == 2 and "waiting is pending: cancel first" in err
    assert "nothing was deleted" in err
    assert get_runtime().store.get_workflow("old-1") is not None

    status, out, _ = cli(capsys, "workflows", "gc", "--older-than", "0s", "--dry-run")
    assert status == 0 and "would delete 2 workflow(s)" in out and "old-1" in out
    gone = cli_json(capsys, "workflows", "gc", "--older-than", "0s", "--status", "succeeded")
    assert sorted(gone["deleted"]) == ["old-1", "old-2"] and gone["dry_run"] is False
    assert cli_json(capsys, "workflows", "gc", "--older-than", "1d")["deleted"] == []

    status, out, _ = cli(capsys, "workflows", "cancel", "waiting")
    assert status == 0
    with pytest.raises(autodurable.WorkflowCancelled, match=r"^workflow 'waiting' was cancelled"):
        handle.result(30)
    status, out, _ = cli(capsys, "workflows", "delete", "waiting")
    assert status == 0 and out.strip() == "deleted 1 workflow(s): waiting"
    assert get_runtime().store.list_workflows() == []


def test_the_database_url_option_after_the_command(tmp_path, capsys):
    other = tmp_path / "other.db"
    autodurable.configure(database_url=f"sqlite:///{other}")
    autodurable.options(invoice, workflow_id="elsewhere")(1)
    autodurable.configure(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    listed = cli_json(capsys, "workflows", "list", "--database-url", f"sqlite:///{other}")
    assert [w["workflow_id"] for w in listed["workflows"]] == ["elsewhere"]


@pytest.mark.parametrize(
    "command",
    [
        ["workflows"],
        ["workflows", "list"],
        ["workflows", "show"],
        ["workflows", "steps"],
        ["workflows", "cancel"],
        ["workflows", "resume"],
        ["workflows", "fork"],
        ["workflows", "delete"],
        ["workflows", "gc"],
        ["workflows", "wait"],
        ["workflows", "start"],
        ["send"],
    ],
)
def test_help_texts_read_well(capsys, command):
    status, out, _ = cli(capsys, *command, "--help")
    assert status == 0
    assert out.startswith(f"usage: autodurable {' '.join(command)}")
    assert "None" not in out
    assert not re.search(r"^  (ID|JSON)\s*$", out, re.M)  # every argument says what it is
    body = out.split("\n\n", 2)[1]  # the description
    assert body[0].isupper() and body.rstrip().endswith((".", ")"))
    if command != ["workflows"]:
        assert "--json" in out and "--database-url" in out


def test_without_an_action_the_workflows_command_prints_its_help(capsys):
    status, out, _ = cli(capsys, "workflows")
    assert status == 0 and "list, inspect" not in out and "ACTION" in out


# -- a program run by `autodurable run` -------------------------------------------------------

PROGRAM = """
import os, subprocess, sys
import autodurable

with open("log", "a") as fh:
    fh.write("one\\n")
if os.environ.get("CANCEL"):  # cancels its own run from the command line, in a step
    subprocess.run([sys.executable, "-m", "autodurable", "workflows", "cancel",
                    autodurable.workflow_id()], check=True, capture_output=True)
with open("log", "a") as fh:
    fh.write("two\\n")
"""


def test_a_cancelled_program_run_resumes_by_running_its_command_again(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'prog'\n")
    write_script(tmp_path, "prog.py", PROGRAM)

    def autodurable_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "autodurable", *args], cwd=tmp_path,
            env=child_env(**env), capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first = autodurable_cli("run", "prog.py", CANCEL="1")
    assert first.returncode == 1
    assert "was cancelled" in first.stderr and "autodurable workflows resume run-" in first.stderr
    assert (tmp_path / "log").read_text() == "one\n"
    run_id = first.stderr.split("autodurable workflows resume ")[1].split(",")[0].split()[0]
    again = autodurable_cli("run", "prog.py", CANCEL="1")
    assert again.returncode == 1 and f"run {run_id} was cancelled; nothing runs" in again.stderr
    resumed = autodurable_cli("workflows", "resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert "a program run by `autodurable run" in resumed.stdout
    assert "run the same command again" in resumed.stdout
    finished = autodurable_cli("run", "prog.py", CANCEL="1")  # replayed: it does not cancel
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "log").read_text() == "one\ntwo\n"  # nothing ran twice
    shown = autodurable_cli("workflows", "show", run_id, "--json")
    assert json.loads(shown.stdout)["status"] == SUCCEEDED


def test_a_background_thread_is_not_needed_for_the_cli(tmp_path):
    # The commands that only read or change records start no executor.
    autodurable.configure(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    autodurable.options(invoice, workflow_id="i")(1)
    threads_before = threading.active_count()
    autodurable._control._operations.cancel("i")
    autodurable.list_workflows()
    assert threading.active_count() == threads_before


def test_pending_workflows_of_another_code_version_are_marked_with_a_hint(database, capsys):
    now = time.time()
    get_runtime().store.create_workflow(
        WorkflowRecord("old", f"{__name__}:invoice", PENDING, '{"args":[2],"kwargs":{}}',
                       None, None, None, now, now, "0123456789ab")
    )  # fmt: skip
    here = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    status, out, _ = cli(capsys, "workflows", "list")
    assert status == 0 and "0123456789ab *" in out
    assert "* 1 pending workflow(s) were started by another version of their code" in out
    status, out, _ = cli(capsys, "workflows", "show", "old")
    assert f"version    0123456789ab (the code here is version {here})" in out
    assert "hint: nobody runs it now, and it was started by another version" in out
    status, out, err = cli(capsys, "workflows", "resume", "old", "--run")
    assert status == 0, err
    assert out.startswith("old succeeded: 40.0")


def test_program_runs_are_not_run_by_the_command_line(database, capsys):
    now = time.time()
    get_runtime().store.create_workflow(
        WorkflowRecord("run-1", "autodurable.run:/srv/job.py", PENDING, '{"args":[[]],"kwargs":{}}',
                       None, None, None, now, now)
    )  # fmt: skip
    status, out, _ = cli(capsys, "workflows", "show", "run-1")
    assert "run the same command again, in the same folder" in out
    status, _, err = cli(capsys, "workflows", "resume", "run-1", "--run")
    assert status == 2 and "autodurable run /srv/job.py" in err
    status, _, err = cli(capsys, "workflows", "fork", "run-1", "--from-step", "1", "--run")
    assert status == 2 and "fork it without --run, then run its command with --run-id" in err


def test_send_on_a_topic_the_workflow_is_not_waiting_on_says_so(database, capsys):
    handle = autodurable.start(autodurable.options(approval, workflow_id="t-1"), "o-9")
    store = get_runtime().store
    wait_until(lambda: any(s.status == WAITING for s in store.list_steps("t-1")))
    status, _, err = cli(capsys, "send", "t-1", '"yes"', "--topic", "aproval", "--strict")
    assert status == 2
    assert "workflow 't-1' is waiting on topic 'approval', not on topic 'aproval'" in err
    assert "nothing was sent (--strict)" in err
    assert store.list_messages("t-1") == []
    status, out, err = cli(capsys, "send", "t-1", '"yes"', "--topic", "aproval")
    assert status == 0 and out.startswith("sent to t-1 on topic 'aproval'")
    assert err.startswith("autodurable: note: workflow 't-1' is waiting on topic 'approval'")
    sent = cli_json(capsys, "send", "t-1", '"no"')
    assert sent["sent"] and "not on no topic" in sent["warning"]
    status, _, err = cli(capsys, "send", "t-1", '{"approved": true}', "--topic", "approval")
    assert status == 0 and err == ""  # the topic it waits on: no note
    assert handle.result(30)["decision"] == {"approved": True}


@autodurable.workflow
def napper():
    autodurable.sleep(0.05)
    return "rested"


def test_a_durable_sleep_shows_its_wake_up_time_not_an_epoch(database, capsys):
    assert autodurable.options(napper, workflow_id="nap")() == "rested"
    status, out, _ = cli(capsys, "workflows", "steps", "nap")
    assert status == 0
    row = next(line for line in out.splitlines() if "autodurable.sleep" in line)
    wake = cli_json(capsys, "workflows", "steps", "nap")["steps"][0]["output"]
    assert isinstance(wake, float)  # the JSON keeps the recorded value
    assert f"sleeps until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(wake))}" in row
    assert str(wake) not in row


def test_wait_blocks_until_the_workflow_ends_wherever_it_runs(database, capsys):
    handle = autodurable.start(autodurable.options(approval, workflow_id="w-1"), "o-7")
    store = get_runtime().store
    wait_until(lambda: any(s.status == WAITING for s in store.list_steps("w-1")))
    status, out, _ = cli(capsys, "workflows", "wait", "w-1", "--timeout", "1s")
    assert status == 3 and out.startswith("w-1 is still pending after 1.0s")
    threading.Timer(0.3, autodurable.send, ("w-1", "ok"), {"topic": "approval"}).start()
    started = time.monotonic()
    document = cli_json(capsys, "workflows", "wait", "w-1")
    assert time.monotonic() - started < 20
    assert document["status"] == SUCCEEDED
    assert document["output"] == {"order": "o-7", "decision": "ok"}
    handle.result(30)
    status, out, _ = cli(capsys, "workflows", "wait", "w-1")  # ended already: at once
    assert status == 0 and out.startswith('w-1 succeeded: {"order": "o-7"')
    status, _, err = cli(capsys, "workflows", "wait", "nope")
    assert status == 2 and "no workflow with id 'nope'" in err
