"""Do no harm: a program run under the hook behaves as it does plainly until it records.

Each test runs a small project under ``autodurable run -- python check.py`` (the
way a test suite is run under the hook): the project's modules are rewritten,
``check.py`` (the command's own script) calls them from plain code and asserts
what plain Python gives. No durable root is involved, so nothing may be
recorded, logged, warned or seen on the stack.
"""

from __future__ import annotations

import functools
import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import autodurable
from autodurable import Retry

from ..helpers import child_env, write_script


def run_under_hook(
    folder: Path, script: str = "check.py", *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``autodurable run -- python SCRIPT`` in `folder`; its stderr without the status line.

    The launcher's one status line comes first; what is left is what the program
    and its children wrote.
    """
    done = subprocess.run(
        [sys.executable, "-m", "autodurable", "run", "--", sys.executable, script, *args],
        cwd=folder,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    status, _, rest = done.stderr.partition("\n")
    assert status.startswith(f"autodurable: running {sys.executable} with the modules of "), status
    done.stderr = rest
    return done


def test_run_command_prints_exactly_the_programs_output_and_one_status_line(tmp_path):
    folder = project(tmp_path)
    plain = [sys.executable, "-c", "print(1)"]
    for quiet in ([], ["-q"]):
        done = subprocess.run(
            [sys.executable, "-m", "autodurable", "run", *quiet, "--", *plain],
            cwd=folder,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stdout) == (0, "1\n")
        state = folder / ".autodurable" / "state.db"
        status = (
            f"autodurable: running {sys.executable} with the modules of {folder} made durable "
            f"(state in {state})\n"
        )
        assert done.stderr == ("" if quiet else status)
        assert not state.exists()  # a command that records nothing creates no database


def project(tmp_path: Path, config: str = "", **modules: str) -> Path:
    """A project folder with a pyproject.toml (plus `config`) and the given modules."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'demo'\n{config}")
    for name, source in modules.items():
        write_script(tmp_path, f"{name}.py", source)
    return tmp_path


INSPECTING_LIBRARY = """
import sys

def caller():
    # What python-dotenv's find_dotenv() does: look at the calling frame's file.
    frame = sys._getframe(1)
    return frame.f_code.co_filename, frame.f_code.co_name
"""

FRAMES = """
import sys, warnings
import inspectlib

def read(path):
    # A step (it reads a file) that looks at its caller, as logging and warnings do.
    warnings.warn("read() is deprecated", DeprecationWarning, stacklevel=2)
    with open(path) as fh:
        return fh.read(), sys._getframe(1).f_code.co_name

def report(path):
    # Workflow code: it calls the step read() and does I/O of its own (a site).
    text, seen_by_read = read(path)
    seen_by_library = inspectlib.caller()
    return text, seen_by_read, seen_by_library
"""

FRAMES_CHECK = """
import os, warnings
import app

warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    text, seen_by_read, seen_by_library = app.report("data.txt")
assert type(app.read).__name__ == "InferredStep", type(app.read)  # the hook rewrote app
assert text == "hello" and seen_by_read == "report", seen_by_read
assert seen_by_library == (os.path.abspath("app.py"), "report"), seen_by_library
(warning,) = caught
assert (os.path.basename(warning.filename), warning.lineno) == ("app.py", 13), warning
print("ok")
"""


