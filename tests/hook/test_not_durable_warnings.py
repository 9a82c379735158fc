"""What cannot be made durable safely is named: by ``explain --strict`` and, once per
function, by ``autodurable run`` at start. Never silence."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from ..helpers import child_env

SCRIPT = """\
def pages(client, urls):
    for u in urls:
        yield client.fetch(u)


def total(client, urls):
    return sum(len(p) for p in pages(client, urls))


print(total(None, []))
"""


def _autodurable(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autodurable", *args],
        cwd=folder,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_prints_one_line_per_function_it_cannot_make_durable(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(SCRIPT))
    result = _autodurable(tmp_path, "run", "app.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"
    lines = [line for line in result.stderr.splitlines() if "not durable" in line]
    assert len(lines) == 1
    assert lines[0].startswith("autodurable: not durable: pages (")
    assert "client.fetch at line 3" in lines[0]


def test_explain_strict_fails_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(SCRIPT))
    result = _autodurable(tmp_path, "explain", "--strict", "app.py")
    assert result.returncode == 1
    assert "note: a generator calling client.fetch at line 3" in result.stdout


def test_a_project_that_is_all_durable_prints_nothing_extra(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print(sum(range(4)))\n")
    result = _autodurable(tmp_path, "run", "app.py")
    assert result.stdout == "6\n"
    assert "not durable" not in result.stderr
