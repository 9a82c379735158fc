"""`rewrite(tree, plan)`: the rewritten code runs, records, replays, and stays the same code.

Sources are analysed with ``io=["fakeio"]``: `fakeio` is a module put into
``sys.modules`` whose functions count their calls, so a test sees exactly which
I/O ran again after a simulated crash (`Crash`, a BaseException, leaves the
workflow pending like a killed process).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import pickle
import sys
import textwrap
import traceback
import types
from collections import Counter
from pathlib import Path

import pytest

import autodurable
from autodurable._analysis import ModulePlan, analyse_sources
from autodurable._core._decorators import kind_of
from autodurable._hook._rewrite import HELPER, rewrite
from autodurable._store import SUCCEEDED

from ..helpers import Crash, crash_points, maybe_crash

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

MODULE = "rewritten_mod"
calls: Counter[str] = Counter()


class Boom(ValueError):
    """What `fakeio.boom` raises."""


def _fakeio() -> types.ModuleType:
    fake = types.ModuleType("fakeio")

    def count(name):
        calls[name] += 1

    def get(u):
        count("get")
        return {"k": f"{u}!", "n": len(u)}

    def post(u, data=None):
        count("post")
        return ["posted", u, data]

    def rows(u):
        count("rows")
        yield from range(1, 4)

    def note(x):
        count("note")
        return x

    def boom(x):
        count("boom")
        raise Boom(x)

    async def aget(u):
        count("aget")
        await asyncio.sleep(0)
        return u.upper()

    async def apost(u):
        count("apost")
        return ["posted", u]

    for fn in (get, post, rows, note, boom, aget, apost):
        setattr(fake, fn.__name__, fn)
    return fake


def _fake_aiohttp() -> types.ModuleType:
    fake = types.ModuleType("aiohttp")

    class ClientSession:
        async def __aenter__(self):
            calls["session"] += 1
            return self

        async def __aexit__(self, *exc):
            return False

        async def get(self, u):
            calls["session.get"] += 1
            return f"body of {u}"

    fake.ClientSession = ClientSession
    return fake


def _fake_aiofiles() -> types.ModuleType:
    fake = types.ModuleType("aiofiles")

    class File:
        def __init__(self, path):
            self.path = path

        async def __aenter__(self):
            calls["aopen"] += 1
            return self

        async def __aexit__(self, *exc):
            return False

        async def read(self):
            calls["aread"] += 1
            return f"text of {self.path}"

    fake.open = File
    return fake


def _framework() -> types.ModuleType:
    """Stand-ins for Flask (registers what it is given) and click (wraps it)."""
    fake = types.ModuleType("framework")

    class App:
        def __init__(self):
            self.routes = {}

        def route(self, path):
            def register(fn):
                self.routes[path] = fn
                return fn

            return register

    def command():
        def wrap(fn):
            @functools.wraps(fn)
            def cli(*args, **kwargs):
                return ("cli", fn(*args, **kwargs))

            return cli

        return wrap

    fake.app = App()
    fake.command = command
    return fake


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch):
    calls.clear()
    monkeypatch.setitem(sys.modules, "fakeio", _fakeio())
    monkeypatch.setitem(sys.modules, "aiohttp", _fake_aiohttp())
    monkeypatch.setitem(sys.modules, "aiofiles", _fake_aiofiles())
    monkeypatch.setitem(sys.modules, "framework", _framework())
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield
    calls.clear()


def plan_of(source: str, path: str = f"{MODULE}.py") -> ModulePlan:
    return analyse_sources({MODULE: (path, source)}, io=["fakeio"]).modules[MODULE]


def load(
    source: str,
    *,
    script: bool = False,
    rewritten: bool = True,
    path: Path | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> types.ModuleType:
    """Exec `source` (rewritten, or as is) as a fresh module."""
    source = textwrap.dedent(source)
    filename = str(path) if path is not None else f"<{MODULE}>"
    if path is not None:
        path.write_text(source)
    tree = ast.parse(source, filename=filename)
    if rewritten:
        tree = rewrite(tree, plan_of(source, filename), script=script)
    code = compile(tree, filename, "exec", dont_inherit=True)
    mod = types.ModuleType(MODULE)
    mod.__file__ = filename
    mod.maybe_crash = maybe_crash  # an unknown global for the analyser: plain
    if monkeypatch is not None:
        monkeypatch.setitem(sys.modules, MODULE, mod)
    exec(code, mod.__dict__)
    return mod


def run(fn, workflow_id, *args):
    """Run workflow code `fn` under a durable root, as the launched script runs it."""
    return autodurable.options(as_root(fn), workflow_id=workflow_id)(*args)


def as_root(fn):
    """A root workflow (named after `fn`) whose body calls `fn`."""
    if inspect.iscoroutinefunction(fn):

        async def root(*args):
            return await fn(*args)

    else:

        def root(*args):
            return fn(*args)

    return autodurable.workflow(name=f"root:{fn.__qualname__}")(root)


def steps(store, workflow_id):
    return [(s.position, s.name) for s in store.list_steps(workflow_id)]


# -- every site kind, recorded and replayed ---------------------------------------------------

SYNC = """
import time
import fakeio

