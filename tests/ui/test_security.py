"""Acting through the dashboard, and who may: confirmation, CSRF, read-only mode,
tokens, the Host check, and the command's refusals."""

from __future__ import annotations

import re
import sys
import threading
import time

import pytest

from autodurable._cli._main import main
from autodurable._control import _operations as ops
from autodurable._core._runtime import get_runtime
from autodurable._errors import AutodurableError
from autodurable._store import CANCELLED, PENDING
from autodurable._ui._app import create_app
from autodurable._ui._options import UiOptions, check_binding, configured_redaction, token_from

from ._flows import breaks, greet, in_thread, run, waits

pytestmark = pytest.mark.usefixtures("database")


def status(workflow_id: str) -> str:
    record = get_runtime().store.get_workflow(workflow_id)
    assert record is not None
    return record.status


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.fixture
def waiting():
    """Start `waits` workflows on threads (returned once each waits in recv); cancelled and
    joined at the end of the test."""
    started: list[tuple[str, threading.Thread]] = []

    def start(workflow_id: str) -> threading.Thread:
        thread = in_thread(waits, workflow_id, 1)
        started.append((workflow_id, thread))
        store = get_runtime().store
        deadline = time.monotonic() + 20
        while not any(s.status == "waiting" for s in store.list_steps(workflow_id)):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return thread

    yield start
    for workflow_id, thread in started:
        ops.cancel(workflow_id)
        thread.join(20)


