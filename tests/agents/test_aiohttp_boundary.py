"""aiohttp's requests recorded in workflow code by the innermost client middleware
(`_boundary_http._aiohttp`).

The first run records and hands out rebuilt responses, a resumed run answers
from the record with no request reaching the service (cookies, redirects and
``raise_for_status`` working above, on recorded answers), a changed request is
a `NondeterminismError` naming both, and what is not an exchange (a WebSocket,
calls outside workflows and inside steps) is aiohttp's own. Workflow semantics:
every test runs on each store (the `database` fixture).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import autodurable
from autodurable._errors import NondeterminismError

from ..helpers import (
    Crash,
    child_env,
    crash_points,
    maybe_crash,
    run_command,
    run_workflow,
    wait_until,
    write_script,
)
from ._server import Service

pytestmark = pytest.mark.usefixtures("database", "boundaries")


def _run(flow: Any, workflow_id: str, *args: Any) -> Any:
    return asyncio.run(run_workflow(flow, workflow_id, *args))


_seen: list[Any] = []  # what the last run computed before its crash point


def _crash_here(workflow_id: str, value: Any) -> Any:
    _seen.append(value)
    maybe_crash(workflow_id)
    return value


def _twice(flow: Any, workflow_id: str, *args: Any) -> tuple[Any, Any]:
    """Run `flow` to its crash point, then resume it: (the first run's value, resumed)."""
    crash_points.add(workflow_id)
    with pytest.raises(Crash):
        _run(flow, workflow_id, *args)
    return _seen.pop(), _run(flow, workflow_id, *args)


@autodurable.workflow
async def session_flow(base: str) -> Any:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies from 127.0.0.1 too
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.post(f"{base}/v1/chat?api_key=SECRET", json={"q": 1}) as posted:
            found: tuple[Any, ...] = (
                await posted.json(),
                posted.status,
                posted.reason,
                posted.headers.getall("Set-Cookie"),
                str(posted.url),
                tuple(posted.version),
            )
        async with session.get(f"{base}/gzip") as got:
            found += (await got.json(), got.headers["Content-Encoding"])
        async with session.get(f"{base}/sse") as events:
            found += ([line async for line in events.content],)
        async with session.get(f"{base}/redirect") as moved:
            found += (str(moved.url), [r.status for r in moved.history], await moved.json())
        try:
            await session.get(f"{base}/missing", raise_for_status=True)
        except aiohttp.ClientResponseError as exc:
            found += (exc.status,)
        found += (sorted((c.key, c.value) for c in session.cookie_jar),)
    async with aiohttp.request("PUT", f"{base}/raw", data=b"x") as raw:
        found += (await raw.text(), _read_from(raw))
    return _crash_here("session", found)


def test_aiohttp_records_and_a_resumed_run_sends_nothing(service: Service) -> None:
    first, resumed = _twice(session_flow, "session", service.url)
    assert len(service.seen) == 7  # a redirect is two requests
    assert resumed == first
    assert first[0]["body"] == '{"q": 1}' and first[1:3] == (200, "OK")
    assert first[3] == ["visit=1"] and first[4].endswith("/v1/chat?api_key=SECRET")
    assert first[6] == {"method": "GET", "path": "/gzip", "body": "", "n": 2}  # decompressed
    assert first[8][0] == b"data: event 0 of 3\n" and len(first[8]) == 6
    assert first[9].endswith("/landed") and first[10] == [302] and first[11]["n"] == 5
    assert first[12] == 404 and first[15] == "_RecordedProtocol"
    assert first[13] == [("visit", "1"), ("visit", "6")]  # /v1 and /: from rebuilt responses
    port = service.url.rsplit(":", 1)[1]
    names = [step.name for step in autodurable.get_workflow("session").steps()]
    assert names == [
        f"http POST 127.0.0.1:{port}/v1/chat",
        f"http GET 127.0.0.1:{port}/gzip",
        f"http GET 127.0.0.1:{port}/sse",
        f"http GET 127.0.0.1:{port}/redirect",
        f"http GET 127.0.0.1:{port}/landed",
        f"http GET 127.0.0.1:{port}/missing",
        f"http PUT 127.0.0.1:{port}/raw",
    ]


prompt = ["the first prompt"]  # read without recording: changed between run and resume


@autodurable.workflow
async def changing_flow(base: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/v1/chat", json={"prompt": prompt[0]}) as posted,
    ):
        return _crash_here("changing", await posted.json())


def test_a_changed_request_body_is_nondeterminism_naming_both(service: Service) -> None:
    crash_points.add("changing")
    prompt[0] = "the first prompt"
    with pytest.raises(Crash):
        _run(changing_flow, "changing", service.url)
    prompt[0] = "another prompt!"
    with pytest.raises(NondeterminismError) as caught:
        _run(changing_flow, "changing", service.url)
    message = str(caught.value)
    assert "with a body of 30 bytes" in message and "with a body of 29 bytes" in message
    assert "/v1/chat" in message and len(service.seen) == 1


def _read_from(response: aiohttp.ClientResponse) -> str:
    """The kind of protocol `response` was started from: a socket's, or a record's."""
    return type(response._protocol).__name__


@autodurable.step
async def fetch_in_a_step(base: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/in-step") as got:
        return _read_from(got), (await got.json())["n"]


@autodurable.workflow
async def step_flow(base: str) -> Any:
    return await fetch_in_a_step(base)


def test_calls_outside_workflows_and_inside_steps_are_untouched(service: Service) -> None:
    async def plain() -> Any:
        async with aiohttp.ClientSession() as session, session.get(f"{service.url}/a") as got:
            return _read_from(got)

    assert asyncio.run(plain()) == "ResponseHandler"  # aiohttp's protocol, on a socket
    assert _run(step_flow, "step", service.url) == ("ResponseHandler", 2)
    assert [step.name for step in autodurable.get_workflow("step").steps()] == ["fetch_in_a_step"]


@asynccontextmanager
async def echo_socket() -> AsyncIterator[str]:
    """A local WebSocket echo server (aiohttp's own) for the block: its URL."""

    async def echo(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str(f"echo {message.data}")
        return socket

    app = web.Application()
    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/ws"
    finally:
        await runner.cleanup()


@autodurable.workflow
async def socket_flow() -> Any:
    async with (
        echo_socket() as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(url) as socket,
    ):
        await socket.send_str("hi")
        return (await socket.receive()).data


def test_a_websocket_is_a_connection_not_a_recorded_exchange() -> None:
    assert _run(socket_flow, "socket") == "echo hi"
    assert autodurable.get_workflow("socket").steps() == []


SDK = """
import aiohttp

async def ask(base, question):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/slow/chat", json={"q": question}) as answer:
            return (await answer.json())["n"]
"""

APP = """
import asyncio, sys
import chatsdk

async def main(base):
    answers = [await chatsdk.ask(base, f"q{i}") for i in range(4)]
    print(answers)

asyncio.run(main(sys.argv[1]))
"""


def test_a_program_under_the_launcher_killed_mid_request_resumes_sending_each_once(
    tmp_path: Path, service: Service, database: str
) -> None:
    """An SDK outside the project (never rewritten) posts with aiohttp; the program
    runs unmodified under `autodurable run`, is SIGKILLed during its third request,
    and the same command finishes it, sending only the request in flight again."""
    project, library = tmp_path / "project", tmp_path / "library"
    project.mkdir()
    library.mkdir()
    write_script(library, "chatsdk.py", SDK)
    write_script(project, "app.py", APP)
    (project / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\n')
    env = child_env(AUTODURABLE_DATABASE_URL=database)
    env["PYTHONPATH"] = os.pathsep.join([str(library), env["PYTHONPATH"]])
    command = [sys.executable, "-m", "autodurable", "run", "app.py", service.url]
    child = subprocess.Popen(command, cwd=project, env=env, text=True, stderr=subprocess.PIPE)
    wait_until(lambda: len(service.seen) == 3 or child.poll() is not None, timeout=60)
    assert child.poll() is None, child.communicate()[1]  # alive, its third request in flight
    child.kill()
    child.communicate(timeout=30)
    resumed = run_command(command, cwd=project, env=env)
    assert resumed.returncode == 0, resumed.stderr
    # The service numbers the requests it answers: 1 and 2 from the record, then the
    # third sent again (the service's 4th) and the fourth.
    assert resumed.stdout.strip() == "[1, 2, 4, 5]"
    questions = [json.loads(body)["q"] for _method, _path, body in service.seen]
    assert questions == ["q0", "q1", "q2", "q2", "q3"]  # only the one in flight again
