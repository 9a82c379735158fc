"""examples/unmodified: a plain program made durable, killed with SIGKILL, resumed.

The demo is run as the README tells people to run it; its own checks (the
price service's request counts and the labels file) decide its exit code, and
the test reads what it printed. Its `check` is also fed a double run, to show
that it would notice one.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from .helpers import ROOT, child_env

EXAMPLE = ROOT / "examples" / "unmodified"


def test_the_demo_kills_the_program_and_resumes_it_without_repeating_a_step() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "demo.py")],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "-> killed by SIGKILL" in out
    assert "Finished: apples, bread, cheese." in out  # three items done before the kill
    assert "autodurable: resuming run run-" in out
    assert "all labels written" in out
    for item in ("apples", "bread", "cheese"):  # finished before the kill: done once
        assert f"{item:<7} price asked for 1x, label written 1x" in out
    # The item after them may have been in flight at the kill (at least once, by
    # design); the demo's exit code holds every other item to exactly once.
    assert "OK: killed mid-way and resumed; no finished step ran twice." in out


def test_the_program_itself_imports_nothing_of_autodurable() -> None:
    source = (EXAMPLE / "app.py").read_text(encoding="utf-8")
    assert "autodurable" not in source.split('"""', 2)[2]  # only its docstring names it


@pytest.fixture
def demo() -> Iterator[ModuleType]:
    """The demo module, imported here; the modules it imports are forgotten afterwards."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import demo as module

        yield module
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in ("demo", "app", "service"):
            sys.modules.pop(name, None)


def test_the_check_fails_when_a_finished_step_ran_twice(demo: ModuleType, tmp_path: Path) -> None:
    items = ["apples", "bread", "cheese", "dates", "eggs"]
    (tmp_path / "labels.txt").write_text("".join(f"{item}: 1.00\n" for item in items))
    service = SimpleNamespace(requests=Counter({f"/price/{item}": 1 for item in items}))
    assert demo.check(service, tmp_path, finished=items[:3]) == []

    service.requests["/price/bread"] = 2  # a finished fetch ran again
    (problem,) = demo.check(service, tmp_path, finished=items[:3])
    assert problem.startswith("bread was finished before the kill")


def test_the_check_tolerates_only_the_step_in_flight_at_the_kill(
    demo: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = ["apples", "bread", "cheese", "dates", "eggs"]
    (tmp_path / "labels.txt").write_text("".join(f"{item}: 1.00\n" for item in items))
    service = SimpleNamespace(requests=Counter({f"/price/{item}": 1 for item in items}))
    service.requests["/price/dates"] = 2  # in flight at the kill: at least once, by design
    assert demo.check(service, tmp_path, finished=items[:3]) == []
    assert "dates was in flight at the kill" in capsys.readouterr().out

    service.requests["/price/eggs"] = 2  # not in flight: the kill came before dates
    (problem,) = demo.check(service, tmp_path, finished=items[:3])
    assert problem.startswith("eggs was done more than once")

    (tmp_path / "labels.txt").write_text("apples: 1.00\n")  # the others never written
    assert len(demo.check(service, tmp_path, finished=items[:1])) == 4