def save(x):
    fakeio.note(x)
    return x

def mixed(u, path):
    data = fakeio.get(u)["k"]
    fakeio.post(u, data)
    started = time.time()
    time.sleep(0)
    total = 0
    for row in fakeio.rows(u):
        total += row
    with open(path) as fh:
        text = fh.read()
        fakeio.note(text)
    maybe_crash("mixed")
    return save(data), total, text, started
"""


def test_sync_sites_are_recorded_and_replayed_after_a_crash(store, tmp_path):
    plan = plan_of(textwrap.dedent(SYNC))
    kinds = [(s.kind, s.discard) for s in plan.get("mixed").sites]
    assert kinds == [
        ("step", False),
        ("step", True),
        ("recorded", False),
        ("durable", False),
        ("iterate", False),
        ("block", False),
    ]
    mod = load(SYNC)
    (tmp_path / "in.txt").write_text("file text")
    crash_points.add("mixed")
    with pytest.raises(Crash, match=r"^mixed$"):
        run(mod.mixed, "sync", "u", str(tmp_path / "in.txt"))
    assert calls == Counter(get=1, post=1, rows=1, note=1)
    assert steps(store, "sync") == [
        (1, "mixed:fakeio.get"),
        (2, "mixed:fakeio.post"),
        (3, "time.time"),
        (4, "autodurable.sleep"),
        (5, "mixed:fakeio.rows"),
        (6, "mixed:open"),
    ]
    recorded = store.list_steps("sync")
    assert recorded[1].output == "null"  # a discarded value is recorded as None
    started = float(recorded[2].output)
    (tmp_path / "in.txt").write_text("changed since")  # replay must not read it again
    result = run(mod.mixed, "sync", "u", str(tmp_path / "in.txt"))
    assert result == ("u!", 6, "file text", started)
    assert calls == Counter(get=1, post=1, rows=1, note=2)  # only `save` ran again
    assert steps(store, "sync")[-1] == (7, "save")
    assert store.get_workflow("sync").status == SUCCEEDED


def test_rewritten_workflow_computes_what_the_original_computes(tmp_path):
    (tmp_path / "in.txt").write_text("file text")
    original = load(SYNC, rewritten=False).mixed("u", str(tmp_path / "in.txt"))
    original_calls = Counter(calls)
    calls.clear()
    durable = run(load(SYNC).mixed, "same", "u", str(tmp_path / "in.txt"))
    assert durable[:3] == original[:3]
    assert calls == original_calls


ASYNC = """
import asyncio
import aiofiles
import aiohttp
import fakeio

async def fetch(u):
    return await fakeio.aget(u)

async def amixed(u):
    first = await fakeio.aget(u)
    await fakeio.apost(u)
    async with aiohttp.ClientSession() as session:  # a client: its calls are the sites
        body = await session.get(u)
    async with aiofiles.open(u) as fh:  # a handle opened by I/O: one block
        text = await fh.read()
    await asyncio.sleep(0)
    maybe_crash("amixed")
    return first, body, text, await fetch(u + "2")
