"""The checkout example (examples/checkout/): its demo, and crashes at each point.

The crash test runs checkout.py as a real process against a real payment
service, lets it SIGKILL itself after a step, runs the same command again and
checks the outside world: one charge (requested once: the charge step was
replayed, not run again), stock taken once, one confirmation email, and the
same summary as an order that never crashed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import ROOT, child_env, run_command, run_python, serving

EXAMPLE = ROOT / "examples" / "checkout"
STOCK = 3  # each test writes its own inventory.json with this many widgets
ID_FIELDS = ("order_id", "reservation_id", "charge_id", "message_id")


@pytest.fixture
def payment_url(tmp_path: Path) -> Iterator[str]:
    """A payment service with its own database; killed and reaped after the test."""
    with (tmp_path / "payment_service.log").open("w") as log:
        service = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLE / "payment_service.py"),
                "--port",
                "0",
                "--db",
                str(tmp_path / "payments.db"),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    with serving(service) as url:
        yield url


def charges_for(url: str, order_id: str) -> list[dict[str, Any]]:
    """The charges the payment service made for `order_id`."""
    with urllib.request.urlopen(url + "/charges", timeout=10) as response:
        every: list[dict[str, Any]] = json.load(response)
    return [charge for charge in every if charge["order_id"] == order_id]


def shop(folder: Path) -> Path:
    """A data folder for checkout.py with `STOCK` widgets and an empty outbox."""
    folder.mkdir()
    inventory = {"stock": {"widget": STOCK}, "reservations": {}}
    (folder / "inventory.json").write_text(json.dumps(inventory))
    return folder


def stock(folder: Path) -> int:
    return int(json.loads((folder / "inventory.json").read_text())["stock"]["widget"])


def outbox(folder: Path) -> list[dict[str, Any]]:
    path = folder / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def checkout(
    folder: Path, url: str, order_id: str, crash_after: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``checkout.py ORDER_ID`` with all its state in `folder`, and wait for it."""
    env = child_env(
        AUTODURABLE_DATABASE_URL=f"sqlite:///{folder / 'state.db'}",
        CHECKOUT_DATA_DIR=str(folder),
        PAYMENT_URL=url,
    )
    env.pop("CHECKOUT_CRASH_AFTER", None)
    if crash_after is not None:
        env["CHECKOUT_CRASH_AFTER"] = crash_after
    return run_python(EXAMPLE / "checkout.py", order_id, env=env)


