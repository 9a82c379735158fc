"""Module names are what Python imports a file as: src layouts, script folders, collisions.

The import hook, ``autodurable explain`` and the codemod name a module relative
to its import root (``src/``, a ``scripts/`` folder...), so absolute imports
inside a package resolve as relative ones do, and the hook rewrites a package
imported from a src layout. Projects are written into the test's folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodurable._ai._project import load_project as load_ai_project
from autodurable._analysis import analyse_project, discover
from autodurable._cli._main import main
from autodurable._hook._cache import ProjectState
from autodurable._hook._finder import DurableFinder

from ..helpers import child_env, run_command

READ = """\
def fetch(path):
    with open(path) as fh:
        return fh.read()
"""

ABSOLUTE = """\
from pkg.a import fetch


def absolute(path):
    return fetch(path).upper()
"""

RELATIVE = """\
from .a import fetch


def relative(path):
    return fetch(path).lower()
"""

APP = """\
import sys

from pkg.b import absolute

print(absolute(sys.argv[1]), end="")
"""


def project(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def src_layout(folder: Path) -> Path:
    files = {
        "src/pkg/__init__.py": "",
        "src/pkg/a.py": READ,
        "src/pkg/b.py": ABSOLUTE,
        "src/pkg/c.py": RELATIVE,
        "app.py": APP,
        "data.txt": "Hello\n",
    }
    return project(folder, files)


def run(folder: Path, *args: str, pythonpath: str = "") -> subprocess.CompletedProcess[str]:
    env = child_env()
    if pythonpath:  # as an installed (or editable) package would be importable
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], pythonpath])
    argv = [sys.executable, "-m", "autodurable", *args]
    return run_command(argv, cwd=folder, env=env, timeout=120)


def recorded_steps(folder: Path, run_output: subprocess.CompletedProcess[str]) -> list[str]:
    """The names of the steps the run in `run_output` recorded (`workflows steps --json`)."""
    assert run_output.returncode == 0, run_output.stderr
    run_id = run_output.stderr.split(" run ", 1)[1].split()[0]
    listed = run(folder, "workflows", "steps", "--json", run_id)
    assert listed.returncode == 0, listed.stderr
    return [step["name"] for step in json.loads(listed.stdout)["steps"]]


def explained(capsys: pytest.CaptureFixture[str], *paths: Path) -> dict[str, dict[str, dict]]:
    """``autodurable explain --json``: module -> qualname -> function plan."""
    capsys.readouterr()
    assert main(["explain", "--json", *map(str, paths)]) == 0
    data = json.loads(capsys.readouterr().out)
    return {
        module["module"]: {f["qualname"]: f for f in module["functions"]}
        for module in data["modules"]
    }


# -- the import hook --------------------------------------------------------------------------


def test_the_hook_rewrites_a_src_layout_package_imported_by_a_script(tmp_path):
    folder = src_layout(tmp_path)
    result = run(folder, "run", "app.py", "data.txt", pythonpath=str(folder / "src"))
    assert result.stdout == "HELLO\n"
    assert recorded_steps(folder, result) == ["fetch"]


def test_the_hook_rewrites_a_namespace_package_of_a_src_layout(tmp_path):
    # src/ns has no __init__.py: ns is a namespace package (PEP 420), ns.inner a package.
    files = {
        "src/ns/inner/__init__.py": "",
        "src/ns/inner/a.py": READ,
        "src/ns/inner/b.py": ABSOLUTE.replace("pkg.a", "ns.inner.a"),
        "app.py": APP.replace("pkg.b", "ns.inner.b"),
        "data.txt": "Hello\n",
    }
    folder = project(tmp_path, files)
    result = run(folder, "run", "app.py", "data.txt", pythonpath=str(folder / "src"))
    assert result.stdout == "HELLO\n"
    assert recorded_steps(folder, result) == ["fetch"]


def test_the_finder_knows_src_layout_packages_by_their_import_names(tmp_path):
    folder = src_layout(tmp_path)
    finder = DurableFinder(ProjectState(folder))
    assert {"pkg", "app"} <= finder._tops and "src" not in finder._tops
    assert finder.owns(str(folder / "src" / "pkg" / "b.py"))


def test_flat_layout_keeps_working_and_a_scripts_folder_imports_by_plain_name(tmp_path):
    folder = project(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": READ,
            "pkg/b.py": ABSOLUTE,
            "app.py": APP,
            "data.txt": "Hello\n",
            # python scripts/tool.py: scripts/ is sys.path[0], so `import helpers` is it
            "scripts/helpers.py": READ,
            "scripts/tool.py": "import sys, helpers\nprint(helpers.fetch(sys.argv[1]), end='')\n",
        },
    )
    flat = run(folder, "run", "app.py", "data.txt")
    assert flat.stdout == "HELLO\n"
    assert recorded_steps(folder, flat) == ["fetch"]
    script = run(folder, "run", "scripts/tool.py", "data.txt")
    assert script.stdout == "Hello\n"
    assert recorded_steps(folder, script) == ["fetch"]
    names = discover(folder)
    assert names["pkg.b"] == folder / "pkg" / "b.py"
    assert names["helpers"] == folder / "scripts" / "helpers.py"


# -- explain and the codemod --------------------------------------------------------------


def test_explain_resolves_an_absolute_self_import_as_the_relative_one(tmp_path, capsys):
    folder = src_layout(tmp_path)
    plans = explained(capsys, folder / "src")
    assert sorted(plans) == ["pkg", "pkg.a", "pkg.b", "pkg.c"]
    absolute, relative = plans["pkg.b"]["absolute"], plans["pkg.c"]["relative"]
    assert (absolute["role"], absolute["style"]) == ("workflow", "decorate")
    assert (relative["role"], relative["style"]) == ("workflow", "decorate")
    assert absolute["reason"] == relative["reason"] == "calls step pkg.a:fetch at line 5"


def test_the_codemod_sees_a_step_reached_through_an_absolute_self_import(tmp_path, capsys):
    pytest.importorskip("libcst")
    folder = src_layout(tmp_path)
    # Workflow code (it calls the step fetch) that reads the clock: its clock is a
    # recorded site. Were the import not resolved, stamped() would be a step itself.
    for name, imported in (("d", "from pkg.a import fetch"), ("e", "from .a import fetch")):
        (folder / "src" / "pkg" / f"{name}.py").write_text(
            f"import time\n{imported}\n\n\ndef stamped(path):\n"
            "    return fetch(path), time.time()\n"
        )
    assert main(["codemod", "--write", str(folder / "src")]) == 0
    capsys.readouterr()
    for name in ("d", "e"):
        written = (folder / "src" / "pkg" / f"{name}.py").read_text()
        assert 'autodurable.inline.recorded("time.time", time.time)' in written, written
        assert "@autodurable.step" not in written
    # A workflow that only calls steps is not a root: the codemod leaves it as it is.
    assert (folder / "src" / "pkg" / "b.py").read_text() == ABSOLUTE


def test_the_ai_project_analyses_absolute_self_imports(tmp_path):
    folder = src_layout(tmp_path)
    ai_project = load_ai_project(folder / "src" / "pkg" / "b.py")
    assert ai_project.module_of(folder / "src" / "pkg" / "b.py") == "pkg.b"
    plan, why = ai_project.plan("pkg.b")
    assert why is None and plan is not None
    assert plan.get("absolute").role == "workflow"


# -- names -------------------------------------------------------------------------------------


def test_names_are_relative_to_the_import_root(tmp_path):
    files = {
        "src/pkg/__init__.py": "",
        "src/pkg/a.py": "",
        "src/pkg/utils/x.py": "",  # no __init__.py: a namespace subpackage of pkg
        "src/ns/inner/__init__.py": "",  # ns: a namespace package (PEP 420)
        "src/ns/inner/m.py": "",
        "flatns/sub/__init__.py": "",
        "setup.py": "",
        "tests/test_a.py": "",  # no __init__.py: pytest imports it as test_a
        "tests/unit/test_b.py": "",
        "suite/__init__.py": "",
        "suite/test_c.py": "",
        "examples/demo-app/main.py": "",  # a folder not a package: its name does not count
        "packages/lib/pyproject.toml": "",
        "packages/lib/lib/__init__.py": "",
    }
    folder = project(tmp_path, files)
    names = {name: path.relative_to(folder).as_posix() for name, path in discover(folder).items()}
    assert names == {
        "setup": "setup.py",
        "main": "examples/demo-app/main.py",
        "flatns.sub": "flatns/sub/__init__.py",
        "lib": "packages/lib/lib/__init__.py",
        "ns.inner": "src/ns/inner/__init__.py",
        "ns.inner.m": "src/ns/inner/m.py",
        "pkg": "src/pkg/__init__.py",
        "pkg.a": "src/pkg/a.py",
        "pkg.utils.x": "src/pkg/utils/x.py",
        "suite": "suite/__init__.py",
        "suite.test_c": "suite/test_c.py",
        "test_a": "tests/test_a.py",
        "test_b": "tests/unit/test_b.py",
    }
    # A src folder that is a package is imported as one (from the project root).
    other = project(tmp_path / "other", {"src/__init__.py": "", "src/pkg/__init__.py": ""})
    assert sorted(discover(other)) == ["src", "src.pkg"]


def test_files_of_the_same_name_are_told_apart_by_their_import_root(tmp_path):
    files = {
        "conftest.py": "",
        "tests/conftest.py": "",
        "examples/a/main.py": "",
        "examples/b/main.py": "",
        "examples/b/pkg/__init__.py": "",
        "examples/b/pkg.py": "",  # beside the package that shadows it
        "src/pkg/__init__.py": "",
    }
    folder = project(tmp_path, files)
    first = discover(folder)
    names = {name: path.relative_to(folder).as_posix() for name, path in first.items()}
    assert names == {
        "conftest": "conftest.py",
        "main": "examples/a/main.py",
        "examples/b/main": "examples/b/main.py",
        "examples/b/pkg.py": "examples/b/pkg.py",
        "examples/b/pkg": "examples/b/pkg/__init__.py",
        "pkg": "src/pkg/__init__.py",
        "tests/conftest": "tests/conftest.py",
    }
    assert discover(folder) == first  # deterministic
    state = ProjectState(folder)
    assert state.plan.for_path(folder / "tests" / "conftest.py").module == "tests/conftest"
    assert state.module_plan(str(folder / "examples" / "b" / "main.py")) is not None


COLLIDING = {
    "examples/a/helper.py": "def work(x):\n    return x\n",
    "examples/a/main.py": "import helper\n\ndef go():\n    return helper.work(1)\n",
    "examples/b/helper.py": READ.replace("fetch", "work"),
    "examples/b/main.py": (
        "import sys\n\nimport helper\nfrom helper import work\n\n\n"
        "def go(path):\n    return helper.work(path)\n\n\n"
        "def again(path):\n    return work(path)\n\n\n"
        "print(go(sys.argv[1]), end='')\n"
    ),
    "data.txt": "Hello\n",
}


def test_an_import_resolves_among_its_own_import_root_first(tmp_path):
    folder = project(tmp_path, COLLIDING)
    plan = analyse_project(folder)
    b_main = plan.for_path(folder / "examples" / "b" / "main.py")
    assert b_main is not None and b_main.module == "examples/b/main"
    go, again = b_main.get("go"), b_main.get("again")
    assert go.role == again.role == "workflow"
    assert go.reason == "calls step examples/b/helper:work at line 8"
    a_main = plan.for_path(folder / "examples" / "a" / "main.py")
    assert a_main.module == "main" and a_main.get("go").role == "plain"


def test_the_hook_rewrites_the_file_of_a_name_another_file_holds(tmp_path):
    folder = project(tmp_path, COLLIDING)
    result = run(folder, "run", "examples/b/main.py", "data.txt")
    assert result.stdout == "Hello\n"
    assert recorded_steps(folder, result) == ["work"]


def test_a_module_beside_the_package_of_its_name_is_never_what_an_import_finds(tmp_path):
    # Python imports the package tool/, never tool.py; tool.py is still analysed (by path).
    files = {
        "tool/__init__.py": "def run(path):\n    return path\n",
        "tool.py": READ.replace("fetch", "run"),
        "app.py": "from tool import run\n\n\ndef main(path):\n    return run(path)\n",
    }
    folder = project(tmp_path, files)
    assert discover(folder) == {
        "app": folder / "app.py",
        "./tool.py": folder / "tool.py",
        "tool": folder / "tool" / "__init__.py",
    }
    plan = analyse_project(folder)
    assert plan.function("app:main").role == "plain"
    assert plan.function("./tool.py:run").role == "step"