"""


def test_async_sites_are_recorded_and_replayed_after_a_crash(store):
    plan = plan_of(textwrap.dedent(ASYNC))
    sites = plan.get("amixed").sites
    assert [(s.kind, s.discard) for s in sites] == [
        ("astep", False),
        ("astep", True),
        ("astep", False),
        ("ablock", False),
        ("durable", False),
    ]
    mod = load(ASYNC)
    crash_points.add("amixed")
    with pytest.raises(Crash, match=r"^amixed$"):
        asyncio.run(run(mod.amixed, "async", "u"))
    done = Counter(aget=1, apost=1, session=1, aopen=1, aread=1, **{"session.get": 1})
    assert calls == done
    assert steps(store, "async") == [
        (1, "amixed:fakeio.aget"),
        (2, "amixed:fakeio.apost"),
        (3, "amixed:aiohttp.ClientSession.get"),
        (4, "amixed:aiofiles.open"),
        (5, "autodurable.sleep"),
    ]
    assert store.list_steps("async")[1].output == "null"
    result = asyncio.run(run(mod.amixed, "async", "u"))
    assert result == ("U", "body of u", "text of u", "U2")
    # Replayed: every site; the client is made again (making it is no I/O).
    assert calls == done + Counter(aget=1, session=1)
    assert steps(store, "async")[-1] == (6, "fetch")
    assert inspect.iscoroutinefunction(mod.amixed)


def test_async_rewritten_matches_original():
    original = asyncio.run(load(ASYNC, rewritten=False).amixed("v"))
    original_calls = Counter(calls)
    calls.clear()
    assert asyncio.run(load(ASYNC).amixed("v")) == original
    assert calls == original_calls


BLOCKS = """
import fakeio

def fetch(u):
    return fakeio.get(u)

def nested(path, flag):
    count = 0
    with open(path) as fh:
        for line in fh:
            count += 1
        if flag:
            extra = fakeio.note(count)
    maybe_crash("nested")
    return count, fetch(str(count))["n"], extra if flag else None
"""


@pytest.mark.parametrize("flag", [True, False])
def test_block_rebinds_the_names_it_bound_on_replay(store, tmp_path, flag):
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\nc\n")
    mod = load(BLOCKS)
    crash_points.add("nested")
    with pytest.raises(Crash, match=r"^nested$"):
        run(mod.nested, "blk", str(path), flag)
    path.write_text("")
    assert run(mod.nested, "blk", str(path), flag) == (3, 1, 3 if flag else None)
    assert calls == Counter(note=1 if flag else 0, get=1)
    assert steps(store, "blk") == [(1, "nested:open"), (2, "fetch")]


# -- outside workflows the rewritten code is the original code ------------------------------

SCRIPT = """
import time
import fakeio

first = fakeio.get("top")["k"]
fakeio.post("top", first)
stamp = time.time() > 0
time.sleep(0)
total = 0
for row in fakeio.rows("r"):
    total += row
with open(PATH) as fh:
    text = fh.read()
    fakeio.note(text)

def pages(urls):
    for u in urls:
        yield fakeio.get(u)["n"]

listed = list(pages(["a", "bb"]))
"""


def test_outside_workflows_rewritten_code_behaves_like_the_original(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("text")
    source = f"PATH = {str(path)!r}\n" + SCRIPT
    plan = plan_of(source)
    assert {s.kind for s in plan.top_level.sites} == {
        "step",
        "recorded",
        "durable",
        "iterate",
        "block",
    }
    assert plan.get("pages").is_generator and plan.get("pages").sites
    original = load(source, rewritten=False)
    original_calls = Counter(calls)
    calls.clear()
    rewritten = load(source, script=True)
    assert calls == original_calls
    for name in ("first", "stamp", "total", "text", "listed"):
        assert getattr(rewritten, name) == getattr(original, name), name
    assert HELPER in vars(rewritten) and HELPER not in vars(original)
    assert not hasattr(rewritten.pages, "__wrapped__")  # generators are never decorated
    assert inspect.isgeneratorfunction(rewritten.pages)


def test_top_level_is_rewritten_only_for_the_launched_script(tmp_path):
    source = f"PATH = {str(tmp_path / 'in.txt')!r}\n" + textwrap.dedent(SCRIPT)
    (tmp_path / "in.txt").write_text("text")
    plan = plan_of(source)
    module_level = [
        ast.unparse(node)
        for node in rewrite(ast.parse(source), plan, script=False).body
        if not isinstance(node, ast.FunctionDef)
    ]
    assert not [line for line in module_level if "run_step" in line or "recorded" in line]
    as_script = [ast.unparse(n) for n in rewrite(ast.parse(source), plan, script=True).body]
    assert sum("run_step" in line for line in as_script) >= 4


def test_generator_sites_are_recorded_when_iterated_in_a_workflow(store):
    source = """
    import fakeio

    def pages(urls):
        for u in urls:
            yield fakeio.get(u)["n"]

    def save(x):
        return fakeio.post("save", x)

    def flow(urls):
        return save(list(pages(urls)))
    """
    mod = load(source)
    assert kind_of(mod.pages) is None and kind_of(mod.flow) is None  # workflow code, no root
    run(mod.flow, "gen", ["a", "bb"])
    assert steps(store, "gen") == [(1, "pages:fakeio.get"), (2, "pages:fakeio.get"), (3, "save")]


def test_module_without_sites_or_roles_is_left_alone():
    source = "import json\n\ndef f(x):\n    return json.dumps(x)\n"
    tree = ast.parse(source)
    before = ast.dump(tree, include_attributes=True)
    assert ast.dump(rewrite(tree, plan_of(source)), include_attributes=True) == before


def test_opted_out_module_is_not_rewritten():
    source = '"""autodurable: off"""\nimport fakeio\n\ndef f(u):\n    return fakeio.get(u)\n'
    assert kind_of(load(source).f) is None


# -- decorators: ours innermost, frameworks still work ---------------------------------------

DECORATED = """
import functools
import fakeio
from framework import app, command

