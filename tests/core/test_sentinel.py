"""The runtime sentinel: I/O in workflow code outside any step is reported."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib
import io
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import autodurable
from autodurable._core import _sentinel
from autodurable._core._runtime import get_runtime
from autodurable._core._sentinel import UnrecordedIOError, UnrecordedIOWarning
from autodurable._errors import AutodurableError
from autodurable._store import PENDING, SUCCEEDED, open_store

from ..helpers import run_command, write_script

ORIGINALS = {
    "open": builtins.open,
    "io.open": io.open,
    "os.system": os.system,
    "create_connection": socket.create_connection,
    "Popen.__init__": subprocess.Popen.__init__,
    "sqlite3.connect": sqlite3.connect,
    "sqlite3.dbapi2.connect": sqlite3.dbapi2.connect,
}


@pytest.fixture
def sentinel() -> Iterator[None]:
    _sentinel.install("warnings")
    yield
    _sentinel.uninstall()


@contextlib.contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every UnrecordedIOWarning, with Python's own once-per-location filter off."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found: list[warnings.WarningMessage] = []
        yield found
    found.extend(w for w in caught if issubclass(w.category, UnrecordedIOWarning))


def here() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


@autodurable.workflow
def load_config(path: str) -> int:
    line = here()
    with open(path) as fh:
        fh.read()
    return line


@autodurable.step
def read_step(path: str) -> str:
    with open(path) as fh:
        return fh.read()


@autodurable.step
def other_io_step(port: int) -> int:
    with socket.socket() as sock:
        sock.connect(("127.0.0.1", port))
    sqlite3.connect(":memory:").close()
    return subprocess.run([sys.executable, "-c", "pass"]).returncode


@autodurable.workflow
def read_in_step(path: str, port: int) -> tuple[str, int]:
    return read_step(path), other_io_step(port)


@autodurable.workflow
def read_in_loop(path: str) -> list[int]:
    lines = []
    for _ in range(3):
        lines.append(here())
        Path(path).read_text()  # through pathlib: the standard library frames are skipped
    lines.append(here())
    Path(path).read_text()
    return lines


@autodurable.workflow
def write_file(path: str) -> None:
    with open(path, "w") as fh:
        fh.write("written")


@autodurable.workflow
def import_module(name: str) -> str:
    return importlib.import_module(name).DATA


@autodurable.workflow
def connect(how: str, port: int) -> int:
    if how == "create_connection":
        line = here()
        socket.create_connection(("127.0.0.1", port)).close()
    else:
        with socket.socket() as sock:
            line = here()
            getattr(sock, how)(("127.0.0.1", port))
    return line


@autodurable.workflow
def run_subprocess() -> int:
    return subprocess.run([sys.executable, "-c", "pass"]).returncode


@autodurable.workflow
def run_system() -> int:
    return os.system("exit 0")


@autodurable.workflow
def open_databases(folder: str) -> None:
    open_store(f"sqlite:///{folder}/other.db").close()  # autodurable's own: never reported
    sqlite3.connect(f"{folder}/mine.db").close()


@autodurable.workflow
async def load_async(path: str) -> str:
    await asyncio.sleep(0)
    with open(path) as fh:
        return fh.read()


@pytest.fixture
def data(tmp_path: Path) -> str:
    path = tmp_path / "data.txt"
    path.write_text("data")
    return str(path)


def test_open_in_workflow_warns_naming_function_and_line(sentinel, data):
    with recorded() as found:
        line = load_config(data)
    assert len(found) == 1
    message = str(found[0].message)
    assert "open() in load_config" in message
    assert f"({__file__}:{line})" in message
    assert "@autodurable.step" in message
    assert (found[0].filename, found[0].lineno) == (__file__, line)


def test_io_in_step_is_silent(sentinel, data):
    with socket.create_server(("127.0.0.1", 0)) as server, recorded() as found:
        assert read_in_step(data, server.getsockname()[1]) == ("data", 0)
    assert found == []


def test_open_outside_workflows_is_silent(sentinel, data):
    with recorded() as found, open(data) as fh:
        fh.read()
    assert found == []


def test_module_level_io_during_import_is_silent(sentinel, tmp_path, monkeypatch):
    name = f"sentinel_mod_{uuid.uuid4().hex}"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{name}.py").write_text("with open(__file__) as fh:\n    DATA = fh.read()\n")
    monkeypatch.syspath_prepend(str(folder))
    try:
        with recorded() as found:
            assert "DATA" in import_module(name)
        assert found == []
    finally:
        sys.modules.pop(name, None)


def test_warns_once_per_line(sentinel, data):
    with recorded() as found:
        lines = read_in_loop(data)
        read_in_loop(data)
    assert [w.lineno for w in found] == [lines[0], lines[-1]]
    assert all("open() in read_in_loop" in str(w.message) for w in found)


def test_error_mode_raises_before_the_io_and_leaves_workflow_pending(sentinel, tmp_path):
    _sentinel.install("error")
    target = tmp_path / "out.txt"
    with pytest.raises(UnrecordedIOError, match=r"open\(\) in write_file") as raised:
        autodurable.options(write_file, workflow_id="w-error")(str(target))
    assert isinstance(raised.value, AutodurableError)
    assert not target.exists()
    assert get_runtime().store.get_workflow("w-error").status == PENDING
    _sentinel.install("warnings")  # resumes once the mode allows it
    with recorded() as found:
        autodurable.options(write_file, workflow_id="w-error")(str(target))
    assert len(found) == 1
    assert get_runtime().store.get_workflow("w-error").status == SUCCEEDED


def test_off_mode_is_silent_and_install_changes_the_mode(sentinel, data):
    _sentinel.install("off")
    with recorded() as found:
        load_config(data)
    assert found == []
    _sentinel.install("warnings")
    with recorded() as found:
        load_config(data)
    assert len(found) == 1


def test_install_is_idempotent_and_validates_the_mode(sentinel):
    _sentinel.install("warnings")
    assert builtins.open.__wrapped__ is ORIGINALS["open"]
    assert builtins.open is io.open
    with pytest.raises(autodurable.ConfigError, match="warn, warnings, error, off"):
        _sentinel.install("loud")


def test_default_mode_logs_once_per_line_and_never_warns(sentinel, data, caplog):
    # A project whose tests run with warnings as errors (filterwarnings = error)
    # must not see the report become an exception.
    _sentinel.install("warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level("WARNING", logger="autodurable"):
            lines = read_in_loop(data)
            read_in_loop(data)
    reports = [r for r in caplog.records if "did I/O outside any step" in r.getMessage()]
    # Two lines of read_in_loop open a file: one report each, for six opens.
    messages = [r.getMessage() for r in reports]
    assert len(messages) == 2
    assert f"{Path(__file__).name}:{lines[0]})" in messages[0]
    assert f"{Path(__file__).name}:{lines[-1]})" in messages[1]
    # A record keeps its text only: nothing of the program stays alive through it.
    assert all(isinstance(arg, str) for r in reports for arg in r.args or ())


def test_wrapped_functions_still_pickle_by_reference(sentinel):
    for fn in (builtins.open, io.open, os.system, socket.create_connection, sqlite3.connect):
        assert pickle.loads(pickle.dumps(fn)) is fn


@pytest.mark.parametrize("how", ["connect", "connect_ex", "create_connection"])
def test_socket_connect_in_workflow_warns(sentinel, how):
    with socket.create_server(("127.0.0.1", 0)) as server, recorded() as found:
        line = connect(how, server.getsockname()[1])
    label = "socket.create_connection()" if how == "create_connection" else f"socket.{how}()"
    assert len(found) == 1
    assert f"{label} in connect ({__file__}:{line})" in str(found[0].message)


def test_subprocess_in_workflow_warns(sentinel):
    with recorded() as found:
        assert run_subprocess() == 0
    assert len(found) == 1
    assert "subprocess.Popen() in run_subprocess" in str(found[0].message)


def test_os_system_in_workflow_warns(sentinel):
    with recorded() as found:
        assert run_system() == 0
    assert len(found) == 1
    assert "os.system() in run_system" in str(found[0].message)


def test_sqlite_connect_warns_but_autodurables_own_store_does_not(sentinel, tmp_path):
    _sentinel.install("error")  # any report from the store would raise
    assert get_runtime()._store is None  # the first workflow call opens the store
    with pytest.raises(UnrecordedIOError, match=r"sqlite3\.connect\(\) in open_databases"):
        open_databases(str(tmp_path))
    assert (tmp_path / "other.db").exists()
    assert not (tmp_path / "mine.db").exists()


def test_async_workflow_warns(sentinel, data):
    with recorded() as found:
        assert asyncio.run(load_async(data)) == "data"
    assert len(found) == 1
    assert "open() in load_async" in str(found[0].message)


LOOP_WOKEN_BY_A_THREAD = """
import asyncio, threading

