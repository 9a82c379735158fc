"""Watched functions (`autodurable.watched`, what the analyser uses for untyped calls).

In workflow code a watched call that does I/O (here: opening a file, a
chokepoint) is recorded as a step and replayed; one that does none writes
nothing. Every test runs on both stores (the `database` fixture).
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

import pytest

import autodurable
from autodurable import NondeterminismError
from autodurable._core._sentinel import uninstall
from autodurable._core._wrappers import kind_of

from ..helpers import Crash, crash_points, maybe_crash, run_workflow

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset(tmp_path: Path):
    calls.clear()
    yield
    uninstall()  # the chokepoints the first watched call installed


def _effect(name: str) -> None:
    """An effect the outside world can count: one line appended to a file."""
    with open(f"effects-{name}.log", "a") as fh:
        fh.write("x\n")


def effects(name: str) -> int:
    path = Path(f"effects-{name}.log")
    return len(path.read_text().splitlines()) if path.exists() else 0


@autodurable.watched
def send(channel: str, text: str) -> str:
    calls["send"] += 1
    _effect(channel)
    return text.upper()


@autodurable.watched
def shout(text: str) -> str:
    calls["shout"] += 1
    return text.upper() + "!"


@autodurable.watched
def cached(key: str, cache: dict[str, str]) -> str:
    """I/O only on a miss: the first call for a key does I/O, a second does none."""
    calls["cached"] += 1
    if key not in cache:
        _effect("cache")
        cache[key] = key * 2
    return cache[key]


@autodurable.step
def stamp(x: int) -> int:
    calls["stamp"] += 1
    _effect("stamp")
    return x + 100


@autodurable.watched
def mixed(x: int) -> int:
    """A nested step, then I/O of its own."""
    calls["mixed"] += 1
    inner = stamp(x)
    _effect("mixed")
    return inner + 1


@autodurable.watched
def only_steps(x: int) -> int:
    """Calls a step and does no I/O itself: only the step is recorded."""
    calls["only_steps"] += 1
    return stamp(x) * 2


@autodurable.watched
def fails(x: int) -> int:
    calls["fails"] += 1
    _effect("fails")
    raise ValueError(f"refused {x}")


def steps(store, workflow_id):
    return [(s.position, s.name, s.status) for s in store.list_steps(workflow_id)]


@autodurable.workflow
def notify(texts):
    out = []
    for index, text in enumerate(texts):
        out.append(send("mail", text))
        out.append(shout(text))
        maybe_crash(f"notify-{index}")
    return out


def test_a_watched_call_that_did_io_is_recorded_and_one_that_did_none_is_not(database, store):
    assert run_workflow(notify, "n", ["a", "b"]) == ["A", "A!", "B", "B!"]
    # Positions are taken by every watched call; only the calls that did I/O wrote.
    assert steps(store, "n") == [(1, "send", "succeeded"), (3, "send", "succeeded")]


def test_replay_returns_recorded_results_and_reruns_only_what_did_no_io(database, store):
    crash_points.add("notify-1")
    with pytest.raises(Crash, match=r"^notify-1$"):
        run_workflow(notify, "r", ["a", "b", "c"])
    assert effects("mail") == 2
    calls.clear()
    assert run_workflow(notify, "r", ["a", "b", "c"]) == ["A", "A!", "B", "B!", "C", "C!"]
    assert effects("mail") == 3  # a and b replayed, c sent once
    assert calls == Counter(send=1, shout=3)  # shout did no I/O: it simply runs again


@autodurable.workflow
def lookups(keys):
    cache: dict[str, str] = {}
    out = [cached(k, cache) for k in keys]
    maybe_crash("lookups")
    return out


def test_io_on_some_calls_only_is_never_confused_between_calls(database, store):
    # "a" misses (I/O, recorded), "a" hits (no I/O, nothing written), "b" misses.
    crash_points.add("lookups")
    with pytest.raises(Crash, match=r"^lookups$"):
        run_workflow(lookups, "c", ["a", "a", "b"])
    assert [p for p, _, _ in steps(store, "c")] == [1, 3]
    assert effects("cache") == 2
    calls.clear()
    # On replay the second call finds nothing at its position and runs again; with
    # an empty cache it now misses and does I/O, recorded at its own position.
    assert run_workflow(lookups, "c", ["a", "a", "b"]) == ["aa", "aa", "bb"]
    assert calls == Counter(cached=1)
    assert effects("cache") == 3
    assert [p for p, _, _ in steps(store, "c")] == [1, 2, 3]


@autodurable.workflow
def nested(x):
    first = mixed(x)
    second = only_steps(x)
    maybe_crash("nested")
    return first, second, stamp(0)


def test_nested_steps_inside_a_watched_call_keep_their_positions_on_replay(database, store):
    crash_points.add("nested")
    with pytest.raises(Crash, match=r"^nested$"):
        run_workflow(nested, "m", 1)
    # mixed took position 1 and its nested step 2; it was recorded when it returned,
    # having done I/O of its own. only_steps took 3 and wrote nothing; its step took 4.
    assert sorted(steps(store, "m")) == [
        (1, "mixed", "succeeded"),
        (2, "stamp", "succeeded"),
        (4, "stamp", "succeeded"),
    ]
    calls.clear()
    assert run_workflow(nested, "m", 1) == (102, 202, 100)
    # mixed is replayed whole (its nested step skipped); only_steps runs again and
    # replays its step; the last stamp is new, at position 5.
    assert calls == Counter(only_steps=1, stamp=1)
    assert effects("stamp") == 3 and effects("mixed") == 1
    assert sorted(steps(store, "m"))[-1] == (5, "stamp", "succeeded")


@autodurable.workflow
def failing(x):
    try:
        fails(x)
    except ValueError as exc:
        maybe_crash("failing")
        return str(exc)
    return "no error"


def test_a_failure_after_io_is_recorded_and_raised_again_on_replay(database, store):
    crash_points.add("failing")
    with pytest.raises(Crash, match=r"^failing$"):
        run_workflow(failing, "f", 7)
    assert steps(store, "f") == [(1, "fails", "failed")]
    calls.clear()
    assert run_workflow(failing, "f", 7) == "refused 7"
    assert calls == Counter() and effects("fails") == 1


GREETING = "hello"


@autodurable.workflow
def changing(name):
    first = send("mail", f"{GREETING} {name}")
    maybe_crash("changing")
    return first


def test_a_replayed_call_with_other_arguments_is_a_nondeterminism_error(
    database, store, monkeypatch
):
    crash_points.add("changing")
    with pytest.raises(Crash, match=r"^changing$"):
        run_workflow(changing, "x", "ann")
    # The program changed: the recorded call is now made with other arguments.
    monkeypatch.setattr(sys.modules[__name__], "GREETING", "goodbye")
    calls.clear()
    with pytest.raises(NondeterminismError) as raised:
        run_workflow(changing, "x", "ann")
    assert "send called with arguments" in str(raised.value)
    assert calls == Counter()  # refused before running it again


@autodurable.watched
async def send_async(text: str) -> str:
    calls["send_async"] += 1
    await asyncio.sleep(0)
    _effect("async")
    return text[::-1]


@autodurable.workflow
async def fan_out(texts):
    out = await asyncio.gather(*(send_async(t) for t in texts))
    maybe_crash("fan_out")
    return out


def test_async_watched_calls_take_positions_when_called_and_replay(database, store):
    crash_points.add("fan_out")
    with pytest.raises(Crash, match=r"^fan_out$"):
        asyncio.run(run_workflow(fan_out, "a", ["ab", "cd", "ef"]))
    assert [p for p, _, _ in steps(store, "a")] == [1, 2, 3]
    calls.clear()
    assert asyncio.run(run_workflow(fan_out, "a", ["ab", "cd", "ef"])) == ["ba", "dc", "fe"]
    assert calls == Counter() and effects("async") == 3


def test_outside_workflow_code_a_watched_function_is_the_function(store):
    assert kind_of(send) == "watched"
    assert send("plain", "hi") == "HI"
    assert effects("plain") == 1
    assert store.list_workflows() == []  # nothing recorded, nothing started
    frames: list[str] = []

    @autodurable.watched
    def caller_name() -> None:
        frames.append(sys._getframe(1).f_code.co_name)

    def plain_caller() -> None:
        caller_name()

    plain_caller()
    assert frames == ["plain_caller"]  # no frame of ours between them


APP = """
import os

