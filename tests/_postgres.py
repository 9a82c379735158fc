"""A throwaway PostgreSQL server for the tests (and the PostgreSQL benchmark).

The server binaries come from the distribution's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin`` on Debian; `find_bindir` takes the
newest version, or ``postgres`` on PATH). As root, the server runs as the
unprivileged ``postgres`` user (PostgreSQL refuses to run as root); the data
directory is a temporary directory owned by that user. The server listens on a
Unix socket in that directory and on a free TCP port of 127.0.0.1, with trust
authentication, and is stopped and deleted at the end.

Invariants:
- The PostgreSQL tests run whenever ``postgresql`` is among the stores selected
  by ``AUTODURABLE_TEST_STORES`` (the default); then missing server binaries, or
  a server that does not start, fail them: they are never skipped silently.
  Leaving ``postgresql`` out of ``AUTODURABLE_TEST_STORES`` skips the tests that
  need PostgreSQL only, saying so.
- Every test gets a schema of its own (``?schema=t_...`` in its URL), so tests
  sharing the session's server never see each other's rows or notifications.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import selected_stores

_SERVICE_USER = "postgres"


def find_bindir() -> Path | None:
    """The folder of the newest installed PostgreSQL server binaries, or None."""
    versions = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        match = re.fullmatch(r"\d+(\.\d+)?", candidate.parent.parent.name)
        if match:
            versions.append((float(match.group(0)), candidate.parent))
    if versions:
        return max(versions)[1]
    on_path = shutil.which("postgres")
    return Path(on_path).resolve().parent if on_path else None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, started and stopped by us."""

    def __init__(self, bindir: Path, fsync: bool = False) -> None:
        self.bindir = bindir
        self.fsync = fsync
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="autodurable-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.folder, _SERVICE_USER, _SERVICE_USER)

    # -- commands -------------------------------------------------------------

    def _run(self, *command: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", _SERVICE_USER, "--"] if self._as_root else []
        done = subprocess.run(
            [*prefix, *command],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                f"server log:\n{log}"
            )

    def init(self) -> None:
        """Create the cluster (trust authentication, superuser ``postgres``)."""
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = [
            f"-p {self.port}",
            f"-k {self.folder}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=300",
            f"-c fsync={'on' if self.fsync else 'off'}",
            "-c shared_buffers=64MB",
        ]
        if (self.bindir.parent / "lib" / "pg_stat_statements.so").exists():
            # Lets tests count the statements autodurable sends.
            options.append("-c shared_preload_libraries=pg_stat_statements")
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, checkpoint; ``immediate``: crash)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (clients are disconnected), wait `down_for` seconds, start it."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def url(self, schema: str | None = None, **options: str) -> str:
        """A URL for the ``postgres`` database over TCP, optionally in a schema of its own."""
        query = dict(options)
        if schema is not None:
            query["schema"] = schema
        suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres{suffix}"

    def cleanup(self) -> None:
        """Stop the server if it runs and delete its directory."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def temporary_server(fsync: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway server; stop and delete it afterwards.

    Raises RuntimeError when the server binaries are not installed.
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL server binaries (install the postgresql package: "
            "apt-get install postgresql)"
        )
    server = PostgresServer(bindir, fsync=fsync)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


def require_postgres() -> None:
    """Skip if AUTODURABLE_TEST_STORES leaves PostgreSQL out; fail if its binaries are missing."""
    if "postgresql" not in selected_stores():
        pytest.skip("AUTODURABLE_TEST_STORES does not include postgresql")
    if find_bindir() is None:
        pytest.fail(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or postgres on "
            "PATH): install the postgresql package (scripts/test does), or run without "
            "PostgreSQL with AUTODURABLE_TEST_STORES=sqlite"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started on first use (see `require_postgres`)."""
    require_postgres()
    with temporary_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL of the session's server with a fresh schema for this test."""
    return postgres_server.url(schema=f"t_{uuid.uuid4().hex[:12]}")