async def main():
    loop = asyncio.get_running_loop()
    woken = loop.create_future()
    # The thread wakes the loop through the loop's own socket pair.
    threading.Thread(target=loop.call_soon_threadsafe, args=(woken.set_result, 7)).start()
    print(await woken)

asyncio.run(main())
"""


def test_an_event_loop_waking_itself_is_not_reported(tmp_path):
    write_script(tmp_path, "app.py", LOOP_WOKEN_BY_A_THREAD)
    done = run_command([sys.executable, "-m", "autodurable", "run", "app.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "7\n"
    assert "outside any step" not in done.stderr, done.stderr


def test_uninstall_restores_the_originals(sentinel, data):
    assert builtins.open is not ORIGINALS["open"]
    assert "connect" in vars(socket.socket)
    _sentinel.uninstall()
    current = {
        "open": builtins.open,
        "io.open": io.open,
        "os.system": os.system,
        "create_connection": socket.create_connection,
        "Popen.__init__": subprocess.Popen.__init__,
        "sqlite3.connect": sqlite3.connect,
        "sqlite3.dbapi2.connect": sqlite3.dbapi2.connect,
    }
    assert all(current[name] is original for name, original in ORIGINALS.items())
    assert "connect" not in vars(socket.socket) and "connect_ex" not in vars(socket.socket)
    with recorded() as found:
        load_config(data)
    assert found == []
