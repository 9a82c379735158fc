"""examples/ai: the documented worked example is what the code produces, and the result works.

docs/ai.md shows excerpts of the context sent to the model, the plan
(`examples/ai/plan.json`), the diff and the summary; each is checked against
the real output. Then the rewritten module is run: a crash after the charge
does not charge the card twice.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import autodurable
from autodurable._cli._main import main

from ..helpers import ROOT

EXAMPLE = ROOT / "examples" / "ai"


def _section() -> str:
    """The page of the documentation that walks through the example."""
    return (ROOT / "docs" / "ai.md").read_text(encoding="utf-8")


def _blocks(kind: str) -> list[str]:
    """The fenced blocks of the page whose fence names `kind` ("" for a bare fence)."""
    found: list[str] = []
    current: list[str] | None = None
    for line in _section().splitlines():
        if current is None and line.startswith("```"):
            current = [] if line[3:].strip() == kind else None
            if current is None:  # another kind: skip to its closing fence
                current = ["<skip>"]
        elif current is not None and line.startswith("```"):
            if current[:1] != ["<skip>"]:
                found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def _contiguous(excerpt: list[str], lines: list[str]) -> bool:
    """Whether `excerpt` is a run of consecutive `lines` (a line ending in ' ...' is a prefix)."""

    def same(shown: str, real: str) -> bool:
        return real.startswith(shown[:-4]) if shown.endswith(" ...") else shown == real

    return any(
        all(same(shown, real) for shown, real in zip(excerpt, lines[i:], strict=False))
        and len(lines) - i >= len(excerpt)
        for i in range(len(lines))
    )


@pytest.fixture
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the page shows paths relative to the repository


def test_the_documented_context_is_what_the_model_is_shown(
    in_repository: None, capsys: Any
) -> None:
    assert main(["ai", "context", "examples/ai/billing.py"]) == 0
    real = capsys.readouterr().out.splitlines()
    context = next(b for b in _blocks("") if "Places the analyser could not decide" in b)
    assert _contiguous(context.splitlines(), real)


def test_the_documented_plan_is_the_example_plan() -> None:
    (shown,) = _blocks("json")
    plan = json.loads((EXAMPLE / "plan.json").read_text())
    shown_plan = json.loads(shown)

    def without_reasons(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_reasons(v) for k, v in value.items() if k != "reason"}
        if isinstance(value, list):
            return [without_reasons(v) for v in value]
        return value

    plan.pop("summary")
    assert without_reasons(shown_plan) == without_reasons(plan)
    for kind, entries in shown_plan.items():
        for entry, real in zip(entries, plan[kind], strict=True):
            assert real["reason"].startswith(entry["reason"].removesuffix(" ..."))


def test_the_documented_diff_and_summary_are_what_the_rewrite_prints(
    in_repository: None, capsys: Any
) -> None:
    before = (EXAMPLE / "billing.py").read_text()
    code = main(["ai", "rewrite", "examples/ai/billing.py", "--plan", "examples/ai/plan.json"])
    assert code == 0
    assert (EXAMPLE / "billing.py").read_text() == before  # no --write
    real = capsys.readouterr().out.splitlines()
    (diff,) = _blocks("diff")
    assert _contiguous(diff.splitlines(), real)
    summary = next(b for b in _blocks("") if "the plan was verified" in b)
    lines = summary.splitlines()
    # The summary excerpt leaves lines out: each shown line is there, in order.
    positions = [next(i for i, r in enumerate(real) if _contiguous([s], [r])) for s in lines]
    assert positions == sorted(positions)


def test_the_rewritten_module_charges_once_across_a_crash(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "app"\n')
    shutil.copy(EXAMPLE / "billing.py", project / "billing.py")
    plan = str(EXAMPLE / "plan.json")
    assert main(["ai", "rewrite", str(project / "billing.py"), "--plan", plan, "--write"]) == 0
    spec = importlib.util.spec_from_file_location("ai_example_billing", project / "billing.py")
    assert spec is not None and spec.loader is not None
    billing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(billing)

    class Crash(BaseException):
        """The process dying, as far as the workflow can tell."""

    class Payments:
        def __init__(self) -> None:
            self.charges: list[dict[str, Any]] = []

        def charge(self, **request: Any) -> dict[str, Any]:
            self.charges.append(request)
            return {"id": f"ch_{len(self.charges)}"}

    class Mailer:
        def __init__(self, crash: bool) -> None:
            self.crash = crash
            self.sent = 0

        def send(self, **message: Any) -> None:
            if self.crash:
                raise Crash("mailer")
            self.sent += 1

    order = {"id": "o-1", "total_cents": 990, "currency": "EUR", "card_token": "tok",
             "email": "a@example.com"}  # fmt: skip
    (tmp_path / "order.json").write_text(json.dumps(order))
    run = autodurable.options(billing.process_order, workflow_id="order-1")
    first = Payments()
    billing.use(first, Mailer(crash=True))
    with pytest.raises(Crash, match=r"^mailer$"):
        run(str(tmp_path / "order.json"), str(tmp_path / "receipt.json"))
    assert [c["idempotency_key"] for c in first.charges] == ["order-1:2"]
    again, mailer = Payments(), Mailer(crash=False)
    billing.use(again, mailer)
    assert run(str(tmp_path / "order.json"), str(tmp_path / "receipt.json")) == "ch_1"
    assert again.charges == []  # replayed from the record: the card is not charged again
    assert mailer.sent == 1
    assert json.loads((tmp_path / "receipt.json").read_text()) == {"order": "o-1", "charge": "ch_1"}
