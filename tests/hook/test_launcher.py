"""`autodurable run`, the import hook's finder and cache, and `autodurable explain`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from autodurable._hook._cache import ProjectState, code_cache_path
from autodurable._hook._finder import DurableFinder, durable_code

from ..helpers import child_env, write_script

APP = """
import sys
import helpers

print("total", helpers.work(int(sys.argv[1])))
"""

HELPERS = """
import os, sys

def effect(i):
    with open("effects.log", "a") as fh:
        fh.write(f"{i}\\n")
    if os.path.exists(f"fail-at-{i}"):
        raise RuntimeError(f"step {i} failed")
    return i * 10

def work(n):
    return sum(effect(i) for i in range(n))
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    write_script(tmp_path, "app.py", APP)
    write_script(tmp_path, "helpers.py", HELPERS)
    return tmp_path


def autodurable(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autodurable", *args],
        cwd=folder,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def effects(folder: Path) -> list[str]:
    path = folder / "effects.log"
    return path.read_text().split() if path.exists() else []


def runs(folder: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / ".autodurable" / "state.db") as conn:
        return conn.execute(
            "SELECT workflow_id, status FROM workflows ORDER BY created_at"
        ).fetchall()


def test_a_failed_run_is_retried_from_its_failing_step(tmp_path):
    folder = project(tmp_path)
    (folder / "fail-at-2").touch()
    failed = autodurable(folder, "run", "app.py", "4")
    assert failed.returncode == 1
    assert "RuntimeError: step 2 failed" in failed.stderr
    assert 'helpers.py", line 8' in failed.stderr  # the original line of the raise
    assert "autodurable/_" not in failed.stderr.split("Traceback")[1]
    assert effects(folder) == ["0", "1", "2"]

    (folder / "fail-at-2").unlink()  # the cause is fixed
    retried = autodurable(folder, "run", "app.py", "4")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout == "total 60\n"
    assert "retrying failed run" in retried.stderr and "replaying 2 recorded" in retried.stderr
    assert effects(folder) == ["0", "1", "2", "2", "3"]  # 0 and 1 were replayed

    fresh = autodurable(folder, "run", "-q", "app.py", "4")
    assert fresh.returncode == 0 and fresh.stderr == ""
    assert len(runs(folder)) == 2  # a finished run starts a fresh one


def test_new_and_run_id_and_different_arguments(tmp_path):
    folder = project(tmp_path)
    assert autodurable(folder, "run", "--run-id", "nightly", "app.py", "1").returncode == 0
    again = autodurable(folder, "run", "--run-id", "nightly", "app.py", "1")
    assert again.returncode == 0 and again.stdout == ""
    assert "run nightly already finished" in again.stderr and "--new starts" in again.stderr
    assert effects(folder) == ["0"]  # nothing ran again
    autodurable(folder, "run", "--new", "app.py", "1")
    autodurable(folder, "run", "app.py", "2")
    assert len(runs(folder)) == 3


def test_exit_codes_are_the_programs(tmp_path):
    write_script(tmp_path, "exits.py", "import sys\nprint('bye')\nsys.exit(int(sys.argv[1]))\n")
    assert autodurable(tmp_path, "run", "exits.py", "0").returncode == 0
    done = autodurable(tmp_path, "run", "exits.py", "3")
    assert done.returncode == 3 and done.stdout == "bye\n"


def test_missing_script_and_missing_module(tmp_path):
    assert autodurable(tmp_path, "run", "nope.py").returncode == 2
    done = autodurable(tmp_path, "run", "-m", "no_such_module_here")
    assert done.returncode == 1 and "no module named" in done.stderr


def test_run_module_with_dash_m(tmp_path):
    folder = project(tmp_path)
    package = folder / "tool"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_script(package, "__main__.py", "import sys, helpers\nprint(helpers.work(3))\n")
    done = autodurable(folder, "run", "-m", "tool")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "30\n" and effects(folder) == ["0", "1", "2"]


def test_any_command_through_the_bootstrap(tmp_path):
    folder = project(tmp_path)
    write_script(
        folder,
        "service.py",
        """
        import autodurable, helpers
        print(type(helpers.effect).__name__, helpers.work(2))
        """,
    )
    done = autodurable(folder, "run", "--", sys.executable, "service.py")
    assert done.returncode == 0, done.stderr
    # The launcher's status line, and no other word of ours on the program's stderr.
    (status,) = done.stderr.splitlines()
    assert status.startswith(f"autodurable: running {sys.executable} with the modules of ")
    assert done.stdout == "InferredStep 10\n"  # rewritten by the hook
    # No durable root in the command: helpers.work is plain code, nothing is recorded.
    assert not (folder / ".autodurable").exists()

    # A workflow set in [tool.autodurable.roles] is a root: called from plain code,
    # it starts a workflow.
    with (folder / "pyproject.toml").open("a") as fh:
        fh.write('[tool.autodurable.roles]\n"helpers:work" = "workflow"\n')
    done = autodurable(folder, "run", "--", sys.executable, "service.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "InferredStep 10\n"
    assert [status for _, status in runs(folder)] == ["succeeded"]


def test_syntax_error_is_the_same_as_without_the_hook(tmp_path):
    folder = project(tmp_path)
    write_script(folder, "broken.py", "def f(:\n    pass\n")
    write_script(folder, "uses_broken.py", "import broken\n")
    plain = subprocess.run(
        [sys.executable, "uses_broken.py"], cwd=folder, capture_output=True, text=True
    )
    hooked = autodurable(folder, "run", "uses_broken.py")
    assert hooked.returncode == plain.returncode == 1
    assert hooked.stderr.strip().splitlines()[-1] == plain.stderr.strip().splitlines()[-1]
    assert 'broken.py", line 1' in hooked.stderr
    direct = autodurable(folder, "run", "-q", "broken.py")
    as_python = subprocess.run(
        [sys.executable, "broken.py"], cwd=folder, capture_output=True, text=True
    )
    assert direct.returncode == as_python.returncode == 1
    assert direct.stderr == as_python.stderr


def test_bad_configuration_names_the_key(tmp_path):
    folder = project(tmp_path)
    (folder / "pyproject.toml").write_text("[tool.autodurable]\nrolse = {}\n")
    done = autodurable(folder, "run", "app.py", "1")
    assert done.returncode == 2
    assert "rolse" in done.stderr and "pyproject.toml" in done.stderr
    assert effects(folder) == []
    # A command is not started either: the launcher validates before it execs.
    command = autodurable(folder, "run", "--", sys.executable, "app.py", "1")
    assert command.returncode == 2 and "rolse" in command.stderr
    assert effects(folder) == []


def test_opt_out_marker_and_exclusions(tmp_path):
    folder = project(tmp_path)
    helpers = folder / "helpers.py"
    helpers.write_text('"""Helpers. autodurable: off"""\n' + helpers.read_text())
    state = ProjectState(folder)
    assert state.plan.modules["helpers"].opted_out
    assert all(f.role == "plain" for f in state.plan.modules["helpers"].functions)
    excluded = ProjectState(folder, exclude=("helpers.py",))
    assert "helpers" not in excluded.modules


def test_finder_claims_only_project_modules(tmp_path):
    folder = project(tmp_path)
    finder = DurableFinder(ProjectState(folder))
    assert finder.find_spec("json", None) is None  # the standard library
    assert finder.find_spec("pydantic", None) is None  # site-packages
    assert finder.find_spec("autodurable._core._codec", None) is None  # never ourselves
    sys.path.insert(0, str(folder))
    try:
        spec = finder.find_spec("helpers", None)
    finally:
        sys.path.remove(str(folder))
    assert spec is not None and type(spec.loader).__name__ == "DurableLoader"
    assert spec.origin == str(folder / "helpers.py")


ORDER = """
import sys
from pathlib import Path
from autodurable._hook._launcher import prepare_hook
prepare_hook(Path.cwd())
print(type(sys.meta_path[0]).__name__)
import helpers, sqlite3
print(helpers.__loader__.__class__.__name__, type(sqlite3.connect).__name__)
"""


def test_the_project_finder_is_asked_first_and_library_hooks_still_fire(tmp_path):
    # The sentinel's and the web frameworks' post-import finders watch library
    # modules only: asked after ours, they still patch what they watch.
    folder = project(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", ORDER],
        cwd=folder,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DurableFinder", "DurableLoader", "_SentinelWrapper"]


def test_rewritten_code_is_cached_and_a_broken_cache_is_not_fatal(tmp_path):
    folder = project(tmp_path)
    cache = Path(code_cache_path(str(folder / "helpers.py")))
    assert autodurable(folder, "run", "app.py", "2", PYTHONDONTWRITEBYTECODE="1").returncode == 0
    # PYTHONDONTWRITEBYTECODE is respected: no __pycache__ beside the sources (the
    # caches go to autodurable's own folder: tests/hook/test_compile.py)
    assert not cache.exists() and not (folder / "__pycache__").exists()
    assert (
        autodurable(folder, "run", "--new", "app.py", "2", PYTHONDONTWRITEBYTECODE="").returncode
        == 0
    )
    assert cache.exists() and ".autodurable-" in cache.name
    assert (folder / "__pycache__").is_dir()
    cache.write_bytes(b"garbage")
    os.chmod(folder / "__pycache__", 0o555)  # and the cache folder is read-only
    try:
        done = autodurable(folder, "run", "--new", "app.py", "2", PYTHONDONTWRITEBYTECODE="")
    finally:
        os.chmod(folder / "__pycache__", 0o755)
    assert done.returncode == 0 and done.stdout == "total 10\n"


def test_editing_one_module_rewrites_only_the_modules_whose_plan_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    folder = project(tmp_path)
    write_script(folder, "other.py", "def size(p):\n    return len(open(p).read())\n")
    write_script(
        folder,
        "caller.py",
        "import other\n\ndef run(p):\n    return other.size(p) + len(open(p).read())\n",
    )
    names = ("helpers.py", "other.py", "caller.py")

    def compile_all() -> dict[str, tuple[bytes, int] | None]:
        state = ProjectState(folder)
        caches: dict[str, tuple[bytes, int] | None] = {}
        for name in names:
            path = str(folder / name)
            code = durable_code(state, path, script=False)
            cache = Path(code_cache_path(path))
            caches[name] = (cache.read_bytes(), cache.stat().st_mtime_ns) if code else None
        return caches

    first = compile_all()
    assert all(first.values())
    assert compile_all() == first  # nothing changed: every module from its cache
    # A change that leaves every other module's plan as it was: only it is rewritten.
    (folder / "other.py").write_text("def size(p):\n    return len(open(p).read()) + 0\n")
    second = compile_all()
    assert second["other.py"] != first["other.py"]
    assert second["caller.py"] == first["caller.py"] and second["helpers.py"] == first["helpers.py"]
    # Now size() does no I/O: caller.run, workflow code with a recorded site until
    # now, becomes a step, so caller.py (whose source did not change) is rewritten
    # again; helpers.py still comes from its cache.
    (folder / "other.py").write_text("def size(p):\n    return len(p)\n")
    third = compile_all()
    assert third["other.py"] is None
    assert third["caller.py"] is not None and third["caller.py"] != first["caller.py"]
    assert third["helpers.py"] == first["helpers.py"]


def test_the_project_plan_is_cached_and_analysed_again_when_a_file_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    folder = project(tmp_path)
    analysed = ProjectState(folder).plan
    assert ProjectState(folder).plan_cache_path.exists()

    def not_again(self):
        raise AssertionError("analysed although the project did not change")

    with monkeypatch.context() as patched:
        patched.setattr(ProjectState, "_analyse", not_again)
        assert ProjectState(folder).plan == analysed  # read back from the cache
    assert analysed.function("helpers:effect").role == "step"
    (folder / "helpers.py").write_text("def effect(i):\n    return i\n")
    assert ProjectState(folder).plan.function("helpers:effect").role == "plain"
    state = ProjectState(folder)
    state.plan_cache_path.write_text("{not json")  # a broken cache is not fatal
    assert state.plan.function("helpers:effect").role == "plain"


def test_explain_table_json_and_strict(tmp_path):
    folder = project(tmp_path)
    write_script(
        folder,
        "risky.py",
        """
        import requests

        def stream(urls):
            for url in urls:
                with open("log") as fh:
                    yield fh.read() + requests.get(url).text
        """,
    )
    table = autodurable(folder, "explain", "helpers.py")
    assert table.returncode == 0
    assert "effect" in table.stdout and "step/decorate" in table.stdout
    assert "calls open at line" in table.stdout
    as_json = json.loads(autodurable(folder, "explain", "--json", ".").stdout)
    plans = {m["module"]: m for m in as_json["modules"]}
    work = next(f for f in plans["helpers"]["functions"] if f["qualname"] == "work")
    assert work["role"] == "workflow" and "helpers:effect" in work["reason"]
    assert autodurable(folder, "explain", "--strict", "helpers.py").returncode == 0
    strict = autodurable(folder, "explain", "--strict", "risky.py")
    assert strict.returncode == 1 and "unsafe" in strict.stdout


def test_explain_names_a_module_that_does_not_parse(tmp_path):
    folder = project(tmp_path)
    (folder / "broken.py").write_text("def f(:\n    pass\n")
    one = autodurable(folder, "explain", "broken.py")
    assert one.returncode == 0
    assert "broken.py: skipped: does not parse: invalid syntax (line 1)" in one.stdout
    everything = json.loads(autodurable(folder, "explain", "--json", ".").stdout)
    assert list(everything["errors"]) == [str(folder / "broken.py")]
    assert {m["module"] for m in everything["modules"]} == {"app", "helpers"}


def test_a_script_whose_path_is_not_utf8_runs_and_resumes(tmp_path):
    folder = project(tmp_path)
    name = os.fsdecode(b"caf\xe9.py")  # a lone surrogate: not valid UTF-8
    write_script(folder, name, APP)
    first = autodurable(folder, "run", name, "2")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "total 10\n"
    again = autodurable(folder, "run", name, "2")  # finished: a fresh run, found by name
    assert again.returncode == 0 and "new run" in again.stderr
    names = {
        name
        for (name,) in sqlite3.connect(folder / ".autodurable" / "state.db").execute(
            "SELECT name FROM workflows"
        )
    }
    assert names == {"autodurable.run:" + str(folder / "caf\\xe9.py")}


def test_commands_recover_in_the_background_only_where_state_exists(tmp_path, monkeypatch):
    from autodurable._hook._child import ENV_SETTINGS, hook_environment

    monkeypatch.delenv("AUTODURABLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTODURABLE_APP_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)  # no pyproject.toml: the defaults, read without pydantic

    def recovers() -> bool:
        return bool(json.loads(hook_environment(tmp_path)[ENV_SETTINGS])["recover"])

    assert not recovers()
    (tmp_path / ".autodurable").mkdir()
    (tmp_path / ".autodurable" / "state.db").touch()
    assert recovers()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.autodurable]\ndatabase_url = "sqlite:///x.db"\n'
    )
    assert not recovers()  # configured elsewhere: x.db does not exist


TAKEN_OVER = """
import sqlite3

def effect(n):
    with open("effects.log", "a") as fh:
        fh.write(f"{n}\\n")

def taken_over():
    # Another executor adopts this run: this process was presumed dead.
    conn = sqlite3.connect(".autodurable/state.db")
    conn.execute("UPDATE workflows SET executor_id = 'someone-else'")
    conn.commit()
    conn.close()

effect(1)
taken_over()
effect(2)
"""


def test_a_run_another_executor_took_over_stops_with_one_line(tmp_path):
    folder = project(tmp_path)
    write_script(folder, "app.py", TAKEN_OVER)
    done = autodurable(folder, "run", "app.py")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr  # the status line, then one line: no traceback
    assert lines[1].startswith("autodurable: another executor took over run run-")
    assert "Traceback" not in done.stderr and "OwnershipLost" not in done.stderr
    assert effects(folder) == ["1"]  # it stopped at its next step


DIES_AT_EXIT = """
import atexit, os, signal
import helpers

def die_while_exiting():
    # A supervisor's SIGKILL after the program returned, before the process ended.
    if os.path.exists("kill-at-exit"):
        os.remove("kill-at-exit")
        os.kill(os.getpid(), signal.SIGKILL)

atexit.register(die_while_exiting)
print("total", helpers.work(3))
"""


def test_a_run_killed_after_the_program_returned_is_replayed_not_started_again(
    tmp_path, database_url
):
    folder = project(tmp_path)
    write_script(folder, "exits.py", DIES_AT_EXIT)
    (folder / "kill-at-exit").touch()
    env = {"AUTODURABLE_DATABASE_URL": database_url}
    killed = autodurable(folder, "run", "exits.py", **env)
    assert killed.returncode == -9 and killed.stdout == "total 30\n"
    assert effects(folder) == ["0", "1", "2"]
    # Not finished: the same command replays the run to its end, repeating nothing.
    again = autodurable(folder, "run", "exits.py", **env)
    assert (again.returncode, again.stdout) == (0, "total 30\n"), again.stderr
    assert "resuming run" in again.stderr and "replaying 3 recorded step(s)" in again.stderr
    assert effects(folder) == ["0", "1", "2"]
    # That one exited cleanly: it is finished, and the command starts a new run.
    third = autodurable(folder, "run", "exits.py", **env)
    assert third.returncode == 0 and "new run" in third.stderr
    assert effects(folder) == ["0", "1", "2"] * 2
