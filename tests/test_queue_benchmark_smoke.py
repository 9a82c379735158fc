"""The queue benchmark runs every workload at tiny sizes (no assertions about time).

`benchmarks/queues.py --quick` starts queue workers of autodurable and DBOS
Transact (the ``bench`` extra) on each backend and measures latency, throughput
and a rate limit at sizes that take seconds; this checks that it exits 0 and
prints a number for both libraries in every row (on the rows of autodurable's
``enqueue_many``, DBOS's own enqueue: it has no batch), so that the benchmark
cannot rot. PostgreSQL follows the tests' rule (tests/_postgres.py): it runs when
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

ROWS = (
    "(a) enqueue-to-start latency, idle, median",
    "(a) enqueue-to-start latency, idle, p99",
    "(b) burst of 8 workflows, 1 worker",
    "(b) burst of 8 workflows, 2 workers",
    "(b) burst of 8 workflows, 4 workers",
    "(b) enqueue of 8 by one client thread",
    "(b) burst of 8 by enqueue_many, 1 worker (DBOS: no batch, one enqueue each)",
    "(b) burst of 8 by enqueue_many, 2 workers (DBOS: no batch, one enqueue each)",
    "(b) burst of 8 by enqueue_many, 4 workers (DBOS: no batch, one enqueue each)",
    "(b) enqueue_many of 8 (DBOS: no batch, one enqueue each)",
    "(c) 8 workflows limited to 4/s, 2 workers",
    "(c) rate-limit error",
    "(c) most started in any 1 s",
)
NUMBER = r"[+-]?\d[\d,]*(\.\d+)?"


def run_queues(backend: str) -> list[str]:
    """Run the benchmark with --quick on one backend; its output lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "queues.py"), "--quick", "--backend", backend],
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
    for column in ("unit", "autodurable", "DBOS", "autodurable/DBOS"):
        assert column in header, text
    for workload in ROWS:
        row = next((line for line in lines if line.startswith(workload)), None)
        assert row is not None, f"no row for {workload}:\n{text}"
        ours, theirs, versus = re.split(r"\s{2,}", row.strip())[-3:]
        assert re.fullmatch(NUMBER, ours) and re.fullmatch(NUMBER, theirs), row
        if workload.startswith("(c)"):  # a rate limit's accuracy is not a ratio
            assert versus == "—", row
        else:
            assert re.fullmatch(NUMBER + "x", versus), row
    assert any(line.startswith("every repeat:") for line in lines), text
    for target in ("latency median", "latency p99", "throughput with 4 workers", "rate-limit"):
        assert any(line.strip().startswith(f"{backend}: {target}") for line in lines), text
    batch = f"{backend}: throughput with 4 workers, autodurable's enqueue_many/DBOS's enqueue"
    assert any(line.strip().startswith(batch) for line in lines), text
    # DBOS has no batch enqueue: no repeat line claims a DBOS value for the batch rows.
    assert not any("enqueue_many" in line and ", DBOS (" in line for line in lines), text


@pytest.mark.timeout(600)
def test_queue_benchmark_quick_on_sqlite_prints_every_row() -> None:
    check_output(run_queues("sqlite"), "sqlite")


@pytest.mark.timeout(600)
def test_queue_benchmark_quick_on_postgres_prints_every_row() -> None:
    require_postgres()
    check_output(run_queues("postgres"), "postgres")
