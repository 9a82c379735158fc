"""The crash sweep over the examples, on both stores: the checkout and the refund
approval in-process (their workflows crashed at every step boundary and resumed),
code made durable by the hook (`durable_import`), and a legacy program under
``autodurable run`` killed for real at every boundary (`sweep_program`)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from autodurable.testing import SweepFailure, crash_sweep, durable_import, sweep_program
from autodurable.testing._runtime import throwaway_runtime

from ..helpers import ROOT, child_env, serving


@pytest.fixture
def store(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway runtime on each store (as the plugin's `durable` fixture gives)."""
    if database_url.startswith("postgresql"):
        monkeypatch.setenv("AUTODURABLE_TEST_DATABASE_URL", database_url)
    with throwaway_runtime(tmp_path) as url:
        yield url


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Imports of the examples' modules are forgotten after the test."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name in ("checkout", "refunds", "shop", "payment_service"):
            del sys.modules[name]


def test_checkout_survives_a_crash_at_every_boundary(tmp_path, store, example, monkeypatch):
    folder = tmp_path / "shop"
    with (tmp_path / "payments.log").open("w") as log:
        service = subprocess.Popen(
            [sys.executable, str(ROOT / "examples/checkout/payment_service.py"), "--port", "0",
             "--db", str(tmp_path / "payments.db")],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    with serving(service) as url:
        monkeypatch.setenv("PAYMENT_URL", url)
        monkeypatch.setenv("CHECKOUT_DATA_DIR", str(folder))
        monkeypatch.syspath_prepend(str(ROOT / "examples/checkout"))
        import checkout

        def charges() -> int:
            with urllib.request.urlopen(url + "/charges", timeout=10) as response:
                return len(json.load(response))

        before = [0]

        def reset() -> None:
            folder.mkdir(exist_ok=True)
            stock = {"stock": {"widget": 5}, "reservations": {}}
            (folder / "inventory.json").write_text(json.dumps(stock))
            (folder / "outbox.jsonl").unlink(missing_ok=True)
            before[0] = charges()

        def world() -> tuple[int, int]:
            stock = json.loads((folder / "inventory.json").read_text())["stock"]["widget"]
            return charges() - before[0], stock

        report = crash_sweep(checkout.checkout, checkout.make_order("42"), observe=world,
                             reset=reset)  # fmt: skip
    assert [a.name.rpartition(".")[2] for a in report.attempts] == [
        "reserve_inventory", "charge", "send_confirmation",
    ]  # fmt: skip
    assert report.cases == 6 and report.result["status"] == "confirmed"


def test_the_refund_approval_survives_a_crash_at_every_boundary(tmp_path, store, example,
                                                                 monkeypatch):  # fmt: skip
    data = tmp_path / "refunds-data"
    monkeypatch.setenv("REFUNDS_DATA", str(data))
    monkeypatch.setenv("REFUNDS_APPROVAL_TIMEOUT", "0.05")  # read when the module loads
    monkeypatch.syspath_prepend(str(ROOT / "examples/approval"))
    import refunds

    def reset() -> None:
        for name in ("ledger.jsonl", "outbox.jsonl"):
            (data / name).unlink(missing_ok=True)

    def payments() -> int:
        ledger = data / "ledger.jsonl"
        return len(ledger.read_text().splitlines()) if ledger.exists() else 0

    small = crash_sweep(refunds.refund_request, "o-1001", "it arrived broken",
                        observe=payments, reset=reset)  # fmt: skip
    assert small.result["outcome"] == "refunded" and small.cases == 8
    # A large refund waits for a person; nobody answers within the timeout here.
    large = crash_sweep(refunds.refund_request, "o-1002", "changed my mind",
                        observe=payments, reset=reset)  # fmt: skip
    assert large.result["outcome"] == "declined"


HOOKED = """
import json
from pathlib import Path

LEDGER = Path("ledger.jsonl")

def fetch_rate(currency):
    return json.loads(Path("rates.json").read_text())[currency]

def book(entry):
    with LEDGER.open("a") as fh:
        fh.write(json.dumps(entry) + "\\n")
    return len(LEDGER.read_text().splitlines())

def convert(amounts, currency):
    rate = fetch_rate(currency)
    total = 0
    for amount in amounts:
        total += amount * rate
        book({"amount": amount, "rate": rate})
    return round(total, 2)
"""


def test_code_made_durable_by_the_hook_is_swept(tmp_path, store, monkeypatch):
    project = tmp_path / "ledgerapp"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "ledgerapp"\nversion = "0"\n')
    (project / "converter.py").write_text(textwrap.dedent(HOOKED))
    (project / "rates.json").write_text(json.dumps({"EUR": 1.5}))
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    converter = durable_import("converter", project)
    try:
        report = crash_sweep(
            converter.convert,
            [10, 20, 30],
            "EUR",
            reset=lambda: Path("ledger.jsonl").unlink(missing_ok=True),
        )
    finally:
        sys.modules.pop("converter", None)
    assert report.result == 90.0
    assert [a.name for a in report.attempts] == ["fetch_rate", "book", "book", "book"]
    # The bookings are appends without a key: a crash after one repeats it, which the
    # sweep reports when asked to compare the ledger.
    with pytest.raises(SweepFailure, match=r"crashed after step 2 'book' .* the outside world"):
        crash_sweep(converter.convert, [10, 20, 30], "EUR",
                    observe=lambda: len(Path("ledger.jsonl").read_text().splitlines()),
                    reset=lambda: Path("ledger.jsonl").unlink(missing_ok=True))  # fmt: skip


@pytest.mark.usefixtures("unmeasured_children")  # four runs of the program per boundary
def test_a_legacy_program_killed_at_every_boundary_resumes(tmp_path, database_url):
    folder = tmp_path / "audit"
    folder.mkdir()
    env = child_env(AUTODURABLE_DATABASE_URL=database_url, AUDIT_SAMPLE="1")
    # A project of its own (inside the repository, the project would be the repository).
    program = folder / "inventory_audit.py"
    program.write_text((ROOT / "examples/legacy/inventory_audit.py").read_text())

    def reset() -> None:
        for name in ("inventory.db", "audit.log"):
            (folder / name).unlink(missing_ok=True)

    report = sweep_program(program, "inventory.db", cwd=folder, env=env, reset=reset)
    assert report.exit_code == 0
    names = [a.name for a in report.attempts]
    assert names[:3] == ["prepare_database", "load_items", "random.sample"]
    assert "record_count" in names and report.cases == 2 * len(names)
    with sqlite3.connect(folder / "inventory.db") as db:
        assert db.execute("SELECT count(*) FROM audits").fetchone()[0] >= 1
    assert os.path.exists(folder / "audit.log")