@app.route("/step")
def handler(u):
    return fakeio.get(u)["k"]

@command()
def cli(u):
    return fakeio.get(u)["n"]

@functools.lru_cache(maxsize=None)
def cached(u):
    return fakeio.get(u)["n"]

class Client:
    @staticmethod
    def static(u):
        return fakeio.get(u)["k"]

    @classmethod
    def klass(cls, u):
        return cls.__name__ + fakeio.get(u)["k"]

    @property
    def prop(self):
        return fakeio.get("prop")["k"]

@app.route("/flow")
def flow(u):
    return (
        handler(u), cli(u), cached(u), cached(u),
        Client.static(u), Client.klass(u), Client().prop,
    )
"""


def test_our_decorator_is_innermost():
    source = textwrap.dedent(DECORATED)
    tree = rewrite(ast.parse(source), plan_of(source))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert len(functions) == 7
    for node in functions:
        last = ast.unparse(node.decorator_list[-1])
        if node.name == "flow":  # an inferred workflow is not a root: not wrapped at all
            assert [ast.unparse(d) for d in node.decorator_list] == ["app.route('/flow')"]
            continue
        assert last == f"{HELPER}.step", node.name
        assert len(node.decorator_list) == 2, node.name


def test_frameworks_wrap_or_register_the_durable_function(store):
    mod = load(DECORATED)
    routes = sys.modules["framework"].app.routes
    assert routes["/step"] is mod.handler and kind_of(mod.handler) == "step"
    assert routes["/flow"] is mod.flow and kind_of(mod.flow) is None
    assert kind_of(mod.cli) is None and kind_of(mod.cli.__wrapped__) == "step"
    assert mod.cli("abc") == ("cli", 3)
    assert isinstance(vars(mod.Client)["static"], staticmethod)
    assert isinstance(vars(mod.Client)["klass"], classmethod)
    assert isinstance(vars(mod.Client)["prop"], property)
    calls.clear()
    expected = ("ab!", ("cli", 2), 2, 2, "ab!", "Clientab!", "prop!")
    assert run(mod.flow, "deco", "ab") == expected
    assert steps(store, "deco") == [
        (1, "handler"),
        (2, "cli"),
        (3, "cached"),
        (4, "Client.static"),
        (5, "Client.klass"),
        (6, "Client.prop"),
    ]
    assert calls == Counter(get=6)  # lru_cache answered the second cached(u)


# -- the rewritten code is still the same code: names, lines, source, pickling ---------------

LINES = """
import fakeio

def failing(u):
    value = fakeio.get(u)
    raise ValueError(value)

def helper(x):
    return fakeio.note(x)

def inline(u):
    x = fakeio.get(u)
    y = fakeio.boom(
        x,
    )
    return helper(y)
