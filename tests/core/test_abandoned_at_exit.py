"""A sync step attempt abandoned by its timeout is not cut off by the process's exit.

The attempt runs on a helper thread that cannot be killed; the interpreter kills
daemon threads when it exits, so an attempt in the middle of its effect would be
cut off half done. The process waits for it (bounded) and says so.
"""

from __future__ import annotations

from pathlib import Path

from ..helpers import child_env, run_python, write_script

SCRIPT = """
import sys, time
import autodurable

effects = sys.argv[1]

@autodurable.step(timeout=0.2, retries=0)
def slow_effect():
    with open(effects, "a") as fh:
        fh.write("begin\\n")
    time.sleep(float(sys.argv[2]))  # the middle of the effect
    with open(effects, "a") as fh:
        fh.write("end\\n")

@autodurable.workflow
def job():
    try:
        slow_effect()
    except autodurable.StepTimeoutError:
        return "timed out"

print(autodurable.options(job, workflow_id="abandoning")())
"""


def test_an_abandoned_attempt_ends_its_effect_before_the_process_exits(
    tmp_path: Path, database_url: str
) -> None:
    script = write_script(tmp_path, "abandons.py", SCRIPT)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    done = run_python(script, str(effects), "0.8", env=env)
    assert done.returncode == 0 and done.stdout == "timed out\n", done.stderr
    assert effects.read_text().splitlines() == ["begin", "end"]
    assert done.stderr.splitlines() == [
        "autodurable: waiting up to 1s for the abandoned attempt of step 'slow_effect' "
        "(it timed out and still runs) to end before exiting"
    ]


def test_an_attempt_that_outlasts_the_bound_is_cut_off_and_said_so(
    tmp_path: Path, database_url: str
) -> None:
    script = write_script(tmp_path, "abandons.py", SCRIPT)
    effects = tmp_path / "effects"
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)
    done = run_python(script, str(effects), "30", env=env)
    assert done.returncode == 0 and done.stdout == "timed out\n", done.stderr
    assert effects.read_text().splitlines() == ["begin"]
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and "waiting up to 1s" in lines[0]
    assert "'slow_effect' is cut off at exit" in lines[1]
    assert "any retry of the step runs under the same idempotency key" in lines[1]
