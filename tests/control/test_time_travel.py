"""Time-travel replay (`autodurable replay ID`), on both stores: a recorded workflow's
code runs again in this process with every step answered from the record, stops
where asked with what the workflow knew there, hands its frame to a debugger
(pdb for real, driven through stdin), reports where today's code diverges, and
never runs a step or writes to the store."""

from __future__ import annotations

from collections import Counter

import pytest

import autodurable
from autodurable._cli import main
from autodurable._control._histories import export_history
from autodurable._control._timetravel import open_pdb, time_travel
from autodurable._core._runtime import get_runtime
from autodurable._errors import AutodurableError

from ..helpers import run_workflow

pytestmark = pytest.mark.usefixtures("database")

ran: Counter[str] = Counter()
VARIANT = {"second": "charge"}


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()
    VARIANT["second"] = "charge"


@autodurable.step
def reserve(n: int) -> str:
    ran["reserve"] += 1
    return f"res-{n}"


@autodurable.step
def charge(n: int, amount: int) -> dict[str, object]:
    ran["charge"] += 1
    return {"id": f"ch-{n}", "amount": amount}


@autodurable.step
def refund(n: int, amount: int) -> dict[str, object]:
    ran["refund"] += 1
    return {"id": f"rf-{n}", "amount": amount}


@autodurable.step
def notify(text: str) -> str:
    ran["notify"] += 1
    return f"sent {text}"


@autodurable.workflow
def order(n: int) -> str:
    reservation = reserve(n)
    total = n * 10
    try:
        payment = (charge if VARIANT["second"] == "charge" else refund)(n, total)
    except Exception:  # the stop is not an Exception: this never catches it
        payment = {"id": "none"}
    summary = f"{reservation}/{payment['id']}"
    notify(summary)
    return summary


def recorded_order(workflow_id: str = "o1", n: int = 3) -> None:
    assert run_workflow(order, workflow_id, n) == f"res-{n}/ch-{n}"
    ran.clear()


def steps_in_store(workflow_id: str) -> list[tuple[int, str, str]]:
    store = get_runtime().store
    return [(s.position, s.name, s.status) for s in store.list_steps(workflow_id)]


def test_until_step_stops_where_the_code_calls_it_with_what_it_knew() -> None:
    recorded_order()
    before = steps_in_store("o1")
    travel = time_travel(export_history("o1"), until_step=2)
    point = travel.stopped
    assert point is not None and travel.outcome.ended == "stopped"
    assert (point.step, point.name, point.status, point.function) == (
        2,
        "charge",
        "succeeded",
        "order",
    )
    assert point.file == __file__
    assert point.locals["reservation"] == "'res-3'" and point.locals["total"] == "30"
    assert "payment" not in point.locals  # stopped before the step answers
    assert "stopped where the code calls step 2 'charge' (recorded: succeeded)" in str(travel)
    assert ran == Counter()  # nothing ran
    assert steps_in_store("o1") == before  # and nothing was written


def test_a_debugger_gets_the_workflows_frame_and_the_replay_goes_on_to_the_end() -> None:
    recorded_order()
    seen: list[tuple[str, dict[str, object]]] = []
    travel = time_travel(
        export_history("o1"),
        until_step=2,
        debugger=lambda frame: seen.append((frame.f_code.co_name, dict(frame.f_locals))),
    )
    assert len(seen) == 1
    name, variables = seen[0]
    assert name == "order" and variables["reservation"] == "res-3"
    assert travel.debugged and travel.outcome.ended == "finished" and travel.outcome.ok
    assert ran == Counter()


def test_changed_code_is_reported_where_it_diverges_and_nothing_runs() -> None:
    recorded_order()
    VARIANT["second"] = "refund"
    travel = time_travel(export_history("o1"))
    assert travel.outcome.ended == "diverged" and not travel.outcome.ok
    assert "step 2" in str(travel.outcome.divergence)
    assert "'charge'" in str(travel.outcome.divergence) and "'refund'" in str(
        travel.outcome.divergence
    )
    assert ran == Counter()