"""


def _lines_in(exc: BaseException, filename: str) -> list[int]:
    return [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]


def test_tracebacks_report_the_original_lines(tmp_path):
    path = tmp_path / f"{MODULE}.py"
    mod = load(LINES, path=path)
    with pytest.raises(ValueError) as failing:
        mod.failing("u")
    assert _lines_in(failing.value, str(path))[-1] == 6
    with pytest.raises(Boom) as inline:
        run(mod.inline, "lines", "u")
    assert _lines_in(inline.value, str(path))[-1] == 13
    with pytest.raises(Boom) as outside:  # inside a step: the site runs plainly
        autodurable.step(mod.inline)("u")
    assert _lines_in(outside.value, str(path))[-1] == 13


def test_names_module_pickling_and_source_are_unchanged(tmp_path, monkeypatch):
    path = tmp_path / f"{MODULE}.py"
    source = textwrap.dedent(DECORATED + LINES)
    original = load(source, rewritten=False)
    mod = load(source, path=path, monkeypatch=monkeypatch)
    for name in ("handler", "flow", "failing", "inline"):
        fn, plain = getattr(mod, name), getattr(original, name)
        assert kind_of(fn) == ("step" if name in ("handler", "failing") else None), name
        assert (fn.__name__, fn.__qualname__, fn.__module__) == (
            plain.__name__,
            plain.__qualname__,
            MODULE,
        )
        assert pickle.loads(pickle.dumps(fn)) is fn
        text = inspect.getsource(fn)
        assert text.lstrip().startswith(("def " + name, "@")) and f"def {name}(" in text
        assert text in source
    klass = vars(mod.Client)["klass"].__func__
    assert (klass.__name__, klass.__qualname__) == ("klass", "Client.klass")
    assert inspect.getsource(mod.flow).startswith('@app.route("/flow")\ndef flow(u):')


# -- with-blocks share the names they bind with the code around them --------------------------

SHARED = """
import fakeio

COUNTER = 0

def fetch(u):
    return fakeio.get(u)["n"]

def shares_names(path):
    global COUNTER
    with open(path) as fh:
        data: dict = eval(fh.read())
        COUNTER += len(data)
        try:
            data["missing"]
        except KeyError as exc:
            caught = type(exc).__name__
    maybe_crash("shares")
    return fetch("x" * len(data)), COUNTER, caught

def imports_in_block(path):
    with open(path) as fh:
        import json
        data = json.loads(fh.read())
    return fetch(json.dumps(data))

def assigns_into_io(u):
    fakeio.get(u)["k"] = 1
    fakeio.get(u)["n"] += 1
    return fetch(u)
"""


def test_block_shares_globals_annotated_names_and_replays_them(store, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("{'a': 1, 'b': 2}")
    plan = plan_of(textwrap.dedent(SHARED))
    assert plan.get("shares_names").style == "inline"
    mod = load(SHARED)
    crash_points.add("shares")
    with pytest.raises(Crash, match=r"^shares$"):
        run(mod.shares_names, "shared", str(path))
    assert mod.COUNTER == 2
    path.write_text("{'c': 1, 'd': 2, 'e': 3}")  # read again, COUNTER would be 5 more
    assert run(mod.shares_names, "shared", str(path)) == (2, 2, "KeyError")
    assert mod.COUNTER == 2
    assert steps(store, "shared") == [(1, "shares_names:open"), (2, "fetch")]


def test_block_binds_imports_and_assignment_targets_stay_targets(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"a": 1}')
    original = load(SHARED, rewritten=False)
    expected = (original.imports_in_block(str(path)), original.assigns_into_io("u"))
    original_calls = Counter(calls)
    calls.clear()
    mod = load(SHARED)
    assert kind_of(mod.assigns_into_io) is None  # inline workflow code: not wrapped
    assert (mod.imports_in_block(str(path)), mod.assigns_into_io("u")) == expected
    assert calls == original_calls
    assert not [name for name in vars(mod) if name.startswith("__autodurable_b")]


PROPERTY = """
import fakeio

class Remote:
    @property
    def value(self):
        return fakeio.get("value")["k"]

    @value.setter
    def value(self, new):
        self.local = new

def ping():
    return fakeio.post("ping")[0]

def flow():
    remote = Remote()
    remote.value = 3
    return remote.value, remote.local, ping()
"""


def test_each_definition_of_a_qualname_gets_its_own_decorator(store):
    source = textwrap.dedent(PROPERTY)
    tree = rewrite(ast.parse(source), plan_of(source))
    getter, setter = (
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "value"
    )
    assert ast.unparse(getter.decorator_list[-1]) == f"{HELPER}.step"
    assert ast.unparse(setter.decorator_list[-1]) == "value.setter"
    mod = load(PROPERTY)
    prop = vars(mod.Remote)["value"]
    assert kind_of(prop.fget) == "step" and kind_of(prop.fset) is None
    assert run(mod.flow, "prop") == ("value!", 3, "posted")
    assert steps(store, "prop") == [(1, "Remote.value"), (2, "ping")]


SQL = """
import sqlite3
import fakeio

