"""Shared fixtures: every test runs in its own working directory and database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from autodurable._core._runtime import _reset_overrides_for_tests, get_runtime

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory (so the default database is fresh) and no overrides."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTODURABLE_DATABASE_URL", raising=False)
    _reset_overrides_for_tests()
    yield tmp_path
    _reset_overrides_for_tests()


@pytest.fixture
def store():
    """The store of the current (per-test) runtime."""
    return get_runtime().store


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: the project importable, no inherited URL."""
    env = dict(os.environ)
    env.pop("AUTODURABLE_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def write_script(folder: Path, name: str, source: str) -> Path:
    """Write a dedented Python script into `folder`."""
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def run_python(
    script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a script with this interpreter and wait for it (reaping killed children too)."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def serving(service: subprocess.Popen[str]) -> Iterator[str]:
    """The URL of a local service that prints "listening on PORT"; stops it afterwards."""
    try:
        assert service.stdout is not None
        first_line = service.stdout.readline()
        assert first_line.startswith("listening on "), first_line
        yield f"http://127.0.0.1:{first_line.split()[-1]}"
    finally:
        service.kill()
        service.wait()
        if service.stdout is not None:
            service.stdout.close()


class Crash(BaseException):
    """Stands for the process dying at this point: the workflow stays pending."""


crash_points: set[str] = set()


def maybe_crash(point: str) -> None:
    """Raise `Crash` once at `point` if a test armed it (``crash_points.add(point)``)."""
    if point in crash_points:
        crash_points.discard(point)
        raise Crash(point)


@pytest.fixture(autouse=True)
def _disarm_crash_points() -> Iterator[None]:
    crash_points.clear()
    yield
    crash_points.clear()


# A throwaway PostgreSQL server for the tests that need one (see tests/_postgres.py).
from ._postgres import postgres_server, postgres_url  # noqa: E402, F401


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The runtime configured on each store in turn: a fresh SQLite file, a fresh schema."""
    from autodurable import configure

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    configure(database_url=url)
    return url
