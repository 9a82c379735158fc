"""Ctrl-C and SIGTERM: workflows are left pending, the process says so on stderr, and
it exits without running the rest of a background workflow first."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from autodurable._store import PENDING, SUCCEEDED, open_store

from ..helpers import child_env, run_python, wait_until, write_script

BACKGROUND = """
import os, signal, sys, time
import autodurable

effects = sys.argv[1]
# Ctrl-C as in a terminal, even when this test runs under something that ignores
# SIGINT (GNU time, a background job): an ignored SIGINT is inherited.
signal.signal(signal.SIGINT, signal.default_int_handler)

@autodurable.step
def slow(i):
    time.sleep(0.3)
    with open(effects, "a") as fh:
        fh.write(f"{i}\\n")
    return i

@autodurable.workflow
def job():
    return sum(slow(i) for i in range(20))

handle = autodurable.start(autodurable.options(job, workflow_id="bg"))
if len(sys.argv) > 2:
    print("total", handle.result())
    sys.exit(0)
time.sleep(0.8)
os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
time.sleep(30)
"""

FOREGROUND = """
import signal, sys, time
import autodurable

effects = sys.argv[1]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a common handler

@autodurable.step
def slow(i):
    time.sleep(0.2)
    with open(effects, "a") as fh:
        fh.write(f"{i}\\n")
    return i

@autodurable.workflow
def job():
    return sum(slow(i) for i in range(10))

print("ready", flush=True)
print("total", autodurable.options(job, workflow_id="fg")(), flush=True)
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_ctrl_c_leaves_background_workflows_pending_and_says_so(tmp_path, database_url):
    script = write_script(tmp_path, "bg.py", BACKGROUND)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    started = time.monotonic()
    done = run_python(script, str(effects), env=env)
    assert time.monotonic() - started < 15  # not the 6 s of the remaining steps and more
    assert done.returncode != 0  # KeyboardInterrupt
    assert "autodurable: workflow bg stopped after" in done.stderr
    assert "interrupted (Ctrl-C)" in done.stderr or "the process is exiting" in done.stderr
    ran = _lines(effects)
    assert 1 <= len(ran) < 20
    store = open_store(database_url)
    record = store.get_workflow("bg")
    assert record is not None and record.status == PENDING and record.executor_id is None
    store.close()
    resumed = run_python(script, str(effects), "wait", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == f"total {sum(range(20))}"
    finished = _lines(effects)
    assert sorted(set(finished)) == sorted(str(i) for i in range(20))
    assert len(finished) - len(set(finished)) <= 1  # at most the step cut off by the exit


def test_sigterm_with_sys_exit_leaves_the_workflow_pending_and_says_so(tmp_path, database_url):
    script = write_script(tmp_path, "fg.py", FOREGROUND)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    child = subprocess.Popen(
        [sys.executable, str(script), str(effects)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until(lambda: len(_lines(effects)) >= 2)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0  # the program's own choice
    assert "total" not in out
    assert "autodurable: workflow fg stopped after" in err
    assert "the program exits (SystemExit)" in err and "left pending" in err
    store = open_store(database_url)
    assert store.get_workflow("fg").status == PENDING
    store.close()
    again = run_python(script, str(effects), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"total {sum(range(10))}"
    store = open_store(database_url)
    assert store.get_workflow("fg").status == SUCCEEDED
    store.close()
