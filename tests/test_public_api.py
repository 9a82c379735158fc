"""The public API is exactly this list; changing it is a deliberate act."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import autodurable

PUBLIC = [
    "AutodurableError",
    "CallOptions",
    "ConfigError",
    "DuplicateWorkflow",
    "EncodeError",
    "NondeterminismError",
    "Queue",
    "RecoveryReport",
    "Retry",
    "StepError",
    "StepInfo",
    "StepTimeoutError",
    "StoreError",
    "Unrecoverable",
    "WorkflowCancelled",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowNotFound",
    "WorkflowStatus",
    "close_stream",
    "configure",
    "debounce",
    "delete_workflows",
    "deprecate_patch",
    "get_event",
    "get_event_async",
    "get_workflow",
    "idempotency_key",
    "list_workflows",
    "map",
    "now",
    "options",
    "patched",
    "proxy",
    "random",
    "read_stream",
    "read_stream_async",
    "recover",
    "recv",
    "recv_async",
    "schedule",
    "send",
    "set_event",
    "sleep",
    "sleep_async",
    "start",
    "step",
    "uuid4",
    "watched",
    "workflow",
    "workflow_id",
    "write_stream",
]


def test_all_is_pinned():
    assert sorted(autodurable.__all__) == PUBLIC


def test_all_equals_the_public_names_in_vars():
    # As httpx checks its __all__: once every name of __all__ is loaded (they are
    # imported lazily), every public non-module name bound in the package is in
    # __all__, and every name of __all__ is bound.
    for name in autodurable.__all__:
        getattr(autodurable, name)
    bound = {
        name
        for name, value in vars(autodurable).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert bound == set(autodurable.__all__)


def test_every_public_name_exists_and_is_documented():
    for name in autodurable.__all__:
        obj = getattr(autodurable, name)
        assert obj.__doc__, f"autodurable.{name} has no docstring"


def test_import_touches_no_database(tmp_path):
    code = "import autodurable, os; print(os.path.exists('.autodurable'))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_every_public_name_has_a_home_and_import_is_light(tmp_path):
    # Names are imported on first use: `import autodurable` loads neither pydantic,
    # asyncio, the drivers nor the runtime, and the decorators the codemod writes and
    # the helpers of hook-rewritten code load neither pydantic nor the runtime, so a
    # program that never runs workflow code pays next to nothing at import. Only
    # what each import adds counts (coverage, when it measures the child, loads
    # sqlite3 first); what wrapt imports is wrapt's (wrapt 2.5 imports asyncio).
    assert set(autodurable._HOME) == set(autodurable.__all__)
    assert set(autodurable.__all__) <= set(dir(autodurable))
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import autodurable\n"
        "heavy = {'pydantic', 'asyncio', 'sqlite3', 'psycopg', 'autodurable._core._runtime',"
        " 'autodurable._core._steps', 'autodurable._store'}\n"
        "print(sorted(heavy & (set(sys.modules) - before)))\n"
        "import autodurable.inline\n"
        "ours = {'pydantic', 'autodurable._core._runtime', 'autodurable._core._steps',"
        " 'autodurable._store'}\n"
        "@autodurable.step\n"
        "def a(): pass\n"
        "@autodurable.step(unrecordable='rerun')\n"
        "def b(): pass\n"
        "@autodurable.workflow(unrecordable='rerun')\n"
        "def c(): pass\n"
        "a(), b()\n"
        "print(sorted(ours & set(sys.modules)))  # what the codemod writes: still light\n"
        "@autodurable.step(retries=3)\n"
        "def d(): pass\n"
        "print(sorted({'pydantic', 'autodurable._core._options'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    # Any other option is checked at once, by plain code.
    assert done.stdout.splitlines() == ["[]", "[]", "['autodurable._core._options']"]


# What a warm `autodurable run` of a sync program that records nothing unusual does not
# import (each costs start-up milliseconds; see docs/performance.md). Modules loaded
# before the command line (by coverage, when it measures the child) do not count.
START_UP_HEAVY = frozenset(
    {
        "argparse", "ast", "base64", "concurrent.futures", "dataclasses", "decimal",
        "hashlib", "importlib.resources", "inspect", "logging", "pickle", "random",
        "sysconfig", "tempfile", "traceback", "uuid", "zoneinfo",
        "sqlite3",  # the SQLite stores use the C module (_sqlite_driver); tomllib loads datetime
        # autodurable's own, for what a sync program without limits, timeouts,
        # telemetry, web frameworks or child commands does not use
        "autodurable._core._limits", "autodurable._core._step_timeouts",
        "autodurable._core._telemetry", "autodurable._web._auto", "autodurable._hook._child",
    }
)  # fmt: skip


def _warm_project(folder: Path, pyproject: str, hello: str) -> dict[str, str]:
    """A project whose hello.py has run once under the hook (its caches written); the
    environment to run it again with."""
    (folder / "pyproject.toml").write_text(pyproject)
    (folder / "hello.py").write_text(hello)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTODURABLE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the hook's caches are written
    cli = [sys.executable, "-m", "autodurable", "run", "-q", "hello.py"]
    subprocess.run(cli, cwd=folder, env=env, check=True, capture_output=True)
    return env


@pytest.mark.parametrize(
    ("command", "loaded"),
    [
        (["run", "hello.py"], []),  # a sync program: no asyncio, no wrapt package
        (["workflows", "list"], []),
        (["workflows", "show", "nothing-here"], []),
        (["info"], []),
    ],
    ids=lambda value: " ".join(value),
)
def test_a_warm_run_and_the_command_line_import_no_pydantic(tmp_path, command, loaded):
    # Settings and call options are checked by plain code, and the analyser (which
    # keeps its plans in pydantic models) is not imported once the hook's caches
    # are warm: what every run and every command pays at start. Commands that read
    # stored workflows, and a run of a program that does not use asyncio, do not load
    # asyncio either.
    env = _warm_project(
        tmp_path,
        "[tool.autodurable]\nlease_seconds = 10\n",
        "import pathlib\nprint(pathlib.Path('hello.py').stat().st_size)\n",
    )
    code = (
        "import sys, atexit\n"
        "heavy = {'pydantic', 'asyncio', 'wrapt'}\n"
        "if sys.argv[1] == 'run':\n"
        "    heavy |= START_UP_HEAVY - set(sys.modules)\n"
        "atexit.register(lambda: print(sorted(heavy & set(sys.modules)), file=sys.stderr))\n"
        "from autodurable._cli._main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    ).replace("START_UP_HEAVY", repr(START_UP_HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", code, *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == (2 if "show" in command else 0), done.stderr  # 2: no such id
    assert done.stderr.splitlines()[-1] == str(loaded), done.stderr


def test_a_warm_run_compiles_no_code_of_its_own(tmp_path):
    # A process's first `compile` costs 1.5 ms (forward references in typing, a
    # NamedTuple's constructor and record __init__s all compile): a warm start needs none.
    env = _warm_project(tmp_path, "[project]\nname = 'demo'\n", "print('hello')\n")
    code = (
        "import sys, atexit\n"
        "compiled = []\n"
        "def audit(event, args):\n"
        "    if event == 'compile' and args[1] == '<string>':\n"
        "        compiled.append(args[0])\n"
        "sys.addaudithook(audit)\n"
        "atexit.register(lambda: print(compiled, file=sys.stderr))\n"
        "from autodurable._cli import console_main\n"
        "sys.argv = ['autodurable', 'run', 'hello.py']\n"
        "sys.exit(console_main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n"
    assert done.stderr.splitlines()[-1] == "[]", done.stderr


def test_the_former_name_of_call_options_still_works_with_a_deprecation_warning() -> None:
    deprecated = r"Options is deprecated; use autodurable\.CallOptions"
    with pytest.warns(DeprecationWarning, match=deprecated):
        former = autodurable.Options
    assert former is autodurable.CallOptions


def test_the_testing_module_exports_exactly_its_all_and_documents_it():
    import autodurable.testing as testing

    for name in testing.__all__:  # imported on first use
        getattr(testing, name)
    bound = {
        name
        for name, value in vars(testing).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert bound == set(testing.__all__)
    for name in testing.__all__:
        assert getattr(testing, name).__doc__, f"autodurable.testing.{name} has no docstring"


def test_the_web_module_exports_exactly_its_all_and_documents_it():
    import autodurable.web as web

    bound = {
        name
        for name, value in vars(web).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert bound == set(web.__all__) == {"IdempotencyMiddleware", "IdempotencyWSGIMiddleware"}
    for name in web.__all__:
        assert getattr(web, name).__doc__, f"autodurable.web.{name} has no docstring"


def test_the_pytest_plugin_is_registered_and_imports_no_runtime(tmp_path):
    # Registered through the pytest11 entry point: loaded in every pytest session of
    # a project with autodurable installed, so it must cost nothing there.
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "autodurable"]
    assert plugin.value == "autodurable.testing.plugin"
    code = (
        "import sys, autodurable.testing.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith('autodurable._core')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "[]"