def test_cancel_needs_a_confirmed_post(client, waiting):
    thread = waiting("w")
    assert client.get("/act/cancel?id=w").status_code == 405  # never a GET
    confirm = client.get("/confirm/cancel?id=w")
    assert confirm.status_code == 200 and 'method="post"' in confirm.text
    assert status("w") == PENDING  # showing the confirmation changes nothing
    refused = client.post("/act/cancel", data={"id": "w"})
    assert refused.status_code == 403 and status("w") == PENDING
    forged = client.post("/act/cancel", data={"id": "w", "csrf": "guess"})
    assert forged.status_code == 403 and status("w") == PENDING
    token = csrf_of(confirm.text)
    elsewhere = client.post(
        "/act/cancel", data={"id": "w", "csrf": token}, headers={"origin": "http://evil.example"}
    )
    assert elsewhere.status_code == 403 and status("w") == PENDING
    done = client.post(
        "/act/cancel", data={"id": "w", "csrf": token, "reason": "no more"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/workflow?id=w&done=cancelled"
    assert status("w") == CANCELLED
    thread.join(10)
    assert "Cancelled." in client.get(done.headers["location"]).text


def test_resume_fork_and_send_go_through_the_operations(client, waiting):
    run(breaks, "b", 1)
    token = csrf_of(client.get("/confirm/resume?id=b").text)
    resumed = client.post("/act/resume", data={"id": "b", "csrf": token}, follow_redirects=False)
    assert resumed.status_code == 303 and status("b") == PENDING
    again = client.post("/act/resume", data={"id": "b", "csrf": token})
    assert again.status_code == 409 and "pending already" in again.text  # the API's refusal
    run(greet, "g", 1, "a")
    forked = client.post(
        "/act/fork",
        data={"id": "g", "csrf": token, "step": "3", "new_id": "g2"},
        follow_redirects=False,
    )
    assert forked.headers["location"] == "/workflow?id=g2&done=forked"
    record = get_runtime().store.get_workflow("g2")
    assert record.forked_from == "g" and record.forked_at_step == 3
    page = client.get("/workflow?id=g2").text
    assert "Forked from" in page and "copied</span>" in page
    assert "Fork <a" in client.get("/workflow?id=g").text
    bad_step = client.post("/act/fork", data={"id": "g", "csrf": token, "step": "99"})
    assert bad_step.status_code == 409 and "--from-step takes" in bad_step.text
    thread = waiting("inbox")
    bad_json = client.post("/act/send", data={"id": "inbox", "csrf": token, "message": "{no"})
    assert bad_json.status_code == 409 and "not valid JSON" in bad_json.text
    sent = client.post(
        "/act/send",
        data={"id": "inbox", "csrf": token, "topic": "go", "message": '{"ok": true}'},
        follow_redirects=False,
    )
    assert sent.headers["location"] == "/workflow?id=inbox&done=sent"
    thread.join(20)
    assert get_runtime().store.get_workflow("inbox").output == '{"ok":true}'


def test_read_only_offers_and_accepts_no_action(client_for, waiting):
    waiting("w")
    token = csrf_of(client_for().get("/confirm/cancel?id=w").text)
    client = client_for(read_only=True)
    page = client.get("/workflow?id=w").text
    assert "/confirm/" not in page and "read-only" in page
    assert client.get("/confirm/cancel?id=w").status_code == 403
    assert client.post("/act/cancel", data={"id": "w", "csrf": token}).status_code == 403
    assert status("w") == PENDING


def test_a_token_is_required_on_every_request(client_for):
    run(greet, "secret-workflow", 1, "a")
    client = client_for(token="s3cret-token")
    for path in ("/", "/workflow?id=secret-workflow", "/static/app.css", "/?token=wrong"):
        denied = client.get(path, follow_redirects=False)
        assert denied.status_code == 401 and "secret-workflow" not in denied.text, path
    first = client.get("/workflow?id=secret-workflow&token=s3cret-token", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/workflow?id=secret-workflow"  # the token leaves the URL
    assert "HttpOnly" in first.headers["set-cookie"] and "s3cret" not in first.headers["set-cookie"]
    assert client.get("/workflow?id=secret-workflow").status_code == 200  # by the cookie
    bearer = client_for(token="s3cret-token")
    headers = {"authorization": "Bearer s3cret-token"}
    assert bearer.get("/", headers=headers).status_code == 200
    assert bearer.get("/", headers={"authorization": "Bearer nope"}).status_code == 401


def test_loopback_dashboards_answer_to_loopback_names_only(client):
    assert client.get("/", headers={"host": "localhost:8080"}).status_code == 200
    rebound = client.get("/", headers={"host": "attacker.example:8080"})
    assert rebound.status_code == 403


def test_beyond_loopback_a_token_is_required(monkeypatch, capsys):
    with pytest.raises(AutodurableError, match="give a token with --token or AUTODURABLE_UI"):
        check_binding("0.0.0.0", None)
    check_binding("::1", None)
    check_binding("localhost", None)
    check_binding("0.0.0.0", "t0ken")
    monkeypatch.delenv("AUTODURABLE_UI_TOKEN", raising=False)
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    assert "beyond this machine" in capsys.readouterr().err
    monkeypatch.setenv("AUTODURABLE_UI_TOKEN", "from-env")
    assert token_from(None) == "from-env"
    with pytest.raises(AutodurableError, match="token is empty"):
        check_binding("0.0.0.0", " ")


def test_without_starlette_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "starlette", None)
    monkeypatch.setitem(sys.modules, "starlette.applications", None)
    with pytest.raises(AutodurableError, match=r"pip install 'autodurable\[ui\]'"):
        create_app(UiOptions())


def test_redaction_can_be_configured_in_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.autodurable.ui]\nredact = ["secret", "*key"]\n')
    assert configured_redaction(tmp_path) == ("secret", "*key")
    (tmp_path / "pyproject.toml").write_text("[tool.autodurable.ui]\nredact = 3\n")
    with pytest.raises(AutodurableError, match="must be a list of field names"):
        configured_redaction(tmp_path)


def test_the_command_refuses_to_create_a_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'nothing-here.db'}"
    assert main(["ui", "--database-url", url]) == 1
    assert "no state database" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here.db").exists()


def test_the_command_serves_the_dashboard(database, tmp_path):
    import subprocess

    import httpx

    from ..helpers import child_env
    from .conftest import free_port

    run(greet, "served-by-the-command", 1, "a")
    port = free_port()
    command = [sys.executable, "-m", "autodurable", "ui", "--port", str(port), "--read-only",
               "--token", "t0ken", "--redact", "password"]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=tmp_path, env=child_env(AUTODURABLE_DATABASE_URL=database),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.communicate()
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/",
                                 headers={"authorization": "Bearer t0ken"})  # fmt: skip
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.05)
        assert page.status_code == 200 and "served-by-the-command" in page.text
        assert "read-only" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 401
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in err
