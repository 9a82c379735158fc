"""``explain --strict`` fails on I/O it cannot make durable, naming each function, why and
the fix: a card charged through a client handed in as a parameter is not "plain"."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from autodurable._cli._main import main

BILLING = """\
import requests


def fetch_rates(url):
    return requests.get(url).json()


def charge_card(processor, order):
    return processor.charges.create(amount=order["total"], source=order["card"])


def summary(order):
    return order.get("id"), len(order)


def checkout(processor, order, url):
    rates = fetch_rates(url)
    charge = charge_card(processor, order)
    return charge["id"], rates
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (tmp_path / "billing.py").write_text(BILLING)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_strict_fails_on_a_charge_through_an_untyped_parameter(project, capsys):
    assert main(["explain", "--strict", "billing.py"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "charge_card" in line and "plain" in line)
    assert "plain/none" in row  # shown, not folded into "plain function(s) not shown"
    note = out[out.index(row) :].splitlines()[1]
    assert "note: calls processor.charges.create (line 9) on `processor`" in note
    assert "annotate `processor` with its class" in note
    assert '"billing:charge_card" = "step" in [tool.autodurable.roles]' in note
    assert "1 function(s) may do I/O that cannot be made durable" in out
    assert "summary" not in out  # methods of builtin values are not I/O: still not shown


def test_without_strict_it_is_shown_but_does_not_fail(project, capsys):
    assert main(["explain", "billing.py"]) == 0
    assert "processor.charges.create" in capsys.readouterr().out
    assert main(["explain", "--json", "billing.py"]) == 0
    found = json.loads(capsys.readouterr().out)["modules"][0]["functions"]
    charge = next(f for f in found if f["qualname"] == "charge_card")
    assert charge["role"] == "plain" and "a parameter of unknown type" in charge["notes"][0]


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ("def charge_card(processor: Processor, order):", ""),  # typed: the analyser follows it
        ("", '[tool.autodurable.roles]\n"billing:charge_card" = "step"\n'),
        ("", '[tool.autodurable.roles]\n"billing:charge_card" = "plain"\n'),
    ],
)
def test_each_fix_the_note_names_passes(project, capsys, change, setting):
    text = BILLING
    if change:
        text = "class Processor: ...\n\n\n" + text.replace(
            "def charge_card(processor, order):", change
        )
    (project / "billing.py").write_text(text)
    (project / "pyproject.toml").write_text(f'[project]\nname = "shop"\n{setting}')
    assert main(["explain", "--strict", "billing.py"]) == 0, capsys.readouterr().out


def test_a_watched_client_call_is_durable_at_run_time_and_passes(project, capsys):
    watched = textwrap.dedent(
        """
        def charge_card(client, order):
            return client.charge(order)
        """
    )
    (project / "billing.py").write_text(watched)
    assert main(["explain", "--strict", "billing.py"]) == 0
    assert "step/watched" in capsys.readouterr().out
