"""The guide for coding assistants: generated from the public API, shipped in docs/, versioned."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

import autodurable
from autodurable._ai._guide import GUIDE_FORMAT, render_guide
from autodurable._cli._main import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docs" / "AUTODURABLE_GUIDE.md"


def test_the_shipped_guide_is_the_current_one() -> None:
    assert SHIPPED.read_text(encoding="utf-8") == render_guide(), (
        "docs/AUTODURABLE_GUIDE.md is stale: autodurable ai prompt -o docs/AUTODURABLE_GUIDE.md"
    )


def test_the_guide_is_versioned() -> None:
    second_line = render_guide().splitlines()[2]
    assert second_line.startswith(
        f"autodurable {autodurable.__version__}, guide format {GUIDE_FORMAT}."
    )


def test_every_public_name_is_documented_with_its_signature_and_docstring() -> None:
    guide = render_guide()
    for name in autodurable.__all__:
        obj = getattr(autodurable, name)
        first_line = (inspect.getdoc(obj) or "").splitlines()[0]
        assert first_line in guide, name
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert f"- `{name}({obj.__mro__[1].__name__})`" in guide
        elif not isinstance(obj, type):  # a function: its heading is its signature
            assert f"#### `autodurable.{name}(" in guide, name
            heading = guide.split(f"#### `autodurable.{name}(")[1].split("`")[0]
            for param in inspect.signature(obj).parameters:
                assert param in heading, (name, param)
    for field in autodurable.CallOptions.declared:
        assert f"- `{field}: " in guide
    assert "- `max_attempts: int (>= 1) = 3`" in guide


def test_a_new_public_name_appears_without_touching_the_guide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def checkpoint(label: str, *, flush: bool = True) -> None:
        """Record a named checkpoint in the current workflow."""

    monkeypatch.setattr(autodurable, "checkpoint", checkpoint, raising=False)
    monkeypatch.setattr(autodurable, "__all__", [*autodurable.__all__, "checkpoint"])
    guide = render_guide()
    assert "### Other" in guide
    assert "#### `autodurable.checkpoint(label: str, *, flush: bool = True) -> None`" in guide
    assert "Record a named checkpoint in the current workflow." in guide


def test_the_guide_is_deterministic() -> None:
    guide = render_guide()
    assert guide == render_guide()
    assert " at 0x" not in guide and str(ROOT) not in guide


def test_ai_prompt_prints_writes_and_checks_it(tmp_path: Path, capsys: Any) -> None:
    assert main(["ai", "prompt"]) == 0
    assert capsys.readouterr().out == render_guide()
    target = tmp_path / "docs" / "GUIDE.md"
    assert main(["ai", "prompt", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_guide()
    assert main(["ai", "prompt", "--check", str(target)]) == 0
    target.write_text("# an old guide\n")
    assert main(["ai", "prompt", "--check", str(target)]) == 1
    assert "is not the current guide" in capsys.readouterr().err
