"""HTTP requests recorded at the client's transport in workflow code (`_boundary_http`).

Each boundary (httpx sync and async, streaming; urllib3 and requests): the
first run records, a resumed run answers from the record with no request
reaching the service, a changed request is a `NondeterminismError` naming both,
and calls outside workflows (and inside steps) are the library's own. Workflow
semantics: every test runs on each store (the `database` fixture).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import urllib3

import autodurable
from autodurable._core import _boundary_http
from autodurable._core._config import BoundarySettings, load_settings
from autodurable._errors import ConfigError, NondeterminismError
from autodurable._hook._child import DEFAULT_BOUNDARIES

from ..helpers import Crash, crash_points, maybe_crash, run_workflow
from ._server import Service


def _twice(flow: Any, workflow_id: str, *args: Any) -> tuple[Any, Any]:
    """Run `flow` until its crash point, then resume it: (first run's value, resumed)."""
    crash_points.add(workflow_id)
    with pytest.raises(Crash):
        run_workflow(flow, workflow_id, *args)
    first = _last_value.pop()
    return first, run_workflow(flow, workflow_id, *args)


_last_value: list[Any] = []


def _crash_here(workflow_id: str, value: Any) -> Any:
    """Keep what the run computed so far, and crash there when the test armed it."""
    _last_value.append(value)
    maybe_crash(workflow_id)
    return value


@autodurable.workflow
def httpx_flow(base: str, text: str) -> Any:
    with httpx.Client() as client:
        posted = client.post(f"{base}/v1/chat?api_key=SECRET", content=text)
        got = httpx.get(f"{base}/gzip")
        found: tuple[Any, ...] = (
            posted.json(),
            posted.status_code,
            posted.headers["set-cookie"],
            got.json(),
        )
        found += (posted.http_version, posted.reason_phrase, str(posted.url))
    return _crash_here("httpx", found)


pytestmark = pytest.mark.usefixtures("database", "boundaries")


def test_httpx_records_and_a_resumed_run_sends_nothing(service: Service, database: str) -> None:
    first, resumed = _twice(httpx_flow, "httpx", service.url, "hello")
    assert len(service.seen) == 2
    assert resumed == first
    assert first[0]["body"] == "hello" and first[3]["path"] == "/gzip"  # decoded as before
    steps = autodurable.get_workflow("httpx").steps()
    port = service.url.rsplit(":", 1)[1]
    assert [step.name for step in steps] == [
        f"http POST 127.0.0.1:{port}/v1/chat",
        f"http GET 127.0.0.1:{port}/gzip",
    ]
    if database.startswith("sqlite"):  # the query's secret is not kept in plain text
        path = database.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            kept = " ".join(str(row) for row in db.execute("SELECT * FROM steps"))
        assert "SECRET" not in kept and "/v1/chat?..." in kept


@autodurable.workflow
async def async_flow(base: str, text: str) -> Any:
    async with httpx.AsyncClient() as client:
        one, two = await asyncio.gather(
            client.post(f"{base}/one", content=text), client.post(f"{base}/two", content=text)
        )
        async with client.stream("GET", f"{base}/sse") as response:
            lines = [line async for line in response.aiter_lines()]
    return _crash_here("async", (one.json(), two.json(), lines))


def test_httpx_async_and_streaming_replay_from_the_record(service: Service) -> None:
    crash_points.add("async")
    with pytest.raises(Crash):
        asyncio.run(run_workflow(async_flow, "async", service.url, "hi"))
    first = _last_value.pop()
    resumed = asyncio.run(run_workflow(async_flow, "async", service.url, "hi"))
    assert resumed == first and len(service.seen) == 3
    assert first[2] == [
        "data: event 0 of 3",
        "",
        "data: event 1 of 3",
        "",
        "data: event 2 of 3",
        "",
    ]


@autodurable.workflow
def streaming_flow(base: str) -> Any:
    with httpx.Client() as client, client.stream("POST", f"{base}/sse", content=b"q") as response:
        chunks = list(response.iter_bytes(chunk_size=7))
    return _crash_here("stream", (b"".join(chunks), len(chunks) > 1))


def test_a_streamed_response_is_recorded_whole_and_replayed_as_a_stream(service: Service) -> None:
    first, resumed = _twice(streaming_flow, "stream", service.url)
    assert resumed == first and first[1] is True and len(service.seen) == 1
    assert first[0].startswith(b"data: event 0 of 1\n\n")


@autodurable.workflow
def requests_flow(base: str, text: str) -> Any:
    with requests.Session() as session:
        posted = session.post(f"{base}/orders", data=text.encode(), timeout=10)
        again = session.get(f"{base}/gzip", timeout=10)
        lines = list(posted.iter_lines())
        found: tuple[Any, ...] = (
            posted.json(),
            again.json(),
            dict(session.cookies),
            lines,
            posted.reason,
        )
    with urllib3.PoolManager() as pool:
        raw = pool.request("PUT", f"{base}/raw", body=b"x")
        found += (json.loads(raw.data), raw.status, raw.headers["content-type"])
    return _crash_here("requests", found)


def test_requests_and_urllib3_record_at_the_pool(service: Service) -> None:
    first, resumed = _twice(requests_flow, "requests", service.url, "order 1")
    assert resumed == first and len(service.seen) == 3
    assert first[3] == [json.dumps(first[0]).encode()]
    assert first[2] == {"visit": "2"}  # the cookie jar is filled from a rebuilt response too
    assert first[1]["path"] == "/gzip" and first[6] == 200


# What the workflows read without recording it: changed between a crash and the
# resume, it changes the request they send.
prompt = ["the first prompt"]


@autodurable.workflow
def changing_flow(base: str) -> Any:
    posted = httpx.post(f"{base}/v1/chat", content=prompt[0]).json()
    return _crash_here("changing", posted)


def test_a_changed_request_body_is_nondeterminism_naming_both(service: Service) -> None:
    crash_points.add("changing")
    prompt[0] = "the first prompt"
    with pytest.raises(Crash):
        run_workflow(changing_flow, "changing", service.url)
    prompt[0] = "another prompt!"
    with pytest.raises(NondeterminismError) as caught:
        run_workflow(changing_flow, "changing", service.url)
    message = str(caught.value)
    assert "with a body of 16 bytes" in message and "with a body of 15 bytes" in message
    assert "/v1/chat" in message and caught.value.arguments is not None
    assert len(service.seen) == 1


@autodurable.workflow
def moving_flow(base: str) -> Any:
    return _crash_here("moving", httpx.get(f"{base}{prompt[0]}").json())


def test_a_changed_url_is_nondeterminism_naming_both(service: Service) -> None:
    crash_points.add("moving")
    prompt[0] = "/a"
    with pytest.raises(Crash):
        run_workflow(moving_flow, "moving", service.url)
    prompt[0] = "/b"
    both = r"http GET 127\.0\.0\.1:\d+/a.*http GET 127\.0\.0\.1:\d+/b"
    with pytest.raises(NondeterminismError, match=both):
        run_workflow(moving_flow, "moving", service.url)


@autodurable.step
def fetch_in_a_step(base: str) -> Any:
    response = httpx.get(f"{base}/in-step")
    return type(response.stream).__name__, response.json()["n"]


@autodurable.workflow
def step_flow(base: str) -> Any:
    return fetch_in_a_step(base)


def test_calls_outside_workflows_and_inside_steps_are_untouched(service: Service) -> None:
    response = httpx.get(f"{service.url}/plain")
    assert type(response.stream).__name__ == "BoundSyncStream"  # the network's own stream
    assert run_workflow(step_flow, "step", service.url) == ("BoundSyncStream", 2)
    assert [step.name for step in autodurable.get_workflow("step").steps()] == ["fetch_in_a_step"]
    with requests.get(f"{service.url}/plain", timeout=10) as plain:
        assert plain.raw._original_response is not None and plain.raw._fp is not None
    assert len(service.seen) == 3


def test_uninstalled_boundaries_record_nothing(service: Service) -> None:
    _boundary_http.uninstall()
    assert _boundary_http.installed() == frozenset()
    prompt[0] = "/x"
    assert run_workflow(moving_flow, "plain", service.url)["n"] == 1
    assert autodurable.get_workflow("plain").steps() == []


def test_configuration_names_the_boundaries(tmp_path: Path) -> None:
    assert BoundarySettings().names() == DEFAULT_BOUNDARIES == tuple(_boundary_http.LIBRARIES)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.autodurable.boundaries]\nhttpx = false\n")
    assert load_settings(cwd=tmp_path).http_boundaries(launched=True) == ("urllib3", "aiohttp")
    assert load_settings(cwd=tmp_path).http_boundaries(launched=False) == ()
    pyproject.write_text("[tool.autodurable.boundaries]\nrequests = false\n")
    with pytest.raises(ConfigError, match=r"unknown boundary 'requests'.*httpx, urllib3, aiohttp"):
        load_settings(cwd=tmp_path)
    pyproject.write_text("[tool.autodurable]\n")
    _boundary_http.uninstall()
    autodurable.configure(record_http=True)
    assert _boundary_http.installed() == {"httpx", "urllib3", "aiohttp"}
    autodurable.configure(record_http=False)
    assert _boundary_http.installed() == frozenset()
