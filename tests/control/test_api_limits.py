"""Limits declared on the APIs steps call (``[tool.autodurable.limits]``), on both
stores: they hold across processes for steps inferred by the hook in unmodified
programs and for decorated steps, measured from the effects' timestamps; a
SIGKILLed holder does not block the others; waits are shown; bad limits are one
clear line.

The API is a module outside the project (``lib/fakeapi.py``, declared I/O with
``io = ["fakeapi"]``), as a vendor's SDK would be: it appends one line per
call to an effects file (``start|end TAG PID TIME``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autodurable
from autodurable._core._report import forget

from ..helpers import child_env, run_command, wait_until, write_script

FAKEAPI = """
import asyncio, os, time

def _log(kind, tag):
    with open(os.environ["EFFECTS"], "a") as fh:
        fh.write(f"{kind} {tag} {os.getpid()} {time.time():.6f}\\n")

def call(tag, seconds=0.05):
    _log("start", tag)
    time.sleep(0 if os.path.exists("quick") else seconds)  # "quick": a test's shortcut
    _log("end", tag)
    return tag

async def acall(tag, seconds=0.05):
    _log("start", tag)
    await asyncio.sleep(seconds)
    _log("end", tag)
    return tag
"""

# An unmodified program: the hook makes `ask` a step (it calls the API) and `main`
# the workflow; the pool's calls are steps of it, each under the limits.
APP = """
import sys
from concurrent.futures import ThreadPoolExecutor
import fakeapi

def ask(tag):
    return fakeapi.call(tag, float(sys.argv[3]))

def main(name, count):
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(ask, [f"{name}-{n}" for n in range(count)]))

print(len(main(sys.argv[1], int(sys.argv[2]))))
"""


def effects(path: Path) -> list[tuple[str, str, int, float]]:
    """The effect lines: (start|end, tag, pid, time)."""
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(kind, tag, int(pid), float(at)) for kind, tag, pid, at in rows]


def peak(path: Path) -> int:
    """The most calls in flight at once."""
    moves = sorted((at, 1 if kind == "start" else -1) for kind, _, _, at in effects(path))
    now = most = 0
    for _, move in sorted(moves, key=lambda m: (m[0], m[1])):
        now += move
        most = max(most, now)
    return most


def most_started_within(path: Path, seconds: float) -> int:
    """The most calls started in any window of `seconds`."""
    starts = sorted(at for kind, _, _, at in effects(path) if kind == "start")
    return max((sum(1 for s in starts if t <= s < t + seconds) for t in starts), default=0)


@pytest.fixture
def project(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A project folder with the API outside it; `configure(limits)` writes the
    limits into its pyproject.toml. Yields (folder, environment of its processes)."""
    lib, folder = tmp_path / "lib", tmp_path / "proj"
    lib.mkdir()
    folder.mkdir()
    write_script(lib, "fakeapi.py", FAKEAPI)
    write_script(folder, "app.py", APP)
    env = child_env(
        AUTODURABLE_DATABASE_URL=database_url,
        EFFECTS=str(tmp_path / "effects"),
        PYTHONPATH=os.pathsep.join([str(lib), child_env()["PYTHONPATH"]]),
    )
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("EFFECTS", env["EFFECTS"])
    yield folder, env
    for name in ("fakeapi", "steps_module"):
        sys.modules.pop(name, None)


def limits(folder: Path, table: str) -> None:
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "0"\n[tool.autodurable]\nio = ["fakeapi"]\n'
        "[tool.autodurable.limits]\n" + textwrap.dedent(table)
    )


