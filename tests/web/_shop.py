"""Running the shop examples (examples/web/) as real servers under ``autodurable run``.

- `shop_project`: a project folder holding the examples, with its own pyproject.toml.
- `Server`: one framework's server on a fixed port; started, killed (SIGKILL), restarted.
- `post`, `post_retrying`: a client, and one that retries until it gets an answer.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..helpers import ROOT, child_env

EXAMPLE = ROOT / "examples" / "web"
FILES = ("shop_core.py", "shop_fastapi.py", "shop_flask.py", "shop_django.py")


def shop_project(folder: Path) -> Path:
    """`folder` made a project holding the shop examples."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0"\n')
    for name in FILES:
        shutil.copy(EXAMPLE / name, folder / name)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def console_script(name: str) -> list[str]:
    """A console script installed next to this interpreter (else ``python -m name``)."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


def server_command(framework: str, port: int) -> list[str]:
    """The command serving `framework`'s shop on `port`, under the launcher."""
    launcher = [sys.executable, "-m", "autodurable", "run", "--"]
    if framework == "fastapi":
        app = ["shop_fastapi:app", "--port", str(port), "--log-level", "warning"]
        return [*launcher, *console_script("uvicorn"), *app]
    if framework == "flask":
        return [*launcher, sys.executable, "-m", "flask", "--app", "shop_flask", "run",
                "--port", str(port)]  # fmt: skip
    return [*launcher, sys.executable, "shop_django.py", "runserver", f"127.0.0.1:{port}",
            "--noreload"]  # fmt: skip


@dataclass
class Server:
    """A shop server process; its output goes to ``server-N.log`` in the project."""

    framework: str
    project: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> Server:
        self.starts += 1
        log = (self.project / f"server-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            server_command(self.framework, self.port),
            cwd=self.project,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.output()
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return "\n".join(
            log.read_text(errors="replace") for log in sorted(self.project.glob("server-*.log"))
        )


def shop_env(database_url: str, payments_url: str, gate: Path, **extra: str) -> dict[str, str]:
    """The environment of a shop server: its store, the payment service, the gate file."""
    return child_env(
        AUTODURABLE_DATABASE_URL=database_url,
        SHOP_PAYMENTS_URL=payments_url,
        SHOP_GATE=str(gate),
        **extra,
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def post(
    port: int, body: Any, key: str | None = None, timeout: float = 10, raw: bytes | None = None
) -> Answer:
    """POST /charges with a JSON `body` (and an ``Idempotency-Key`` if `key`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        conn.request("POST", "/charges", raw if raw is not None else json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data.decode(errors="replace")
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, parsed)
    finally:
        conn.close()


def post_retrying(port: int, body: Any, key: str, deadline: float, timeout: float = 5) -> Answer:
    """`post` again and again (connection refused or reset, timeouts) until an answer
    that is not a 409, or until the monotonic `deadline`."""
    while True:
        try:
            answer = post(port, body, key, timeout=timeout)
            if answer.status != 409:
                return answer
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "no answer before the deadline"
        time.sleep(0.05)
