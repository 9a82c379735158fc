"""``autodurable run -- CMD`` prints its status line and nothing else of its own.

The bootstrap ``sitecustomize`` chains to the one it shadows without leaving
Python's import of ``sitecustomize`` anything to complain about (the
"Error in sitecustomize ... KeyError: 'sitecustomize'" line), whether CMD is
a console script, another ``sitecustomize`` is on the path, or a launcher
runs a launcher.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from autodurable._hook._child import BOOTSTRAP_DIR

from ..helpers import child_env, run_command
from ._shop import console_script

LAUNCHER = [sys.executable, "-m", "autodurable", "run", "--"]
CHECK = (
    "import sys, sitecustomize; "
    "print(sitecustomize.__file__.endswith('_bootstrap/sitecustomize.py'), "
    "getattr(sys, 'shadowed', 0), "
    "sum(type(f).__module__.startswith('autodurable.') for f in sys.meta_path))"
)


def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    return tmp_path


def status_only(stderr: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("autodurable: running "), stderr


def test_aconsole_script_prints_nothing_of_ours_but_the_status_line(tmp_path: Path) -> None:
    done = run_command([*LAUNCHER, *console_script("uvicorn"), "--version"], cwd=project(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "uvicorn" in done.stdout.lower()
    status_only(done.stderr)


def test_the_shadowed_sitecustomize_still_runs(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text(
        "import sys\nsys.shadowed = sys.shadowed + 1 if hasattr(sys, 'shadowed') else 1\n"
    )
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(other), env["PYTHONPATH"]])
    done = run_command([*LAUNCHER, sys.executable, "-c", CHECK], cwd=project(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "1", "2"]  # ours in sys.modules; theirs ran once
    status_only(done.stderr)


@pytest.mark.parametrize(
    "source", ["raise ValueError('theirs')\n", "import a_module_that_is_not_there\n"]
)
def test_a_failing_shadowed_sitecustomize_is_reported_as_python_reports_it(
    tmp_path: Path, source: str
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text(source)
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(other), env["PYTHONPATH"]])
    plain = run_command([sys.executable, "-c", "print(1)"], cwd=project(tmp_path), env=env)
    launched = run_command([*LAUNCHER, sys.executable, "-c", "print(1)"], cwd=tmp_path, env=env)
    assert plain.stdout == launched.stdout == "1\n"
    # The launcher is a Python process too: it reports it once for itself, then CMD does.
    status = [line for line in launched.stderr.splitlines() if line.startswith("autodurable:")]
    assert launched.stderr == plain.stderr + status[0] + "\n" + plain.stderr


def test_another_copy_of_the_bootstrap_on_the_path_is_not_run_again(tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "autodurable" / "_bootstrap"
    shutil.copytree(BOOTSTRAP_DIR, copy)
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(copy)])
    done = run_command([*LAUNCHER, sys.executable, "-c", CHECK], cwd=project(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "0", "2"]  # one hook, one web finder
    status_only(done.stderr)


def test_a_launcher_run_by_a_launcher_hooks_once(tmp_path: Path) -> None:
    nested = [*LAUNCHER, sys.executable, "-m", "autodurable", "run", "-q", "--"]
    done = run_command([*nested, sys.executable, "-c", CHECK], cwd=project(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "0", "2"]
    status_only(done.stderr)
