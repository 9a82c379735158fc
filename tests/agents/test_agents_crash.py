"""Agents run unmodified under `autodurable run`, killed with SIGKILL, resumed.

The examples in examples/agents (a pydantic-ai agent and an OpenAI Agents SDK
agent, each making five model calls and three tool calls) run against the fake
chat-completions server, which logs every request. Killed after a random number
of model requests and run again with the same command, each must give the
uncrashed answer with no model request repeated (but the one in flight at the
kill) and no note written twice; a changed prompt on the resume is a
nondeterminism error naming both requests. Both stores (`database_url`).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers import ROOT, child_env, serving

EXAMPLES = ROOT / "examples" / "agents"
ANSWER = (
    "Final answer: 2 notes: apples, pears | Summary e5cc1505: Final answer: 2 notes: apples, pears"
)
UNCRASHED_REQUESTS = 5  # what an uncrashed run sends (see test_an_uncrashed_run)
AGENTS = ["pydantic_agent.py", "openai_agent.py"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("fake_llm.py", "notes.py", *AGENTS):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "pyproject.toml").write_text('[project]\nname = "agents-demo"\nversion = "0"\n')
    return folder


@pytest.fixture
def llm(project: Path) -> Iterator[str]:
    log = project / "requests.jsonl"
    command = [sys.executable, "fake_llm.py", str(log), "--delay", "0.1"]
    server = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True)
    with serving(server) as url:
        yield f"{url}/v1"


def _requests(project: Path) -> int:
    log = project / "requests.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _agent(project: Path, database_url: str, script: str, url: str, *extra: str, **env: str):
    command = [sys.executable, "-m", "autodurable", "run", script, url, *extra]
    environment = child_env(AUTODURABLE_DATABASE_URL=database_url, AGENT_NOTES="notes.txt", **env)
    return subprocess.Popen(
        command, cwd=project, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out.strip().splitlines()[-1]


def _kill_after(process: subprocess.Popen[str], project: Path, requests: int) -> None:
    deadline = time.monotonic() + 60
    while _requests(project) < requests and process.poll() is None:
        assert time.monotonic() < deadline, "the agent never got that far"
        time.sleep(0.005)
    assert process.poll() is None, process.communicate()[1]  # alive until the kill
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def test_an_uncrashed_run_makes_five_model_calls(project: Path, llm: str) -> None:
    plain = subprocess.run(
        [sys.executable, "openai_agent.py", llm], cwd=project, env=child_env(),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert plain.stdout.strip() == ANSWER
    assert _requests(project) == UNCRASHED_REQUESTS
    assert (project / "notes.txt").read_text() == "apples\npears\n"


@pytest.mark.parametrize(
    ("script", "stream"),
    [
        ("openai_agent.py", ()),
        ("openai_agent.py", ("--stream",)),  # streamed completions (SSE) recorded, replayed
        ("pydantic_agent.py", ()),
        ("pydantic_agent.py", ("--stream",)),
    ],
)
def test_an_agent_killed_at_random_resumes_without_repeating_anything(
    project: Path, llm: str, database_url: str, script: str, stream: tuple[str, ...]
) -> None:
    kill_after = random.Random(os.getpid()).randint(1, UNCRASHED_REQUESTS - 1)
    _kill_after(_agent(project, database_url, script, llm, *stream), project, kill_after)
    before = _requests(project)
    assert _finish(_agent(project, database_url, script, llm, *stream)) == ANSWER
    assert _requests(project) <= UNCRASHED_REQUESTS + 1, f"killed after {kill_after}"
    assert _requests(project) >= before
    assert (project / "notes.txt").read_text() == "apples\npears\n"


def test_a_changed_prompt_on_resume_is_nondeterminism(
    project: Path, llm: str, database_url: str
) -> None:
    _kill_after(_agent(project, database_url, "openai_agent.py", llm), project, 2)
    resumed = _agent(project, database_url, "openai_agent.py", llm, AGENT_PROMPT="Note plums.")
    _out, err = resumed.communicate(timeout=60)
    assert resumed.returncode != 0
    assert "the recorded history has step" in err, err
    assert "http POST 127.0.0.1" in err and "/v1/chat/completions with a body of" in err
