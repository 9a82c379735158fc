"""The comparison with DBOS runs every workload at tiny sizes (no assertions about time).

`benchmarks/compare.py --quick` measures plain Python, autodurable and DBOS
Transact (the ``bench`` extra, installed by the ``test`` extra) on each backend,
every workload at sizes that take seconds; this checks that it exits 0 and
prints a number for every library and workload, so that the benchmark cannot
rot. PostgreSQL follows the tests' rule (tests/_postgres.py): it runs when
AUTODURABLE_TEST_STORES selects it, and missing server binaries are a failure.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ._postgres import require_postgres
from .helpers import ROOT, child_env

# A benchmark runs its programs many times over: they run unmeasured by coverage.
pytestmark = pytest.mark.usefixtures("unmeasured_children")

WORKLOADS = (
    "(a) 1 workflow of 5 steps",
    "(b) 3 workflows of 2 steps",
    "(c) 2 workflows of 2 steps at once, threads",
    "(c) 2 workflows of 2 steps at once, asyncio",
    "(d) resume after a crash, 20 steps recorded",
    "(d) of which replay",
    "(e) cold start, new database",
    "(e) cold start, existing database",
)
NUMBER = r"\d[\d,]*(\.\d+)?"


def run_compare(backend: str) -> list[str]:
    """Run the benchmark with --quick on one backend; its output lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--quick", "--backend", backend],
        env=child_env(PYTHONIOENCODING="utf-8"),
        capture_output=True,
        encoding="utf-8",
        timeout=540,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def check_output(lines: list[str], backend: str) -> None:
    text = "\n".join(lines)
    header = next((line for line in lines if line.startswith("workload ")), None)
    assert header is not None, text
    for column in ("plain", "autodurable", "DBOS", "autodurable/DBOS", "autodurable/plain"):
        assert column in header, text
    for workload in WORKLOADS:
        row = next((line for line in lines if line.startswith(workload)), None)
        assert row is not None, f"no row for {workload}:\n{text}"
        cells = re.split(r"\s{2,}", row.strip())
        plain, ours, theirs, versus_dbos, versus_plain = cells[-5:]
        assert re.fullmatch(NUMBER, ours) and re.fullmatch(NUMBER, theirs), row
        assert re.fullmatch(NUMBER + "x", versus_dbos), row
        if workload.startswith("(d)"):  # plain Python has nothing to resume
            assert plain == versus_plain == "—", row
        else:
            assert re.fullmatch(NUMBER, plain) and re.fullmatch(NUMBER + "x", versus_plain), row
    assert any(line.strip().startswith(f"{backend}: per-step overhead at N=5") for line in lines), (
        text
    )
    assert any(line.strip().startswith(f"{backend}: recovery of 20 steps") for line in lines), text


@pytest.mark.timeout(600)
def test_compare_quick_on_sqlite_prints_every_workload() -> None:
    lines = run_compare("sqlite")
    assert any(
        line.startswith("read back from each library's connection:")
        and "autodurable journal_mode=WAL synchronous=NORMAL" in line
        and "DBOS journal_mode=WAL synchronous=NORMAL" in line
        for line in lines
    ), "\n".join(lines)
    check_output(lines, "sqlite")


@pytest.mark.timeout(600)
def test_compare_quick_on_postgres_prints_every_workload() -> None:
    require_postgres()
    check_output(run_compare("postgres"), "postgres")
