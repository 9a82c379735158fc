"""The garbage collector around the command's start-up (`autodurable._hook._collector`):
paused while the command starts, running (with start-up's objects frozen) by the time
the program's first line or the command's own work runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import child_env, write_script

# What the program sees of the collector, and whether a cycle it drops is freed.
PROGRAM = """
import gc, weakref

class Node:
    pass

node = Node()
node.self = node
freed = weakref.ref(node)
del node
gc.collect()
print(gc.isenabled(), gc.get_freeze_count() > 0, freed() is None)
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    write_script(tmp_path, "prog.py", PROGRAM)
    return tmp_path


def _python(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("options", [[], ["-q", "--new"]], ids=["fast path", "parsed"])
def test_a_program_under_the_command_runs_with_the_collector_on(tmp_path, options):
    folder = _project(tmp_path)
    for start in ("cold", "warm"):  # a cold start analyses the project first
        done = _python(folder, "-m", "autodurable", "run", *options, "prog.py")
        assert done.returncode == 0, (start, done.stderr)
        # On, start-up's objects frozen, and the program's own cycle collected.
        assert done.stdout.split() == ["True", "True", "True"], (start, done.stdout)


def test_every_other_command_does_its_work_with_the_collector_on(tmp_path):
    # A worker or the dashboard may run for days: the collector runs under them.
    code = (
        "import gc, sys\n"
        "import autodurable._cli._main as cli\n"
        "cli._command = lambda parser, args: print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "sys.argv = ['autodurable', 'info']\n"
        "cli.console_main()\n"
    )
    done = _python(tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_main_called_in_process_leaves_the_collector_alone(tmp_path):
    folder = _project(tmp_path)
    code = (
        "import gc\n"
        "from autodurable._cli import main\n"
        "main(['run', '-q', 'prog.py'])\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    done = _python(folder, "-c", code)
    assert done.returncode == 0, done.stderr
    # The program's line, then the caller's: nothing was frozen.
    assert done.stdout.splitlines() == ["True False True", "True 0"]


def test_what_an_analysis_keeps_alive_is_frozen_under_the_command(tmp_path):
    # The plan the hook keeps after a cold start's analysis is in the permanent
    # generation (which `gc.get_objects` does not list); in-process, it is not.
    folder = _project(tmp_path)
    probe = (
        "import gc, sys\n"
        "[state] = [f.state for f in sys.meta_path if type(f).__name__ == 'DurableFinder']\n"
        "plan = state.plan\n"
        "print(any(found is plan for found in gc.get_objects()))\n"
    )
    write_script(folder, "prog.py", probe)
    done = _python(folder, "-m", "autodurable", "run", "-q", "prog.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"  # frozen: not among the tracked objects
    for cache in (folder / "__pycache__").glob("autodurable-*"):  # analysed again, in-process
        cache.unlink()
    in_process = "from autodurable._cli import main\nmain(['run', '-q', 'prog.py'])\n"
    done = _python(folder, "-c", in_process)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"