def test_plain_callers_see_no_frame_of_ours(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    write_script(lib, "inspectlib.py", INSPECTING_LIBRARY)
    config = '[tool.autodurable]\nio = ["inspectlib"]\n'
    folder = project(tmp_path / "proj", config, app=FRAMES, check=FRAMES_CHECK)
    (folder / "data.txt").write_text("hello")
    explain = subprocess.run(
        [sys.executable, "-m", "autodurable", "explain", "app.py"],
        cwd=folder,
        env=child_env(PYTHONPATH=str(lib)),
        capture_output=True,
        text=True,
    )
    assert "read  " in explain.stdout and "step/decorate" in explain.stdout, explain.stdout
    assert "workflow/inline" in explain.stdout, explain.stdout  # report() has a site
    done = run_under_hook(folder, PYTHONPATH=f"{lib}:{child_env()['PYTHONPATH']}")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


MEMO = """
import functools, time

def timed_memo(fn):
    cache = {}

    @functools.wraps(fn)
    def inner(n):
        # Reads the clock: the analyser makes inner() a step. functools.wraps sets
        # __wrapped__ on what the hook made of it, which must not replace inner.
        if n not in cache:
            started = time.perf_counter()
            cache[n] = fn(n)
            inner.last = time.perf_counter() - started
        return cache[n]

    return inner

calls = 0

@timed_memo
def fib(n):
    global calls
    calls += 1
    return n if n < 2 else fib(n - 1) + fib(n - 2)
"""

MEMO_CHECK = """
import inspect
import memo

assert memo.fib(20) == 6765
assert memo.calls == 21, memo.calls  # memoised: each n computed once
assert memo.fib.__name__ == "fib" and inspect.unwrap(memo.fib).__name__ == "fib"
assert str(inspect.signature(memo.fib)) == "(n)"
print("ok")
"""


def test_a_decorator_built_with_functools_wraps_keeps_working(tmp_path):
    folder = project(tmp_path, memo=MEMO, check=MEMO_CHECK)
    done = run_under_hook(folder)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


LIVE_OBJECTS = """
import threading, weakref

import autodurable

def store(cache, key, value):
    with open("effects.log", "a") as fh:  # a step: it writes a file
        fh.write(f"{key}\\n")
    cache[key] = value

class Cache:
    # Holds a lock: its inputs can never be recorded.
    def __init__(self):
        self.lock = threading.Lock()
        self.items = {}

    def put(self, key, value):  # an inferred workflow: it calls a step
        with self.lock:
            store(self.items, key, value)

    @autodurable.workflow(unrecordable="rerun")  # a root, as the codemod writes one
    def put_root(self, key, value):
        store(self.items, key, value)
"""

LIVE_CHECK = """
import gc, logging, os, sys, weakref
import live

logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="LOG %(message)s")
cache = live.Cache()
for i in range(500):
    cache.put(i, i)
assert len(cache.items) == 500
# Called from plain code, an inferred workflow is plain: no record, no log, no database.
assert not os.path.exists(".autodurable"), os.listdir(".")

mode = sys.argv[1]
if mode == "root":
    for i in range(3):
        cache.put_root(i, i)
    probe = weakref.ref(cache)
    del cache
    gc.collect()
    assert probe() is None, gc.get_referrers(probe())  # no log record keeps it alive
print("done")
"""


def test_an_inferred_workflow_called_from_plain_code_is_plain_and_silent(tmp_path):
    folder = project(tmp_path, live=LIVE_OBJECTS, check=LIVE_CHECK)
    done = run_under_hook(folder, "check.py", "plain")
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")
    assert len((folder / "effects.log").read_text().split()) == 500


def test_an_unrecordable_root_is_reported_once_and_keeps_nothing_alive(tmp_path):
    folder = project(tmp_path, live=LIVE_OBJECTS, check=LIVE_CHECK)
    done = run_under_hook(folder, "check.py", "root")
    assert done.returncode == 0, done.stdout + done.stderr
    reports = [line for line in done.stdout.splitlines() if "runs unrecorded" in line]
    assert len(reports) == 1 and "Cache.put_root" in reports[0], done.stdout
    assert done.stdout.endswith("done\n") and done.stderr == ""


# -- the wrapper contract, in this process -----------------------------------------------------


def test_functools_wraps_on_a_durable_function_keeps_the_decorated_body():
    def declared(n: int) -> str:
        return "declared"

    @autodurable.step
    def body(*args: object) -> str:
        return "body"

    wrapped = functools.wraps(declared)(body)
    assert wrapped is body and body(1) == "body"  # still calls the decorated function
    assert body.__name__ == "declared" and inspect.unwrap(body) is declared
    assert inspect.signature(body) == inspect.signature(declared)


def test_code_reading_annotations_sees_the_functions_own(tmp_path):
    # Tool schemas (agent frameworks), FastAPI dependencies and pydantic read them.
    from autodurable import inline as _inline

    def tool(text: str, count: int = 1) -> list[str]:
        return [text] * count

    class Notes:
        def add(self, text: str) -> None: ...

    made = [autodurable.step(tool), autodurable.workflow(tool), _inline.step(tool)]
    made.append(_inline.step(Notes.add))
    for wrapper in made:
        expected = typing.get_type_hints(inspect.unwrap(wrapper))
        assert typing.get_type_hints(wrapper) == expected
        assert wrapper.__annotations__ == inspect.unwrap(wrapper).__annotations__
    assert typing.get_type_hints(made[0]) == {"text": str, "count": int, "return": list[str]}
    made[0].__annotations__ = {"text": str}  # as functools.update_wrapper does
    assert tool.__annotations__ == {"text": str}


def test_an_inferred_step_outside_workflow_code_is_called_directly():
    from autodurable import inline as _inline

    def caller_name() -> str:
        return sys._getframe(1).f_code.co_name

    step = _inline.step(caller_name)

    def plain_caller() -> str:
        return step()

    assert plain_caller() == "plain_caller"  # no frame of ours between the two


def test_an_explicit_step_outside_workflow_code_is_called_directly_unless_it_retries():
    # What the codemod writes: a bare @autodurable.step. Called from plain code it
    # is the function itself; with retries it keeps its policy there.
    @autodurable.step
    def caller_name() -> str:
        return sys._getframe(1).f_code.co_name

    def plain_caller() -> str:
        return caller_name()

    assert plain_caller() == "plain_caller"

    attempts: list[int] = []

    @autodurable.step(retries=Retry(max_attempts=2, initial_interval=0.001))
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return len(attempts)

    assert flaky() == 2


class _Detail:
    """A value that is not text, as sqlite-utils' AlterError is."""


class OddMessage(Exception):
    """An exception whose ``__str__`` returns something that is not a str."""

    def __str__(self):  # type: ignore[override]
        return self.args[0]


@autodurable.step
def _odd_step() -> None:
    raise OddMessage(_Detail())


@autodurable.workflow
def _odd_workflow() -> None:
    _odd_step()


def test_recording_a_failure_never_replaces_the_programs_exception(database):
    # The program's own exception reaches its caller, whatever its __str__ does; the
    # record says what Python's traceback says when str() fails.
    with pytest.raises(OddMessage) as raised:
        autodurable.options(_odd_workflow, workflow_id="odd")()
    assert isinstance(raised.value.args[0], _Detail)
    handle = autodurable.get_workflow("odd")
    assert handle.status() == "failed"
    assert [s.error_message for s in handle.steps()] == ["<exception str() failed>"]


CONFIGURED_RETRIES = """
import autodurable

attempts = []

@autodurable.step  # as the codemod writes it: its options come from pyproject.toml
def flaky():
    attempts.append(1)
    if len(attempts) == 1:
        raise ConnectionError("first attempt fails")
    return len(attempts)

print(flaky())
"""


def test_a_step_outside_workflow_code_keeps_the_retries_pyproject_gives_it(tmp_path):
    config = "[tool.autodurable.steps]\nretries = {max_attempts = 2, initial_interval = 0.01}\n"
    folder = project(tmp_path, config, flaky=CONFIGURED_RETRIES)
    done = subprocess.run(
        [sys.executable, "flaky.py"], cwd=folder, env=child_env(), capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, "2\n"), done.stderr
