"""`ok` tells the truth: verifying a file nothing was made durable in is not ok ("nothing to
verify"), and a plan the file already holds is ok ("already applied", nothing changes),
through the MCP tools and the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("libcst")
pytest.importorskip("mcp")

from autodurable._ai import _mcp
from autodurable._cli._main import main

from ..helpers import ROOT

PLAN = json.loads((ROOT / "examples" / "ai" / "plan.json").read_text())
PURE = "def total(items):\n    return sum(items)\n"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    shutil.copy(ROOT / "examples" / "ai" / "billing.py", tmp_path / "shop" / "billing.py")
    (tmp_path / "shop" / "maths.py").write_text(PURE)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "shop"


def test_verifying_a_file_nothing_was_done_to_is_not_ok(shop: Path) -> None:
    for name in ("billing.py", "maths.py"):  # I/O not made durable yet; no I/O at all
        result = _mcp.verify(f"shop/{name}")
        assert result["ok"] is False and result["status"] == "nothing to verify"
        assert result["problems"] == []
        assert result["message"].startswith(f"shop/{name} has no autodurable decorator")


def test_verifying_the_file_after_apply_is_ok_and_says_verified(shop: Path) -> None:
    assert _mcp.apply("shop/billing.py", PLAN, dry_run=False)["written"] is True
    result = _mcp.verify("shop/billing.py")
    assert result["ok"] is True and result["status"] == "verified"


def test_a_plan_applied_already_is_ok_and_changes_nothing(shop: Path) -> None:
    first = _mcp.apply("shop/billing.py", PLAN, dry_run=False)
    assert first["status"] == "verified" and first["written"] is True
    written = (shop / "billing.py").read_text()
    again = _mcp.verify("shop/billing.py", PLAN)
    assert again["ok"] is True, again["problems"]
    assert again["status"] == "already applied"
    assert any("passes idempotency_key=autodurable.idempotency_key() already" in a
               for a in again["already"])  # fmt: skip
    assert "charge_card: its step decorator sets these options already" in again["already"]
    reapplied = _mcp.apply("shop/billing.py", PLAN, dry_run=False)
    assert reapplied["ok"] is True and reapplied["status"] == "already applied"
    assert reapplied["diff"] == "" and reapplied["written"] is False
    assert (shop / "billing.py").read_text() == written


def test_a_plan_that_conflicts_with_what_is_written_is_still_refused(shop: Path) -> None:
    assert _mcp.apply("shop/billing.py", PLAN, dry_run=False)["written"] is True
    other = json.loads(json.dumps(PLAN))
    other["options"][0]["retries"] = 5  # the file says retries=3
    result = _mcp.verify("shop/billing.py", other)
    assert result["ok"] is False and result["status"] == "rejected"
    assert "its decorator already sets retries" in result["problems"][0]


def test_the_command_line_says_already_applied_and_exits_0(
    shop: Path, tmp_path: Path, capsys: Any
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(PLAN))
    assert main(["ai", "rewrite", "shop/billing.py", "--plan", str(saved), "--write"]) == 0
    capsys.readouterr()
    assert main(["ai", "rewrite", "shop/billing.py", "--plan", str(saved), "--write"]) == 0
    out = capsys.readouterr().out
    assert "the plan was verified: already applied, nothing changed (plan from a file)" in out
    assert "0 module(s) written, 1 unchanged" in out
