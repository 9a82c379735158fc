"""The import-hook benchmark runs and prints its table (no assertions about time)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT, child_env


def test_imports_benchmark_quick_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "imports.py"), "--quick"],
        env=child_env(PYTHONIOENCODING="utf-8"),
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("project: 20 modules") for line in lines), done.stdout
    header = next((line for line in lines if line.startswith("variant ")), None)
    assert header is not None, done.stdout
    for column in ("imports", "autodurable import", "prepare_hook", "process"):
        assert column in header
    for variant in ("plain cold", "plain warm", "hook cold", "hook warm"):
        assert any(re.match(rf"{variant}\s+\d+\.\d", line) for line in lines), done.stdout
    ratios = next((line for line in lines if line.startswith("hook/plain ")), None)
    assert ratios is not None, done.stdout
    for state in ("cold", "warm"):
        assert any(re.match(rf"{state}\s+\d+\.\d+x", line) for line in lines), done.stdout
