"""The labelled idiom suite is complete and well formed, and its scorer runs.

`benchmarks/idioms/` holds application code whose every function is labelled
``# expect: step|workflow|plain`` on its ``def`` line; `benchmarks/transparency.py`
scores the analyser against those labels. These tests check the suite (size,
families, labels) and that the scorer runs and prints its tables. They do not
assert the scores: those are what the analyser is being measured on
(``benchmarks/transparency.py --check`` does that).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from ..helpers import ROOT, child_env

IDIOMS = ROOT / "benchmarks" / "idioms"
FAMILIES = (
    "web_clients",
    "orms",
    "cloud_sdks",
    "messaging",
    "files_processes",
    "llm_clients",
    "clocks_random",
    "framework_injection",
    "concurrency",
    "negatives",
)
LABEL = re.compile(r"#\s*expect:\s*(\S+)\s*$")


def suite_functions() -> list[tuple[Path, int, str | None]]:
    """(module, def line, label or None) for every function and method of the suite."""
    found = []
    for path in sorted(IDIOMS.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                match = LABEL.search(lines[node.lineno - 1])
                found.append((path, node.lineno, match.group(1) if match else None))
    return found


def test_every_family_module_exists() -> None:
    missing = [name for name in FAMILIES if not (IDIOMS / f"{name}.py").is_file()]
    assert not missing
    assert (IDIOMS / "README.md").is_file()


def test_suite_has_at_least_300_labelled_functions() -> None:
    labelled = [f for f in suite_functions() if f[2] is not None]
    assert len(labelled) >= 300, len(labelled)


def test_every_def_carries_a_valid_label() -> None:
    functions = suite_functions()
    unlabelled = [f"{path.name}:{line}" for path, line, label in functions if label is None]
    assert not unlabelled, unlabelled
    invalid = [
        f"{path.name}:{line}: {label}"
        for path, line, label in functions
        if label not in ("step", "workflow", "plain")
    ]
    assert not invalid, invalid
    # Every line that starts a def is one ast found (no def hidden from the count).
    defs = sum(
        1
        for path in IDIOMS.glob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(async\s+)?def\s", line)
    )
    assert defs == len(functions)


def test_every_family_has_all_three_kinds_but_negatives() -> None:
    for name in FAMILIES:
        labels = {label for path, _, label in suite_functions() if path.stem == name}
        expected = {"plain", "workflow"} if name == "negatives" else {"step", "workflow", "plain"}
        assert expected <= labels, (name, labels)


def test_scorer_runs_and_prints_the_tables() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "transparency.py"), "--misses"],
        env=child_env(PYTHONIOENCODING="utf-8"),
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next((line for line in lines if line.startswith("family ")), None)
    assert header is not None, done.stdout
    for column in ("recall", "precis.", "static", "watched", "wf acc", "plain harmed"):
        assert column in header
    for name in (*FAMILIES, "total"):
        assert any(re.match(rf"{name}\s+\d+\s+\d+", line) for line in lines), name
    for metric in ("recall", "precision", "workflow accuracy", "static share", "plain harmed"):
        assert any(re.match(rf"\s+{metric}\s+\d\.\d{{3}}\s+\(target", line) for line in lines)
    assert any(line.startswith("misses (") for line in lines)
    assert "no valid label" not in done.stderr


def test_scan_reports_a_package(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "api.py").write_text(
        "import requests\n\n"
        "def fetch(url):\n    return requests.get(url).json()\n\n"
        "def total(urls):\n    return sum(fetch(u)['n'] for u in urls)\n\n"
        "def double(x):\n    return 2 * x\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "transparency.py"), "--scan", str(package)],
        env=child_env(PYTHONIOENCODING="utf-8"),
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("shop "))
    functions, steps, workflows = (int(n) for n in row.split()[2:5])
    assert (functions, steps, workflows) == (3, 1, 1), row
