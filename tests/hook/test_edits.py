"""An edit under the import hook: only the modules it changed are analysed again
(`ProjectState` with `_analysis._incremental`), and the program runs as after a
fresh analysis."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from autodurable._analysis import _project, analyse_project
from autodurable._hook._cache import ProjectState

from ..helpers import write_script
from .test_launcher import autodurable, effects

APP = """
import sys
import service

print("total", service.run(int(sys.argv[1])))
"""

STORE = """
import json, pathlib

class Store:
    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def save(self, i):
        with open(self.folder / "effects.log", "a") as fh:
            fh.write(f"{i}\\n")
        return i * 10

def open_store():
    return Store(".")
"""

SERVICE = """
from store import open_store

def keep(store, i):
    return store.save(i)

def run(n):
    store = open_store()
    return sum(keep(store, i) for i in range(n))
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    for name, text in (("app.py", APP), ("store.py", STORE), ("service.py", SERVICE)):
        write_script(tmp_path, name, text)
    return tmp_path


@pytest.fixture
def counted(monkeypatch):
    """How many analyses of the whole project run."""
    calls = []
    real = _project.analyse_whole

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_project, "analyse_whole", counting)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return calls


def fresh(folder: Path, counted: list[int]):
    """A fresh analysis of the project, not counted."""
    done = len(counted)
    plan = analyse_project(folder)
    del counted[done:]
    return plan


def plans(plan) -> dict[str, str]:
    return {name: module.model_dump_json() for name, module in plan.modules.items()}


def test_an_edit_inside_a_module_analyses_only_it_and_plans_as_a_fresh_analysis(tmp_path, counted):
    folder = project(tmp_path)
    before = ProjectState(folder).digests()
    assert len(counted) == 1
    text = SERVICE.replace("def run(n):\n", "# totals\n\n\ndef run(n):\n    n = int(n)\n")
    (folder / "service.py").write_text(text)
    state = ProjectState(folder)
    after = state.digests()
    assert len(counted) == 1, "the whole project was analysed again"
    service, store = str(folder / "service.py"), str(folder / "store.py")
    assert after[service] != before[service] and after[store] == before[store]
    anew = fresh(folder, counted)
    assert state.module_plan(service).model_dump_json() == anew.modules["service"].model_dump_json()
    # The plan kept for every module, read back whole, is the fresh analysis's.
    kept = ProjectState(folder).plan
    assert len(counted) == 1
    assert plans(kept) == plans(anew) and kept.statistics == anew.statistics
    # A second edit starts from what the first recorded.
    (folder / "store.py").write_text(
        STORE.replace("return i * 10", "value = i * 10\n        return value")
    )
    again = ProjectState(folder)
    again.digests()
    assert len(counted) == 1
    assert plans(again.plan) == plans(fresh(folder, counted))


def test_an_edit_that_changes_what_others_see_analyses_the_whole_project(tmp_path, counted):
    folder = project(tmp_path)
    ProjectState(folder).digests()
    # save() no longer does I/O: keep() and run(), in another module, change role.
    io = 'with open(self.folder / "effects.log", "a") as fh:\n            fh.write(f"{i}\\n")\n'
    assert io in STORE
    (folder / "store.py").write_text(STORE.replace(io, ""))
    state = ProjectState(folder)
    state.digests()
    assert len(counted) == 2
    assert plans(state.plan) == plans(fresh(folder, counted))


@pytest.mark.parametrize("broken", ["index", "analysis", "plan"])
def test_a_missing_or_broken_cache_analyses_the_whole_project(tmp_path, counted, broken):
    folder = project(tmp_path)
    ProjectState(folder).digests()
    [cache] = (folder / "__pycache__").glob(f"autodurable-{broken}-*")
    cache.write_bytes(cache.read_bytes()[:-7])
    (folder / "service.py").write_text(SERVICE + "\n# edited\n")
    state = ProjectState(folder)
    state.digests()
    assert len(counted) == 2
    assert plans(state.plan) == plans(fresh(folder, counted))


def test_a_new_module_analyses_the_whole_project(tmp_path, counted):
    folder = project(tmp_path)
    ProjectState(folder).digests()
    write_script(folder, "extra.py", "def nothing():\n    return 1\n")
    ProjectState(folder).digests()
    assert len(counted) == 2


def test_a_program_edited_between_runs_runs_as_after_a_fresh_analysis(tmp_path):
    folder = project(tmp_path)
    first = autodurable(folder, "run", "app.py", "3")
    assert first.returncode == 0, first.stderr
    assert "total 30" in first.stdout and effects(folder) == ["0", "1", "2"]
    (folder / "service.py").write_text(SERVICE.replace("range(n)", "range(n, 2 * n)"))
    second = autodurable(folder, "run", "--new", "app.py", "3")
    assert second.returncode == 0, second.stderr
    assert "total 120" in second.stdout
    assert effects(folder) == ["0", "1", "2", "3", "4", "5"]
    # Both runs recorded their steps: one per item, the edited run's under the new plan.
    with sqlite3.connect(folder / ".autodurable" / "state.db") as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM steps")]
    assert len([name for name in names if "save" in name or "keep" in name]) == 6, names
