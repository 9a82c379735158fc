"""The step benchmark runs and prints its table (no assertions about time)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .helpers import ROOT, child_env

# A benchmark runs its programs many times over: they run unmeasured by coverage.
pytestmark = pytest.mark.usefixtures("unmeasured_children")


def run_benchmark(script: str, *args: str) -> list[str]:
    """Run a benchmark script with --quick; its output lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        env=child_env(PYTHONIOENCODING="utf-8"),
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_steps_benchmark_quick_prints_its_table() -> None:
    lines = run_benchmark("steps.py")
    header = next((line for line in lines if "autodurable µs/step" in line), None)
    assert header is not None, "\n".join(lines)
    for column in ("plain µs/call", "raw INSERT+COMMIT µs/row", "overhead/raw", "replay µs/step"):
        assert column in header
    rows = lines[lines.index(header) + 1 :]
    assert any(re.match(r"\s*5\s+\d", row) for row in rows), "\n".join(lines)


def test_codemod_robustness_quick_checks_json() -> None:
    """It exits 0 only if every output compiled and a second pass changed nothing."""
    lines = run_benchmark("codemod_robustness.py")
    assert any(line.split()[:2] == ["package", "mode"] for line in lines), "\n".join(lines)
    assert any(re.match(r"json\s+default\s+5\s+\d+\s+\d+\.\d+\s+\d+\.\d", line) for line in lines)


def test_imports_benchmark_quick_prints_its_table() -> None:
    lines = run_benchmark("imports.py")
    assert any(line.startswith("project: 20 modules") for line in lines), "\n".join(lines)
    header = next((line for line in lines if line.startswith("variant ")), None)
    assert header is not None, "\n".join(lines)
    for column in ("imports", "autodurable import", "prepare_hook", "process"):
        assert column in header
    for variant in ("plain cold", "plain warm", "hook cold", "hook warm"):
        assert any(re.match(rf"{variant}\s+\d+\.\d", line) for line in lines), "\n".join(lines)
    ratios = next((line for line in lines if line.startswith("hook/plain ")), None)
    assert ratios is not None, "\n".join(lines)
    for state in ("cold", "warm"):
        assert any(re.match(rf"{state}\s+\d+\.\d+x", line) for line in lines), "\n".join(lines)


def test_postgres_benchmark_quick_prints_both_tables(postgres_server) -> None:
    lines = run_benchmark("postgres.py", "--url", postgres_server.url())
    assert any(line.startswith("PostgreSQL 1") for line in lines), "\n".join(lines)
    header = next((line for line in lines if "autodurable µs/step" in line), None)
    assert header is not None, "\n".join(lines)
    for column in ("plain µs/call", "raw INSERT µs/row", "overhead µs/step", "overhead/raw"):
        assert column in header
    assert re.match(r"\s*\d+\.\d+\s+\d+\.\d\s+\d+\.\d", lines[lines.index(header) + 1])
    throughput = next((line for line in lines if "workflows/s" in line), None)
    assert throughput is not None, "\n".join(lines)
    rows = lines[lines.index(throughput) + 1 :]
    for concurrency in (1, 4, 16):
        assert any(re.match(rf"\s*{concurrency}\s+\d+\.\d\s+\d+\s+\d", row) for row in rows)


def test_watched_benchmark_quick_prints_both_rows() -> None:
    lines = run_benchmark("watched.py")
    assert any(line.startswith("where ") and "extra µs" in line for line in lines), lines
    for where in ("outside workflows", "inside a workflow"):
        assert any(re.match(rf"{where}\s+\d+\.\d+\s+\d+\.\d+", line) for line in lines), lines


def test_sweep_benchmark_quick_prints_its_table() -> None:
    lines = run_benchmark("sweep.py")
    assert lines[0].startswith("crash sweep of a 5-step workflow")
    assert any(line.strip().startswith("the whole sweep") and "(22 runs)" in line for line in lines)
    assert any("target: well under 10 s; met" in line for line in lines)
    assert any(line.strip().startswith("real time") for line in lines)


def test_dashboard_benchmark_quick_prints_its_times_and_plans() -> None:
    lines = run_benchmark("dashboard.py")
    assert any(line.startswith("list: first page") for line in lines), lines
    assert any(line.startswith("counts chart query") for line in lines), lines
    assert "query plans:" in lines


def test_telemetry_benchmark_quick_prints_its_modes() -> None:
    lines = run_benchmark("telemetry.py")
    for mode in ("off", "on/sdk"):
        assert any(
            re.match(rf"\s*{re.escape(mode)}\s+\d+\.\d+\s+\d+\.\d+x", line) for line in lines
        )
    assert "off imported no OpenTelemetry module (checked in every run)" in lines


def test_large_values_benchmark_quick_prints_its_cases() -> None:
    lines = run_benchmark("large_values.py")
    assert lines[0].startswith("20 workflows per case")
    assert any(line.startswith("1 MB results, out of line") for line in lines), lines


def test_boundary_benchmark_quick_prints_its_ratio() -> None:
    lines = run_benchmark("boundary.py")
    assert lines[0].startswith("httpx GET outside workflows")
    assert any(line.startswith("aiohttp GET outside workflows") for line in lines), lines
    ratios = [
        line for line in lines if re.match(r"\s*ratio installed/not installed: \d+\.\d+", line)
    ]
    assert len(ratios) == 2, lines


def test_concurrency_benchmark_quick_prints_both_stores(postgres_server) -> None:
    url = postgres_server.url()
    lines = run_benchmark("concurrency.py", "--url", f"{url}?schema=concurrency_smoke")
    for store in ("sqlite", "postgresql"):
        title = lines.index(f"{store}: steps (rows) per second, medians")
        table = lines[title + 1 : title + 8]
        for row in ("threads", "asyncio", "raw single rows", "raw batches"):
            assert any(re.match(rf"\s*{row}\s+[\d,]+\s+[\d,]+$", line) for line in table), lines
        assert any(re.match(r"\s*threads/raw rows\s+\d+\.\d\d\s+\d+\.\d\d$", x) for x in table)


def test_startup_benchmark_quick_prints_its_comparisons() -> None:
    lines = run_benchmark("startup.py")
    assert lines[0].startswith("start-up, median of 3 runs each")
    for name in ("python -c pass", "autodurable run hello.py", "autodurable workflows list"):
        assert any(line.strip().startswith(name) for line in lines), lines
    assert any(
        re.match(r"import autodurable over python -c pass: [+-]\d+\.\d ms", x) for x in lines
    )
    assert any(
        re.match(r"autodurable run hello.py / python hello.py: \d+\.\d\dx", x) for x in lines
    )
    assert any(re.match(r"  for scale, importing sqlite3, .*: \d+\.\d\dx$", x) for x in lines)
    assert any(
        re.match(r"a process under run -- CMD importing a project module: [+-]\d+\.\d ms", x)
        for x in lines
    )


def test_large_project_benchmark_quick_prints_every_variant_and_target() -> None:
    lines = run_benchmark("large_project.py")
    text = "\n".join(lines)
    for variant in ("plain, cold", "run, cold", "run, warm", "run, after editing one module",
                    "run, PYTHONDONTWRITEBYTECODE, after compile"):  # fmt: skip
        assert re.search(rf"^\s+{re.escape(variant)}\s+\d+\.\d\d", text, re.M), text
    for target in ("(target <= 3x)", "(target <= 1.3x)", "(target 1x)", "(target <= 100 MB)"):
        assert target in text, text