from vendor import transport


def deliver(conn, text):  # an untyped connection: watched, confirmed by its socket I/O
    conn.sendall(text.encode() + b"\\n")
    return conn.recv(100).decode().strip().upper()


conn = transport.connect(int(os.environ["PORT"]))
for i in range(4):
    print(deliver(conn, f"m{i}"))
    if i == 1 and os.environ.get("CRASH"):
        os._exit(9)
"""

TRANSPORT = """
import socket


def connect(port):
    return socket.create_connection(("127.0.0.1", port))
"""


def test_a_watched_function_under_the_launcher_is_recorded_and_replayed(
    tmp_path: Path, database: str
) -> None:
    import socketserver
    import subprocess
    import threading

    from ..helpers import child_env

    received: list[str] = []

    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                received.append(line.decode().strip())
                self.wfile.write(line)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = str(server.server_address[1])
    # The transport is a library the project does not analyse (excluded): what it
    # returns cannot be typed.
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n[tool.autodurable]\nexclude = ["vendor/*"]\n'
    )
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "__init__.py").write_text("")
    (tmp_path / "vendor" / "transport.py").write_text(TRANSPORT)
    (tmp_path / "app.py").write_text(APP)
    try:
        explained = subprocess.run(
            [sys.executable, "-m", "autodurable", "explain", "app.py"],
            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "deliver  step/watched" in explained.stdout, explained.stdout
        command = [sys.executable, "-m", "autodurable", "run", "-q", "app.py"]
        env = child_env(PORT=port, AUTODURABLE_DATABASE_URL=database)  # this test's store
        crashed = subprocess.run(
            command, cwd=tmp_path, env={**env, "CRASH": "1"}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert crashed.returncode == 9 and crashed.stdout == "M0\nM1\n", crashed.stderr
        resumed = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout == "M0\nM1\nM2\nM3\n"
        # m0 and m1 were replayed from the record: each message was sent once.
        assert received == ["m0", "m1", "m2", "m3"]
    finally:
        server.shutdown()
        server.server_close()
