"""``autodurable run`` installs the middleware on framework applications by itself.

Checked in child processes (the patches are process-wide): light until a key
arrives, untouched without the header, off with ``AUTODURABLE_IDEMPOTENCY=off``,
and only the outermost of nested applications acts.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from ..helpers import child_env, run_command

FLASK_CHILD = """
import sys
from flask import Flask

calls = []
app = Flask("shop")

@app.get("/")
def index():
    calls.append(1)
    return "call %d" % len(calls)

client = app.test_client()
plain = [client.get("/").get_data(as_text=True) for _ in range(2)]
print(plain, "autodurable._core._runtime" in sys.modules)
keyed = [client.get("/", headers={"Idempotency-Key": "k"}) for _ in range(2)]
print([r.get_data(as_text=True) for r in keyed], keyed[1].headers.get("Idempotent-Replayed"))
"""

STARLETTE_CHILD = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

calls = []

async def index(request):
    calls.append(1)
    return PlainTextResponse("call %d" % len(calls))

inner = Starlette(routes=[Route("/", index)])
outer = Starlette(routes=[Mount("/shop", app=inner)])
with TestClient(outer) as client:
    answers = [client.get("/shop/", headers={"Idempotency-Key": "k"}) for _ in range(2)]
print([a.text for a in answers], answers[1].headers.get("idempotent-replayed"))
from autodurable._core._runtime import get_runtime
print([w.workflow_id for w in get_runtime().store.list_workflows(limit=5)])
"""


def run_child(tmp_path: Path, source: str, **env: str) -> list[str]:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(source))
    extra = {"AUTODURABLE_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}", **env}
    done = run_command(
        [sys.executable, "-m", "autodurable", "run", "-q", "--", sys.executable, str(script)],
        cwd=tmp_path,
        env=child_env(**extra),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout.splitlines()


def test_flask_is_light_until_a_key_arrives_and_replays_keyed_requests(tmp_path: Path) -> None:
    plain, keyed = run_child(tmp_path, FLASK_CHILD)
    assert plain == "['call 1', 'call 2'] False"
    assert keyed == "['call 3', 'call 3'] true"


def test_the_switch_turns_the_automatic_installation_off(tmp_path: Path) -> None:
    plain, keyed = run_child(tmp_path, FLASK_CHILD, AUTODURABLE_IDEMPOTENCY="off")
    assert plain == "['call 1', 'call 2'] False"
    assert keyed == "['call 3', 'call 4'] None"


def test_only_the_outermost_application_acts(tmp_path: Path) -> None:
    answers, workflows = run_child(tmp_path, STARLETTE_CHILD)
    assert answers == "['call 1', 'call 1'] true"
    assert workflows == "['http:k']"
