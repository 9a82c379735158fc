"""The step benchmark runs and prints its table (no assertions about time)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT, child_env


def test_steps_benchmark_quick_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "steps.py"), "--quick"],
        env=child_env(PYTHONIOENCODING="utf-8"),
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next((line for line in lines if "autodurable µs/step" in line), None)
    assert header is not None, done.stdout
    for column in ("plain µs/call", "raw INSERT+COMMIT µs/row", "overhead/raw", "replay µs/step"):
        assert column in header
    rows = lines[lines.index(header) + 1 :]
    assert any(re.match(r"\s*5\s+\d", row) for row in rows), done.stdout