def notify(x):
    return fakeio.post("notify", x)[0]

def record(path, x):
    conn = sqlite3.connect(path)
    conn.execute("create table if not exists t (x)")
    conn.execute("insert into t values (?)", (x,))
    conn.commit()
    maybe_crash("record")
    count = conn.execute("select count(*) from t").fetchone()[0]
    conn.close()
    return notify(x), count
"""


def test_discarded_handle_calls_are_steps_so_an_insert_is_not_repeated(store, tmp_path):
    mod = load(SQL)
    database = str(tmp_path / "app.db")
    crash_points.add("record")
    with pytest.raises(Crash, match=r"^record$"):
        run(mod.record, "sql", database, 7)
    assert run(mod.record, "sql", database, 7) == ("posted", 1)
    execute, commit = "record:sqlite3.Connection.execute", "record:sqlite3.Connection.commit"
    assert steps(store, "sql") == [
        (1, execute),
        (2, execute),
        (3, commit),
        (4, execute),
        (5, "notify"),  # closing the connection releases it: it runs again, unrecorded
    ]


CLOCK = """
import datetime
import random
import fakeio

def save(x):
    return fakeio.post("save", x)[2]

def stamp():
    day = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    pick = random.Random().randint(1, 10**9)
    maybe_crash("stamp")
    return day, pick, save(day)
"""


def test_a_chain_on_a_clock_or_randomness_is_one_recorded_step(store):
    plan = plan_of(textwrap.dedent(CLOCK))
    assert [(s.kind, s.name) for s in plan.get("stamp").sites] == [
        ("step", "stamp:datetime.datetime.now"),
        ("step", "stamp:random.Random"),
    ]
    mod = load(CLOCK)
    crash_points.add("stamp")
    with pytest.raises(Crash, match=r"^stamp$"):
        run(mod.stamp, "clock")
    first = [s.output for s in store.list_steps("clock")]
    day, pick, saved = run(mod.stamp, "clock")
    assert first == [f'"{day}"', str(pick)] and saved == day
    assert steps(store, "clock") == [
        (1, "stamp:datetime.datetime.now"),
        (2, "stamp:random.Random"),
        (3, "save"),
    ]


STDLIB = ["shutil", "tempfile", "subprocess", "argparse", "asyncio.streams", "http.server"]


@pytest.mark.parametrize("name", STDLIB)
def test_rewritten_real_modules_compile_with_every_function_durable(name):
    """Robustness: real code, every function forced to be a workflow (so all its I/O,
    with-blocks and clocks become sites), still compiles after the rewrite."""
    import importlib.util

    path = importlib.util.find_spec(name).origin
    source = Path(path).read_text(encoding="utf-8")
    io = ["os", "sys", "io", "re", "struct", "select", "time", "self", "len", "str"]
    first = analyse_sources({name: (path, source)}, io=io).modules[name]
    roles = {f"{name}:{f.qualname}": "workflow" for f in first.functions if not f.is_generator}
    plan = analyse_sources({name: (path, source)}, io=io, roles=roles).modules[name]
    kinds = Counter(s.kind for f in plan.functions for s in f.sites)
    assert kinds["step"] + kinds["astep"] > 5
    tree = rewrite(ast.parse(source, filename=path), plan, script=True)
    compile(tree, path, "exec", dont_inherit=True)


ONE_LINERS = """
import fakeio

def save(x): return fakeio.post("save", x)[2]

def flow(u): data = fakeio.get(u)["k"]; maybe_crash("flow"); return save(data)

def outer():
    def inner(v):
        return fakeio.get(v)["n"]
    return inner
"""


def test_sites_on_a_def_line_and_nested_definitions_are_rewritten(store):
    mod = load(ONE_LINERS)
    assert kind_of(mod.save) == "step" and kind_of(mod.flow) is None
    crash_points.add("flow")
    with pytest.raises(Crash, match=r"^flow$"):
        run(mod.flow, "one-line", "u")
    assert run(mod.flow, "one-line", "u") == "u!"
    assert steps(store, "one-line") == [(1, "flow:fakeio.get"), (2, "save")]
    assert calls["get"] == 1  # the site on the def line was recorded, not run again
    inner = mod.outer()
    assert kind_of(inner) == "step" and inner("ab") == 2
