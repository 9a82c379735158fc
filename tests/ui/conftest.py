"""Fixtures of the dashboard's tests: an app on the test's store, a served one, a browser.

The browser is Debian's chromium driven by Playwright (browsers are not downloaded):
one per session. Without chromium the browser tests skip, saying so, unless the
environment variable CI is set: then they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from autodurable._ui._app import create_app
from autodurable._ui._options import UiOptions


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def client_for(database: str) -> Iterator[Callable[..., Any]]:
    """Make a Starlette TestClient of a dashboard with these `UiOptions` fields."""
    from starlette.testclient import TestClient

    clients: list[Any] = []

    def make(**fields: Any) -> Any:
        options = UiOptions(**fields)
        host = options.host if options.loopback else "127.0.0.1"
        client = TestClient(create_app(options), base_url=f"http://{host}:{options.port}")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(client_for: Callable[..., Any]) -> Any:
    """A TestClient of a dashboard with the default options (loopback, no token)."""
    return client_for()


@pytest.fixture
def served(database: str) -> Iterator[Callable[..., str]]:
    """Serve a dashboard (uvicorn on a free port, in a thread); returns its base URL."""
    import uvicorn

    servers: list[tuple[Any, threading.Thread]] = []

    def start(**fields: Any) -> str:
        port = free_port()
        options = UiOptions(port=port, **{"refresh": 0.25, **fields})
        config = uvicorn.Config(
            create_app(options), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless chromium for the module (skipped without one, failed on CI).

    Playwright's sync API keeps an event loop running in this thread while it is
    started, which makes ``asyncio.run`` fail: it is stopped before the tests of any
    other module run (the browser tests are one xdist group, so they run together).
    """
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        reason = "chromium is not installed (apt-get install chromium); browser tests need it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    """A fresh browser page (its own cookies), closed afterwards."""
    context = chromium.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
