"""Where the state lives: found as git finds its repository, from any working directory.

The project root is the folder of the nearest pyproject.toml above the script
(``autodurable run script.py``) or above the working directory (other commands),
else that folder; the default database is ``<root>/.autodurable/state.db`` and a
relative SQLite path in the configuration is relative to the root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autodurable._project import resolve_database_url, sqlite_file

from ..helpers import child_env, write_script

APP = """
import sys
import helpers

print("total", helpers.work(int(sys.argv[1])))
"""

# Effects are counted in a file beside the script, whatever the working directory;
# DIE_AT=i kills the process (no cleanup, no atexit) as step i begins.
HELPERS = """
import os

EFFECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "effects.log")

def effect(i):
    if os.environ.get("DIE_AT") == str(i):
        os._exit(9)
    with open(EFFECTS, "a") as fh:
        fh.write(f"{i}\\n")
    return i * 10

def work(n):
    return sum(effect(i) for i in range(n))
"""


RELATIVE_URL = (
    '[project]\nname = "demo"\n\n[tool.autodurable]\ndatabase_url = "sqlite:///var/s.db"\n'
)


def project(tmp_path: Path, pyproject: str = "[project]\nname = 'demo'\n") -> Path:
    """A project whose script lives in a subfolder (``jobs/``) of the project root."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject)
    jobs = root / "jobs"
    jobs.mkdir()
    write_script(jobs, "app.py", APP)
    write_script(jobs, "helpers.py", HELPERS)
    return root


def autodurable(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autodurable", *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def effects(root: Path) -> list[str]:
    path = root / "jobs" / "effects.log"
    return path.read_text().split() if path.exists() else []


def elsewhere(tmp_path: Path) -> Path:
    other = tmp_path / "elsewhere"
    other.mkdir(exist_ok=True)
    return other


def test_a_killed_run_resumes_when_started_again_from_another_working_directory(tmp_path):
    root = project(tmp_path)
    script = root / "jobs" / "app.py"
    killed = autodurable(root / "jobs", "run", "app.py", "4", DIE_AT="2")
    assert killed.returncode == 9, killed.stderr
    assert effects(root) == ["0", "1"]
    state = root / ".autodurable" / "state.db"
    assert state.is_file()  # at the project root, not in the script's folder
    assert f"(state in {state})" in killed.stderr  # the resolved, absolute location
    assert not (root / "jobs" / ".autodurable").exists()

    other = elsewhere(tmp_path)  # cron, systemd: another working directory
    again = autodurable(other, "run", str(script), "4")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "total 60\n"
    assert "resuming run" in again.stderr and "replaying 2 recorded step(s)" in again.stderr
    assert f"(state in {state})" in again.stderr
    assert effects(root) == ["0", "1", "2", "3"]  # steps 0 and 1 did not run again
    assert not (other / ".autodurable").exists()


def test_without_a_pyproject_the_state_lives_in_the_scripts_folder(tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    write_script(folder, "app.py", APP)
    write_script(folder, "helpers.py", HELPERS)
    other = elsewhere(tmp_path)
    killed = autodurable(other, "run", str(folder / "app.py"), "3", DIE_AT="1")
    assert killed.returncode == 9, killed.stderr
    assert (folder / ".autodurable" / "state.db").is_file()
    assert not (other / ".autodurable").exists()
    again = autodurable(folder, "run", "app.py", "3")
    assert again.returncode == 0, again.stderr
    assert "replaying 1 recorded step(s)" in again.stderr
    assert (folder / "effects.log").read_text().split() == ["0", "1", "2"]


def test_reading_commands_in_a_subfolder_without_a_database_create_nothing(tmp_path):
    root = project(tmp_path)
    sub = root / "jobs"
    expected = root / ".autodurable" / "state.db"
    for command in (
        ["workflows", "list"],
        ["workflows", "list", "--json"],
        ["workflows", "show", "some-id"],
        ["workflows", "steps", "some-id"],
        ["info"],
    ):
        done = autodurable(sub, *command)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stdout == ""
        assert f"no state database at {expected}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (root / ".autodurable").exists() and not (sub / ".autodurable").exists()

    # a mistyped --database-url creates no folders either
    typo = autodurable(sub, "workflows", "list", "--database-url", "sqlite:///typo/dir/x.db")
    assert typo.returncode == 1 and f"no state database at {root / 'typo/dir/x.db'}" in typo.stderr
    absolute = tmp_path / "nowhere" / "deeper" / "x.db"
    typo = autodurable(sub, "--database-url", f"sqlite:///{absolute}", "workflows", "list")
    assert typo.returncode == 1 and str(absolute) in typo.stderr
    sent = autodurable(sub, "send", "some-id", '"yes"')
    assert sent.returncode == 2 and "no workflow with id 'some-id'" in sent.stderr
    assert not (root / "typo").exists() and not (sub / "typo").exists()
    assert not (tmp_path / "nowhere").exists()
    assert not (root / ".autodurable").exists()


def test_a_relative_database_url_in_pyproject_is_relative_to_the_project_root(tmp_path):
    root = project(tmp_path, RELATIVE_URL)
    other = elsewhere(tmp_path)
    ran = autodurable(other, "run", str(root / "jobs" / "app.py"), "2")
    assert ran.returncode == 0, ran.stderr
    state = root / "var" / "s.db"
    assert state.is_file() and f"(state in {state})" in ran.stderr
    assert not (other / "var").exists() and not (root / "jobs" / "var").exists()

    listed = autodurable(root / "jobs", "workflows", "list")  # from a subfolder: the same state
    assert listed.returncode == 0, listed.stderr
    assert "succeeded" in listed.stdout
    assert f"state in {state}" in listed.stderr


def test_an_explicit_database_url_in_the_environment_wins(tmp_path):
    root = project(tmp_path, RELATIVE_URL)
    chosen = tmp_path / "chosen" / "state.db"
    url = f"sqlite:///{chosen}"
    ran = autodurable(root / "jobs", "run", "app.py", "2", AUTODURABLE_DATABASE_URL=url)
    assert ran.returncode == 0, ran.stderr
    assert chosen.is_file() and f"(state in {chosen})" in ran.stderr
    assert not (root / "var").exists() and not (root / ".autodurable").exists()
    listed = autodurable(elsewhere(tmp_path), "workflows", "list", AUTODURABLE_DATABASE_URL=url)
    assert listed.returncode == 0 and "succeeded" in listed.stdout


def test_relative_sqlite_urls_resolve_against_the_root_and_others_stay(tmp_path):
    root = tmp_path / "a b%c"
    assert sqlite_file(resolve_database_url("sqlite:///.autodurable/state.db", root)) == (
        root / ".autodurable" / "state.db"
    )
    resolved = resolve_database_url("sqlite:///x.db?synchronous=full", root)
    assert resolved.endswith("/x.db?synchronous=full") and sqlite_file(resolved) == root / "x.db"
    for url in ("sqlite:////abs/x.db", "sqlite:///:memory:", "postgresql://u@h/db"):
        assert resolve_database_url(url, root) == url


def test_the_state_location_shown_never_includes_a_password(tmp_path):
    from autodurable._core._config import Settings
    from autodurable._core._runtime import Runtime

    url = "postgresql://app:s3cret@db.example:5432/prod?schema=jobs"
    shown = Runtime(Settings(database_url=url), root=tmp_path).location
    assert shown == "postgresql://app:***@db.example:5432/prod?schema=jobs"
    assert "s3cret" not in shown
    sqlite = Runtime(Settings(database_url="sqlite:///state/x.db"), root=tmp_path).location
    assert sqlite == str(tmp_path / "state" / "x.db")
