"""autodurable's own cache folder and ``autodurable compile``: warm starts without
``__pycache__`` (``PYTHONDONTWRITEBYTECODE``) and on a read-only tree."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import child_env, write_script

HELPERS = """
def effect(i):
    with open("effects.log", "a") as fh:
        fh.write(f"{i}\\n")
    return i * 10

def work(n):
    return sum(effect(i) for i in range(n))
"""

PLAIN = """
def double(x):
    return 2 * x
"""

APP = """
import helpers, plain

print("total", helpers.work(2), plain.double(2))
"""

# Runs the command line in this process, then says whether the analyser was imported:
# a warm start reads the caches and never analyses.
ANALYSED = """
import sys
from autodurable._cli._main import main
code = main(sys.argv[1:])
print("analysed" if "autodurable._analysis._project" in sys.modules else "not analysed",
      file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture(autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's cache folder of this test's processes (``XDG_CACHE_HOME``)."""
    found = tmp_path_factory.mktemp("user-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(found))
    monkeypatch.delenv("AUTODURABLE_CACHE_DIR", raising=False)
    return found


def own_cache(user_cache: Path) -> Path:
    """autodurable's folder for the one project of a test, in the user's cache."""
    [found] = (user_cache / "autodurable").iterdir()
    return found


def hook_caches(folder: Path) -> list[Path]:
    """The hook's caches written under `folder` (beside the sources)."""
    return [*folder.rglob("*.autodurable-*.pyc"), *folder.rglob("autodurable-*.json")]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    write_script(tmp_path, "helpers.py", HELPERS)
    write_script(tmp_path, "plain.py", PLAIN)
    write_script(tmp_path, "app.py", APP)
    return tmp_path


def cli(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ANALYSED, *args],
        cwd=folder,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def sources(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*.py")
    }


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder`: its modification time and size."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_without_bytecode_the_caches_go_to_autodurables_own_folder_and_are_read(folder, user_cache):
    first = cli(folder, "run", "-q", "app.py", PYTHONDONTWRITEBYTECODE="1")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "total 10 4\n" and "analysed" in first.stderr.splitlines()[-1]
    own = own_cache(user_cache)
    assert own.name.startswith(f"{folder.name}-")
    assert not list(folder.rglob("__pycache__")) and not hook_caches(folder)  # nothing there
    assert list(own.glob("autodurable-plan-*.json"))
    assert list(own.glob("helpers.py.*.autodurable-*.pyc"))
    again = cli(folder, "run", "-q", "--new", "app.py", PYTHONDONTWRITEBYTECODE="1")
    assert again.returncode == 0 and again.stdout == "total 10 4\n"
    assert again.stderr.splitlines()[-1] == "not analysed"  # the caches were read


def test_the_cache_folder_can_be_named(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("caches")
    done = cli(
        folder,
        "run",
        "-q",
        "app.py",
        AUTODURABLE_CACHE_DIR=str(elsewhere),
        PYTHONDONTWRITEBYTECODE="",
    )
    assert done.returncode == 0, done.stderr
    assert list(elsewhere.glob("helpers.py.*.autodurable-*.pyc"))
    assert not list(folder.rglob("*.autodurable-*.pyc"))


def test_compile_builds_every_cache_a_run_reads_and_touches_no_source(folder, user_cache):
    before = sources(folder)
    done = cli(folder, "compile", "app.py", PYTHONDONTWRITEBYTECODE="1")
    assert done.returncode == 0, done.stderr
    own = own_cache(user_cache)
    assert f"{folder}: 2 rewritten by the hook, 2 compiled plainly; caches {own}" in done.stdout
    assert sources(folder) == before
    # plain bytecode for the modules the plan leaves alone, as compileall writes it
    assert list((folder / "__pycache__").glob("plain.*.pyc"))
    run = cli(folder, "run", "-q", "app.py", PYTHONDONTWRITEBYTECODE="1")
    assert run.returncode == 0 and run.stdout == "total 10 4\n"
    assert run.stderr.splitlines()[-1] == "not analysed"


def test_a_compiled_project_starts_warm_and_writes_nothing_in_its_tree(folder, tmp_path_factory):
    # What a read-only tree (a container image) needs: once compiled, a run with
    # PYTHONDONTWRITEBYTECODE neither analyses nor writes anything under the project.
    assert cli(folder, "compile", "app.py", PYTHONDONTWRITEBYTECODE="1").returncode == 0
    elsewhere = tmp_path_factory.mktemp("state")
    before = snapshot(folder)
    run = cli(
        elsewhere,
        "run",
        "-q",
        str(folder / "app.py"),
        PYTHONDONTWRITEBYTECODE="1",
        AUTODURABLE_DATABASE_URL=f"sqlite:///{elsewhere / 'state.db'}",
    )
    assert run.returncode == 0 and run.stdout == "total 10 4\n", run.stderr
    assert run.stderr.splitlines()[-1] == "not analysed"
    assert snapshot(folder) == before


def test_compile_reports_a_module_that_does_not_compile_and_builds_the_others(folder):
    write_script(folder, "broken.py", "def oops(:\n    pass\n")
    done = cli(folder, "compile", str(folder), PYTHONDONTWRITEBYTECODE="")
    assert done.returncode == 1
    assert f"{folder / 'broken.py'}: not compiled: SyntaxError" in done.stderr
    # app.py compiled as a module (no script named): the plan leaves it alone
    assert done.stdout == (
        f"{folder}: 1 rewritten by the hook, 2 compiled plainly; "
        "caches beside the sources (__pycache__)\n"
    )
    assert list((folder / "__pycache__").glob("helpers.*.autodurable-*.pyc"))


def test_a_touched_module_keeps_the_plan_and_an_edited_one_is_analysed(folder):
    env = {"PYTHONDONTWRITEBYTECODE": ""}
    assert cli(folder, "run", "-q", "app.py", **env).returncode == 0
    [plan] = (folder / "__pycache__").glob("autodurable-plan-*.json")  # written by an analysis
    analysed = plan.stat().st_mtime_ns
    helpers = folder / "helpers.py"
    later = helpers.stat().st_mtime_ns + 5_000_000_000
    os.utime(helpers, ns=(later, later))  # a touch, a checkout: the same source
    touched = cli(folder, "run", "-q", "--new", "app.py", **env)
    assert touched.stdout == "total 10 4\n" and plan.stat().st_mtime_ns == analysed
    again = cli(folder, "run", "-q", "--new", "app.py", **env)  # remembered under the new time
    assert again.stderr.splitlines()[-1] == "not analysed" and plan.stat().st_mtime_ns == analysed
    # The same size, another source: analysed, and the change is seen.
    helpers.write_text(helpers.read_text().replace("i * 10", "i * 20"))
    os.utime(helpers, ns=(later + 1, later + 1))
    edited = cli(folder, "run", "-q", "--new", "app.py", **env)
    assert edited.stdout == "total 20 4\n" and plan.stat().st_mtime_ns != analysed