def test_a_step_number_outside_the_record_is_refused_before_anything_runs() -> None:
    recorded_order()
    with pytest.raises(AutodurableError, match=r"has steps 1 to 3: --until-step takes one"):
        time_travel(export_history("o1"), until_step=4)
    assert ran == Counter()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = main(list(args))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_replay_of_an_id_and_of_an_exported_file(capsys, tmp_path) -> None:
    recorded_order()
    status, out, _ = cli(capsys, "replay", "o1")
    assert status == 0 and out.strip() == "o1: replays its 3 step(s) and ends as recorded"
    status, out, _ = cli(capsys, "replay", "o1", "--until-step", "2")
    assert status == 0
    assert "o1 (" in out and "stopped where the code calls step 2 'charge'" in out
    assert "  total = 30" in out
    history = tmp_path / "o1.json"
    assert cli(capsys, "workflows", "export", "o1", "-o", str(history))[0] == 0
    status, out, _ = cli(capsys, "replay", str(history), "--until-step", "1", "--json")
    assert status == 0 and '"step": 1' in out and '"name": "reserve"' in out
    VARIANT["second"] = "refund"
    status, out, _ = cli(capsys, "replay", "o1")
    assert status == 1 and "diverges" in out
    assert ran == Counter()


def test_cli_bad_input_is_one_line(capsys) -> None:
    recorded_order()
    assert cli(capsys, "replay", "o1", "o2")[2].startswith("autodurable: replay takes one")
    status, _, err = cli(capsys, "replay", "nope")
    assert status == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    status, _, err = cli(capsys, "replay", "o1", "--until-step", "9")
    assert status == 2 and "has steps 1 to 3" in err
    status, _, err = cli(capsys, "replay", "o1", "--pdb", "--json")
    assert status == 2 and "--pdb is interactive" in err
    assert ran == Counter()


def test_pdb_opens_in_the_workflow_after_the_step_answers(capsys, monkeypatch) -> None:
    recorded_order()
    import io
    import sys

    commands = io.StringIO("p total\np payment\nn\np summary\nc\n")
    monkeypatch.setattr(sys, "stdin", commands)
    status, out, err = cli(capsys, "replay", "o1", "--until-step", "2", "--pdb")
    assert status == 0, err
    assert "pdb opens in the workflow's code once step 2 returns" in err
    assert "test_time_travel.py" in out and "order()" in out  # the workflow's frame
    assert "30\n" in out  # p total
    assert "{'id': 'ch-3', 'amount': 30}" in out  # p payment: the recorded result
    assert "'res-3/ch-3'" in out  # p summary, after `n`
    assert "bdb.py" not in out and "_timetravel" not in out  # never the runtime's frames
    assert out.rstrip().endswith("o1: replays its 3 step(s) and ends as recorded")
    assert ran == Counter()


@autodurable.workflow
def approval(request: str) -> dict[str, object]:
    asked_at = autodurable.now()
    ticket = str(autodurable.uuid4())
    autodurable.sleep(0.01)
    answer = autodurable.recv("decision", timeout=30)
    lucky = autodurable.random()
    notify(f"{request}: {answer}")
    return {"asked_at": asked_at, "ticket": ticket, "answer": answer, "lucky": lucky}


def test_clock_randomness_sleep_and_messages_answer_from_the_record() -> None:
    handle = autodurable.start(autodurable.options(approval, workflow_id="a1"), "refund 12")
    autodurable.send("a1", "approved", topic="decision")
    recorded = handle.result(timeout=30)
    ran.clear()
    kinds = [name for _, name, _ in steps_in_store("a1")]
    seen: list[dict[str, object]] = []
    travel = time_travel(
        export_history("a1"),
        until_step=kinds.index("notify") + 1,
        debugger=lambda frame: seen.append(dict(frame.f_locals)),
    )
    assert travel.outcome.ended == "finished", travel.outcome
    [variables] = seen
    assert variables["asked_at"] == recorded["asked_at"]  # the recorded clock, not today's
    assert variables["ticket"] == recorded["ticket"]
    assert variables["answer"] == "approved"  # the recorded message; none is waiting now
    assert variables["lucky"] == recorded["lucky"]
    assert ran == Counter()


def test_the_trace_function_in_place_before_the_debugger_is_put_back(monkeypatch) -> None:
    recorded_order()
    import io
    import sys

    def tracer(frame: object, event: str, arg: object) -> None:
        return None

    previous = sys.gettrace()
    monkeypatch.setattr(sys, "stdin", io.StringIO("c\n"))
    sys.settrace(tracer)  # what a coverage tool or an outer debugger has in place
    try:
        travel = time_travel(export_history("o1"), until_step=1, debugger=open_pdb)
        after = sys.gettrace()
    finally:
        sys.settrace(previous)
    assert travel.outcome.ok and after is tracer