def run_apps(folder: Path, env: dict[str, str], runs: list[list[str]]) -> None:
    """Start every ``autodurable run app.py ARGS`` at once; all must succeed."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "autodurable", "run", "app.py", *args],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err


def test_concurrency_holds_across_processes_for_steps_the_hook_inferred(project):
    folder, env = project
    limits(folder, '"fakeapi.*" = { concurrency = 2 }')
    run_apps(folder, env, [[f"p{n}", "6", "0.05"] for n in range(3)])
    log = Path(env["EFFECTS"])
    assert len([e for e in effects(log) if e[0] == "end"]) == 18
    assert len({pid for *_, pid, _ in effects(log)}) == 3  # three processes took part
    assert peak(log) == 2  # reached, never exceeded
    shown = run_command([sys.executable, "-m", "autodurable", "explain", "app.py"], cwd=folder,
                        env=env)  # fmt: skip
    assert "limits: fakeapi.* (concurrency 2)" in shown.stdout


def test_a_rate_holds_across_processes_and_the_waits_are_shown(project):
    folder, env = project
    limits(folder, '"fakeapi.call" = { rate = "5/s" }')
    run_apps(folder, env, [[f"p{n}", "5", "0"] for n in range(3)])
    log = Path(env["EFFECTS"])
    starts = sorted(at for kind, _, _, at in effects(log) if kind == "start")
    assert len(starts) == 15
    # 15 calls at 5 per second: the first 5 at once, then 5 more each second.
    assert starts[-1] - starts[0] >= 1.9
    # A call starts a little after its permit (never before): any window a little
    # shorter than the period holds at most the rate's count of starts.
    assert most_started_within(log, 0.9) <= 5
    listing = run_command(
        [sys.executable, "-m", "autodurable", "workflows", "list", "--json"], cwd=folder, env=env
    )
    ids = [w["workflow_id"] for w in json.loads(listing.stdout)["workflows"]]
    waited = []
    for workflow_id in ids:
        shown = run_command(
            [sys.executable, "-m", "autodurable", "workflows", "show", workflow_id, "--json"],
            cwd=folder,
            env=env,
        )
        document = json.loads(shown.stdout)
        assert {w["limit"] for w in document["limit_waits"]} == {"fakeapi.call"}
        assert len(document["limit_waits"]) == 5
        waited += [w["waited"] for w in document["limit_waits"]]
        text = run_command(
            [sys.executable, "-m", "autodurable", "workflows", "show", workflow_id],
            cwd=folder,
            env=env,
        ).stdout
        assert "fakeapi.call: 5 attempt(s) waited" in text
    assert max(waited) >= 1.5  # the last calls waited for the window, and it is recorded


def test_a_sigkilled_holder_does_not_block_the_others_and_its_run_resumes(project):
    folder, env = project
    limits(folder, '"fakeapi.*" = { concurrency = 1 }')
    log = Path(env["EFFECTS"])
    holder = subprocess.Popen(
        [sys.executable, "-m", "autodurable", "run", "app.py", "slow", "1", "60"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: any(e[0] == "start" for e in effects(log)), timeout=60)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # The dead process's permit is free at once on its host: the next run does not
        # wait for its lease.
        run_apps(folder, env, [["quick", "3", "0"]])
    finally:
        if holder.poll() is None:
            holder.kill()
    quick = [e for e in effects(log) if e[1].startswith("quick") and e[0] == "end"]
    assert len(quick) == 3
    # The same command again resumes the killed run: its interrupted call runs again
    # (it was never recorded), under the limit, and the run finishes.
    (folder / "quick").touch()
    run_apps(folder, env, [["slow", "1", "60"]])
    slow = [kind for kind, tag, _, _ in effects(log) if tag == "slow-0"]
    assert slow == ["start", "start", "end"]


def test_decorated_and_async_steps_are_limited_in_process(project, database):
    folder, _ = project
    limits(folder, '"fakeapi.*" = { concurrency = 1 }')
    write_script(
        folder,
        "steps_module.py",
        """
        import asyncio
        import autodurable
        import fakeapi

        @autodurable.step
        async def ask(tag):
            return await fakeapi.acall(tag)

        @autodurable.workflow
        async def fan(count):
            return await asyncio.gather(*[ask(f"a{n}") for n in range(count)])
        """,
    )
    autodurable.configure(database_url=database)  # reads the new pyproject.toml
    import steps_module

    assert asyncio.run(steps_module.fan(4)) == ["a0", "a1", "a2", "a3"]
    log = Path(os.environ["EFFECTS"])
    assert len(effects(log)) == 8 and peak(log) == 1


def test_an_abandoned_attempt_keeps_its_permit_until_its_thread_ends(project, database):
    folder, _ = project
    limits(folder, '"fakeapi.*" = { concurrency = 1 }')
    write_script(
        folder,
        "steps_module.py",
        """
        import autodurable
        import fakeapi

        @autodurable.step(timeout=0.1, retries=0)
        def slow(tag):
            return fakeapi.call(tag, 0.5)

        @autodurable.step
        def quick(tag):
            return fakeapi.call(tag, 0.0)

        @autodurable.workflow
        def job():
            try:
                slow("slow")
            except autodurable.StepTimeoutError:
                pass
            return quick("quick")
        """,
    )
    autodurable.configure(database_url=database)
    import steps_module

    assert steps_module.job() == "quick"
    log = Path(os.environ["EFFECTS"])
    ended = {tag: at for kind, tag, _, at in effects(log) if kind == "end"}
    started = {tag: at for kind, tag, _, at in effects(log) if kind == "start"}
    assert started["quick"] >= ended["slow"]  # it waited for the abandoned call to end


def test_units_count_against_the_rate(project, database):
    folder, _ = project
    limits(
        folder,
        '"fakeapi.*" = { rate = "10/2s", units = "steps_module:tokens" }',
    )
    write_script(
        folder,
        "steps_module.py",
        """
        import autodurable
        import fakeapi

        def tokens(tag, size):
            return size

        @autodurable.step
        def ask(tag, size):
            return fakeapi.call(tag, 0.0)

        @autodurable.workflow
        def job():
            return [ask("a", 6), ask("b", 4), ask("c", 6)]
        """,
    )
    autodurable.configure(database_url=database)
    import steps_module

    assert steps_module.job() == ["a", "b", "c"]
    starts = {
        tag: at for kind, tag, _, at in effects(Path(os.environ["EFFECTS"])) if kind == "start"
    }
    assert starts["b"] - starts["a"] < 1.0  # 6 + 4 fit in the window of 10
    assert starts["c"] - starts["a"] >= 1.9  # 6 more wait until "a" leaves the window


def test_a_key_that_matches_nothing_is_a_warning_naming_the_closest(project, database, caplog):
    folder, _ = project
    limits(folder, '"fakeapi.*" = { concurrency = 4 }\n"fakapi.call" = { rate = "1/s" }\n')
    write_script(
        folder,
        "steps_module.py",
        """
        import autodurable
        import fakeapi

        @autodurable.step
        def ask(tag):
            return fakeapi.call(tag, 0.0)

        @autodurable.workflow
        def job():
            return [ask("a"), ask("b")]
        """,
    )
    forget()
    autodurable.configure(database_url=database)
    import steps_module

    with caplog.at_level("WARNING", logger="autodurable"):
        assert steps_module.job() == ["a", "b"]
    (message,) = [r.getMessage() for r in caplog.records if "fakapi.call" in r.getMessage()]
    assert "matches no API" in message and "fakeapi" in message
    explained = run_command([sys.executable, "-m", "autodurable", "explain", "steps_module.py"],
                            cwd=folder, env=child_env())  # fmt: skip
    assert explained.returncode == 0 and "'fakapi.call'" in explained.stderr


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('"fakeapi.*" = { }', "needs concurrency = N, rate = 'COUNT/PERIOD', or both"),
        ('"fakeapi.*" = { rate = "often" }', "is not a rate"),
        ('"fakeapi.*" = { concurrency = 2, units = "m:f" }', "units count against a rate"),
        ('"fake api" = { concurrency = 2 }', "is not an API name"),
        ('"fakeapi.*" = { rate = "1/s", units = "tokens" }', "must name a function"),
    ],
)
def test_a_bad_limit_is_one_clear_line_and_nothing_runs(project, table, problem):
    folder, env = project
    limits(folder, table)
    done = run_command([sys.executable, "-m", "autodurable", "run", "app.py", "x", "1", "0"],
                       cwd=folder, env=env)  # fmt: skip
    assert done.returncode != 0
    assert problem in done.stderr and "Traceback" not in done.stderr
    assert not Path(env["EFFECTS"]).exists()