def effects(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The side effects a run really performed, from its "[checkout] ..." lines."""
    lines = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("[checkout]")]
    return [word for word in lines if word in ("reserved", "charged", "sent")]


def without_ids(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key not in ID_FIELDS}


def test_demo_runs_and_reports_one_charge() -> None:
    done = run_python(EXAMPLE / "demo.py", env=child_env(), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "-> killed by SIGKILL (exit code -9)" in out
    assert "Charges at the payment service (1):" in out
    assert "idempotency key order-42:2, requests: 1" in out
    assert "Emails in the outbox (1):" in out
    assert "Stock: 5 -> 4 widgets" in out
    assert "OK: " in out
    assert "FAILED" not in out


@pytest.mark.parametrize("crash_after", ["reserve", "charge"])
def test_sigkill_after_a_step_then_rerun(
    tmp_path: Path, payment_url: str, crash_after: str
) -> None:
    # An order that never crashes, for reference (its own stock, outbox and database).
    reference_folder = shop(tmp_path / "reference")
    reference = checkout(reference_folder, payment_url, "7")
    assert reference.returncode == 0, reference.stderr
    assert effects(reference) == ["reserved", "charged", "sent"]
    expected = json.loads(reference.stdout)

    # The crash: the process kills itself right after the step `crash_after`.
    folder = shop(tmp_path / "crashed")
    killed = checkout(folder, payment_url, "42", crash_after=crash_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout == ""
    assert stock(folder) == STOCK - 1
    assert len(charges_for(payment_url, "42")) == (1 if crash_after == "charge" else 0)
    assert outbox(folder) == []

    # The same command again resumes: finished steps are replayed, not run again.
    resumed = checkout(folder, payment_url, "42")
    assert resumed.returncode == 0, resumed.stderr
    ran_again = ["charged", "sent"] if crash_after == "reserve" else ["sent"]
    assert effects(resumed) == ran_again
    summary = json.loads(resumed.stdout)

    [charge] = charges_for(payment_url, "42")
    assert charge["requests"] == 1  # asked once: a recorded charge step is never re-run
    assert charge["idempotency_key"] == "order-42:2"
    assert summary["charge_id"] == charge["charge_id"]
    assert stock(folder) == STOCK - 1
    emails = outbox(folder)
    assert [email["message_id"] for email in emails] == [summary["message_id"]]
    assert emails[0]["subject"] == "Order 42 confirmed"
    assert summary["order_id"] == "42"
    assert without_ids(summary) == without_ids(expected)
    assert all(summary[field] != expected[field] for field in ID_FIELDS)

    # Once finished, the command prints the recorded summary and does nothing else.
    again = checkout(folder, payment_url, "42")
    assert again.returncode == 0, again.stderr
    assert effects(again) == []
    assert json.loads(again.stdout) == summary
    assert len(charges_for(payment_url, "42")) == 1
    assert stock(folder) == STOCK - 1
    assert len(outbox(folder)) == 1


def test_time_travel_stops_in_the_workflow_and_reaches_no_service(
    tmp_path: Path, payment_url: str, database_url: str
) -> None:
    """`autodurable replay order-42 --until-step 2 --pdb` on a finished checkout: pdb
    opens in the workflow with the recorded charge, and the payment service, the stock
    and the outbox see nothing (PAYMENT_URL is not even set)."""
    folder = shop(tmp_path / "shop")
    env = child_env(
        AUTODURABLE_DATABASE_URL=database_url,
        CHECKOUT_DATA_DIR=str(folder),
        PAYMENT_URL=payment_url,
    )
    done = run_command([sys.executable, str(EXAMPLE / "checkout.py"), "42"], cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    service_log = tmp_path / "payment_service.log"
    requests_before = service_log.read_text().count("[payment service] charge")
    assert requests_before == 1

    env.pop("PAYMENT_URL")
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), env["PYTHONPATH"]])
    debugger_input = "p reservation_id\np payment['charge_id']\nn\nn\np message_id\nc\n"
    replay = subprocess.run(
        [sys.executable, "-m", "autodurable", "replay", "order-42", "--import", "checkout",
         "--until-step", "2", "--pdb"],
        input=debugger_input, capture_output=True, text=True, cwd=folder, env=env, timeout=60,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stdout + replay.stderr
    out = replay.stdout
    assert "checkout.py(" in out and ")checkout()" in out  # pdb's place: the workflow
    assert 'crash_here_if_asked("charge")' in out  # the line after the charge step
    assert repr(summary["reservation_id"]) in out
    assert repr(summary["charge_id"]) in out  # the recorded charge, not a new one
    assert repr(summary["message_id"]) in out  # two lines on: the email, from the record
    assert out.rstrip().endswith("order-42: replays its 3 step(s) and ends as recorded")
    assert "[checkout]" not in replay.stderr  # no step body ran
    assert service_log.read_text().count("[payment service] charge") == requests_before
    [charge] = charges_for(payment_url, "42")
    assert charge["requests"] == 1
    assert stock(folder) == STOCK - 1 and len(outbox(folder)) == 1

    until = subprocess.run(
        [sys.executable, "-m", "autodurable", "replay", "order-42", "--import", "checkout",
         "--until-step", "3"],
        capture_output=True, text=True, cwd=folder, env=env, timeout=60,
    )  # fmt: skip
    assert until.returncode == 0, until.stderr
    assert "stopped where the code calls step 3 'send_confirmation'" in until.stdout
    assert f"  reservation_id = {summary['reservation_id']!r}" in until.stdout
