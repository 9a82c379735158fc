"""The static analyser: name resolution, the catalogue, role propagation, reasons.

Sources are given inline (``analyse_sources``) except where discovery on disk is
what is tested (``analyse_project``).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from autodurable._analysis import (
    FunctionPlan,
    ModulePlan,
    ProjectPlan,
    analyse_project,
    analyse_sources,
)


def analyse(sources: dict[str, str], **config) -> ProjectPlan:
    """Analyse ``{module: source}``; packages are modules whose name ends in ``.__init__``."""
    given = {}
    for module, source in sources.items():
        path = module.replace(".", "/") + ".py"
        given[module.removesuffix(".__init__")] = (path, textwrap.dedent(source))
    return analyse_sources(given, **config)


def module(source: str, **config) -> ModulePlan:
    return analyse({"mod": source}, **config).modules["mod"]


def function(source: str, qualname: str, **config) -> FunctionPlan:
    found = module(source, **config).get(qualname)
    assert found is not None, qualname
    return found


def is_step(plan: FunctionPlan, callee: str) -> bool:
    return plan.role == "step" and f"calls {callee} at line" in plan.reason


def is_plain(plan: FunctionPlan) -> bool:
    return plan.role == "plain" and plan.style == "none"


# -- 1. resolution ------------------------------------------------------------------------


def test_import_module():
    plan = module(
        """
        import requests

        def fetch(u):
            return requests.get(u)

        def shadowed(u):
            requests = Local()
            return requests.get(u)

        class Local:
            def get(self, u):
                return u
        """
    )
    assert is_step(plan.get("fetch"), "requests.get")
    assert is_plain(plan.get("shadowed"))


def test_import_module_as_alias():
    plan = module(
        """
        import requests as rq

        def fetch(u):
            return rq.get(u)

        def unbound_original_name(u):
            return requests.get(u)
        """
    )
    assert is_step(plan.get("fetch"), "requests.get")
    assert is_plain(plan.get("unbound_original_name"))


def test_import_dotted_module_then_dotted_call():
    project = analyse(
        {
            "pkg.__init__": "",
            "pkg.util": """
                import requests

                def fetch(u):
                    return requests.get(u)

                def pure(x):
                    return x + 1
                """,
            "app": """
                import urllib.request
                import pkg.util

                def stdlib(u):
                    return urllib.request.urlopen(u).read()

                def project(u):
                    return pkg.util.fetch(u)

                def project_pure(x):
                    return pkg.util.pure(x)
                """,
        }
    )
    app = project.modules["app"]
    assert is_step(app.get("stdlib"), "urllib.request.urlopen")
    assert app.get("project").role == "workflow"
    assert "pkg.util:fetch at line 9" in app.get("project").reason
    assert is_plain(app.get("project_pure"))


def test_from_import_as():
    plan = module(
        """
        from requests import post as send

        def deliver(u):
            return send(u, json={})

        def wrong_name(u):
            return post(u)
        """
    )
    assert is_step(plan.get("deliver"), "requests.post")
    assert is_plain(plan.get("wrong_name"))


def test_module_attribute_calls():
    plan = module(
        """
        import subprocess
        import os

        def run():
            return subprocess.run(["true"]).returncode

        def remove(p):
            os.remove(p)

        def constant():
            return subprocess.PIPE
        """
    )
    assert is_step(plan.get("run"), "subprocess.run")
    assert is_step(plan.get("remove"), "os.remove")
    assert is_plain(plan.get("constant"))


PACKAGE = {
    "pkg.__init__": "",
    "pkg.util": """
        import requests

        def fetch(u):
            return requests.get(u).json()

        def pure(x):
            return x * 2
        """,
    "pkg.a": """
        from . import util

        def via_module(u):
            return util.fetch(u)

        def via_module_pure(x):
            return util.pure(x)
        """,
    "pkg.b": """
        from .util import fetch, pure

        def via_name(u):
            return fetch(u)

        def via_name_pure(x):
            return pure(x)
        """,
    "pkg.sub.__init__": """
        from ..util import fetch as get_it

        def from_parent(u):
            return get_it(u)
        """,
}


def test_relative_imports_inside_a_package():
    project = analyse(PACKAGE)
    a, b, sub = (project.modules[m] for m in ("pkg.a", "pkg.b", "pkg.sub"))
    assert a.get("via_module").role == "workflow"
    assert "step pkg.util:fetch at line 5" in a.get("via_module").reason
    assert is_plain(a.get("via_module_pure"))
    assert b.get("via_name").role == "workflow"
    assert is_plain(b.get("via_name_pure"))
    assert sub.get("from_parent").role == "workflow"


def test_local_inference_of_a_session():
    plan = module(
        """
        import requests

        def fetch(u):
            s = requests.Session()
            return s.get(u).json()

        def make():
            s = requests.Session()
            return s

        def param(s, u):
            return s.get(u)
        """
    )
    assert is_step(plan.get("fetch"), "requests.Session.get")
    assert is_plain(plan.get("make"))  # a constructor alone does no I/O
    assert is_plain(plan.get("param"))


def test_instance_attribute_assigned_in_init():
    plan = module(
        """
        import httpx

        class Api:
            def __init__(self):
                self.client = httpx.Client()
                self.local = Local()

            def send(self, x):
                return self.client.post("/x", json=x).json()

            def local_send(self, x):
                return self.local.post(x)

        class Local:
            def post(self, x):
                return x
        """
    )
    assert is_step(plan.get("Api.send"), "httpx.Client.post")
    assert is_plain(plan.get("Api.local_send"))
    assert is_plain(plan.get("Api.__init__"))


def test_with_open_binds_a_file():
    plan = module(
        """
        with open("log.txt", "a") as LOG:
            pass

        def write(p, x):
            with open(p, "w") as f:
                f.write(x)

        def log(x):
            LOG.write(x)
        """
    )
    assert is_step(plan.get("write"), "open")
    assert is_step(plan.get("log"), "io.TextIOWrapper.write")


def test_async_with_client_session():
    plan = module(
        """
        import aiohttp

        async def fetch(u):
            async with aiohttp.ClientSession() as s:
                r = await s.get(u)
                return await r.text()

        async def session_only():
            async with aiohttp.ClientSession() as s:
                return s.closed
        """
    )
    fetch = plan.get("fetch")
    assert is_step(fetch, "aiohttp.ClientSession.get") and fetch.is_async
    assert is_plain(plan.get("session_only"))


def test_sqlite_connection_methods():
    plan = module(
        """
        import sqlite3

        conn = sqlite3.connect("app.db")

        def insert(x):
            conn.execute("insert into t values (?)", (x,))

        def local():
            c = sqlite3.connect("app.db")
            c.execute("select 1")
            c.close()

        def given(c):
            c.execute("select 1")
        """
    )
    assert is_step(plan.get("insert"), "sqlite3.Connection.execute")
    assert plan.get("local").reason.startswith("calls sqlite3.connect at line 10")
    # An untyped parameter: confirmed at run time, not silently plain.
    assert plan.get("given").style == "watched"
    assert plan.get("given").reason.startswith("calls c.execute at line 15")


def test_pathlib_path_methods():
    plan = module(
        """
        import pathlib
        from pathlib import Path

        def save(p, text):
            pathlib.Path(p).write_text(text)

        def load(p):
            return Path(p).read_text()

        def rename(p):
            return pathlib.Path(p).with_suffix(".bak").name
        """
    )
    assert is_step(plan.get("save"), "pathlib.Path.write_text")
    assert is_step(plan.get("load"), "pathlib.Path.read_text")
    assert is_plain(plan.get("rename"))


def test_module_level_open_shadows_the_builtin():
    plan = module(
        """
        def open(p):
            return p.upper()

        def use(p):
            return open(p).read()
        """
    )
    assert is_plain(plan.get("use"))
    assert is_step(function("def use(p):\n    return open(p).read()\n", "use"), "open")


def test_parameter_shadows_a_module():
    plan = module(
        """
        import requests

        def use(requests, u):
            return requests.get(u)
        """
    )
    assert is_plain(plan.get("use"))


def test_pure_helpers_of_io_modules_are_not_io():
    plan = module(
        """
        import json
        import os
        import httpx
        import requests
        from aiohttp import web

        def encode(x):
            return json.dumps(x)

        def join(a, b):
            return os.path.join(a, b)

        def session():
            return requests.Session()

        def error(u):
            return requests.HTTPError(u)

        def url(u):
            return httpx.URL(u).host

        async def handler(request):
            return web.json_response({"ok": True})
        """
    )
    for name in ("encode", "join", "session", "error", "url", "handler"):
        assert is_plain(plan.get(name)), name


# -- 2. the catalogue -------------------------------------------------------------------------

CATALOGUE = [
    ("", "open('f')", "open"),
    ("", "input('? ')", "input"),
    ("import os", "os.remove('f')", "os.remove"),
    ("import os", "os.listdir('.')", "os.listdir"),
    ("import shutil", "shutil.copy('a', 'b')", "shutil.copy"),
    ("import shutil", "shutil.rmtree('d')", "shutil.rmtree"),
    ("import pathlib", "pathlib.Path('p').read_text()", "pathlib.Path.read_text"),
    ("import pathlib", "pathlib.Path('p').unlink()", "pathlib.Path.unlink"),
    ("import subprocess", "subprocess.run(['ls'])", "subprocess.run"),
    ("import subprocess", "subprocess.check_output(['ls'])", "subprocess.check_output"),
    (
        "import asyncio",
        "asyncio.create_subprocess_exec('ls')",
        "asyncio.create_subprocess_exec",
    ),
    ("import asyncio", "asyncio.open_connection('h', 80)", "asyncio.open_connection"),
    ("import gzip", "gzip.open('f.gz').read()", "gzip.open"),
    ("import socket", "socket.create_connection(('h', 1))", "socket.create_connection"),
    ("import socket", "socket.socket().connect(('h', 1))", "socket.socket.connect"),
    ("import ssl", "ssl.get_server_certificate(('h', 443))", "ssl.get_server_certificate"),
    (
        "import http.client",
        "http.client.HTTPSConnection('h').request('GET', '/')",
        "http.client.HTTPSConnection.request",
    ),
    ("import urllib.request", "urllib.request.urlopen('u')", "urllib.request.urlopen"),
    # SMTP(host) connects: the chain's I/O starts there.
    ("import smtplib", "smtplib.SMTP('h').sendmail('a', 'b', 'm')", "smtplib.SMTP"),
    ("import sqlite3", "sqlite3.connect('db')", "sqlite3.connect"),
    ("import requests", "requests.get('u')", "requests.get"),
    ("import httpx", "httpx.post('u')", "httpx.post"),
    ("import aiohttp", "aiohttp.request('GET', 'u')", "aiohttp.request"),
    ("import urllib3", "urllib3.request('GET', 'u')", "urllib3.request"),
    ("import urllib3", "urllib3.PoolManager().request('GET', 'u')", "urllib3.PoolManager.request"),
    ("import psycopg", "psycopg.connect('dsn')", "psycopg.connect"),
    ("import psycopg2", "psycopg2.connect('dsn')", "psycopg2.connect"),
    ("import asyncpg", "asyncpg.connect('dsn')", "asyncpg.connect"),
    ("import redis", "redis.Redis().get('k')", "redis.Redis.get"),
    (
        "import pymongo",
        "pymongo.MongoClient().db.c.find_one()",
        "pymongo.MongoClient.db.c.find_one",
    ),
    ("import boto3", "boto3.client('s3').put_object(Bucket='b')", "boto3.client.put_object"),
    ("import botocore.session", "botocore.session.get_session()", "botocore.session.get_session"),
    ("import openai", "openai.OpenAI().chat.completions.create()", "openai.OpenAI.chat"),
    ("import anthropic", "anthropic.Anthropic().messages.create()", "anthropic.Anthropic.messages"),
    ("import time", "time.time()", "time.time"),
    ("import datetime", "datetime.datetime.now()", "datetime.datetime.now"),
    ("from datetime import datetime", "datetime.now()", "datetime.datetime.now"),
    ("import random", "random.random()", "random.random"),
    ("import uuid", "uuid.uuid4()", "uuid.uuid4"),
    ("import os", "os.urandom(8)", "os.urandom"),
    ("import secrets", "secrets.token_hex()", "secrets.token_hex"),
]


@pytest.mark.parametrize(("imports", "call", "callee"), CATALOGUE, ids=[c[1] for c in CATALOGUE])
def test_catalogue_families_are_io_or_nondeterministic(imports, call, callee):
    plan = function(f"{imports}\n\ndef f():\n    {call}\n", "f")
    assert plan.role == "step", plan.reason
    assert plan.reason.startswith(f"calls {callee}") and "at line 4" in plan.reason


def test_config_io_names_extend_the_catalogue():
    source = """
        import mycompany.billing
        from mycompany.billing import refund

        def charge(x):
            return mycompany.billing.charge(x)

        def give_back(x):
            refund(x)

        def other(x):
            return mycompany.reports.summary(x)
        """
    plan = module(source, io=["mycompany.billing"])
    assert is_step(plan.get("charge"), "mycompany.billing.charge")
    assert is_step(plan.get("give_back"), "mycompany.billing.refund")
    assert is_plain(plan.get("other"))
    # Without the configuration: an uncatalogued package, confirmed at run time.
    assert module(source).get("charge").style == "watched"


def test_config_roles_force_a_role():
    source = """
        import requests

        def fetch(u):
            return requests.get(u)

        def helper(x):
            return x + 1
        """
    plan = module(source, roles={"mod:fetch": "plain", "mod:helper": "step"})
    assert plan.get("fetch").role == "plain"
    assert "[tool.autodurable.roles]" in plan.get("fetch").reason
    assert plan.get("helper").role == "step" and plan.get("helper").style == "decorate"
    assert "[tool.autodurable.roles]" in plan.get("helper").reason


# -- 3. propagation ---------------------------------------------------------------------------


def test_caller_of_a_step_is_a_workflow_transitively():
    plan = module(
        """
        import requests

        def fetch(u):
            return requests.get(u).json()

        def b(u):
            return fetch(u)

        def a(u):
            return b(u) + 1

        def unrelated(x):
            return x
        """
    )
    assert plan.get("fetch").role == "step"
    assert plan.get("b").role == "workflow" and "step mod:fetch at line 8" in plan.get("b").reason
    assert plan.get("a").role == "workflow" and "workflow mod:b at line 11" in plan.get("a").reason
    assert plan.get("a").style == "decorate"
    assert is_plain(plan.get("unrelated"))


def test_propagation_across_modules():
    project = analyse(
        {
            "io_part": "import requests\n\ndef fetch(u):\n    return requests.get(u)\n",
            "middle": "from io_part import fetch\n\ndef load(u):\n    return fetch(u)\n",
            "top": "import middle\n\ndef main():\n    return middle.load('u')\n",
        }
    )
    assert project.function("middle:load").role == "workflow"
    assert project.function("top:main").role == "workflow"
    assert "middle:load at line 4" in project.function("top:main").reason


def test_mixed_function_is_inline_workflow_with_sites():
    plan = module(
        """
        import requests

        def save(x):
            return requests.post("/save", json=x).status_code

        def mixed(u):
            data = requests.get(u).json()
            return save(data)
        """
    )
    mixed = plan.get("mixed")
    assert (mixed.role, mixed.style) == ("workflow", "inline")
    assert "requests.get at line 8" in mixed.reason and "step mod:save at line 9" in mixed.reason
    assert [(s.kind, s.name, s.line) for s in mixed.sites] == [("step", "mixed:requests.get", 8)]


def test_io_in_a_for_loop_is_inline():
    plan = module(
        """
        import requests

        def each(urls):
            out = []
            for u in urls:
                out.append(requests.get(u).text)
            return out

        def poll(u):
            while not requests.get(u).json()["ready"]:
                pass

        def once(urls):
            return [requests.get(u).text for u in urls]
        """
    )
    for name in ("each", "poll"):
        found = plan.get(name)
        assert (found.role, found.style) == ("workflow", "inline"), name
        assert "inside a loop" in found.reason
        assert [s.kind for s in found.sites] == ["step"]
    assert (plan.get("once").role, plan.get("once").style) == ("step", "decorate")


def test_mixed_function_with_an_uninlineable_block_is_one_coarse_step():
    plan = module(
        """
        import requests

        def save(x):
            return requests.post("/save", data=x)

        def mixed(p):
            with open(p) as f:
                return save(f.read())
        """
    )
    mixed = plan.get("mixed")
    assert (mixed.role, mixed.style) == ("step", "coarse")
    assert "return inside the with-block at line 8" in mixed.reason
    assert "split" in mixed.reason and "mod:save" in mixed.reason


def test_generators_doing_io_are_never_decorated():
    plan = module(
        """
        import requests

        def pages(urls):
            for u in urls:
                yield requests.get(u).json()

        def lines(p):
            with open(p) as f:
                yield from f
        """
    )
    pages, lines = plan.get("pages"), plan.get("lines")
    assert pages.is_generator and (pages.role, pages.style) == ("workflow", "inline")
    assert pages.sites
    assert lines.is_generator and (lines.role, lines.style) == ("plain", "unsafe")
    assert "yield" in lines.reason


def test_lambda_doing_io_is_reported():
    plan = module(
        """
        import requests

        def fetch_all(urls):
            return list(map(lambda u: requests.get(u).text, urls))
        """
    )
    (note,) = plan.get("fetch_all").notes
    assert "lambda at line 5" in note and "requests.get" in note


def test_thunks_of_recorded_expressions_are_not_reported_as_lambdas():
    """Codemodded code records an expression through a lambda: that one is fine."""
    plan = module(
        """
        import autodurable
        import autodurable.inline
        import requests

        @autodurable.workflow
        def fetch(url):
            return autodurable.inline.run_step("fetch:requests.get", lambda: requests.get(url))
        """
    )
    fetch = plan.get("fetch")
    assert fetch.style == "manual" and fetch.notes == []


def test_a_byte_order_mark_does_not_stop_the_analysis(tmp_path):
    source = b"import requests\n\ndef get(u):\n    return requests.get(u)\n"
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbf" + source)
    plan = analyse_project(tmp_path)
    assert plan.errors == {}
    assert plan.modules["bom"].get("get").role == "step"


def test_init_doing_io_records_its_io_in_place_and_is_not_wrapped():
    plan = module(
        """
        import requests

        class Config:
            def __init__(self, u):
                self.data = requests.get(u).json()

        class Raw:
            def __init__(self, u):
                self.data = requests.get(u, timeout=(t := 5)).json()
        """
    )
    init = plan.get("Config.__init__")
    assert (init.role, init.style, init.decorated) == ("workflow", "inline", False)
    assert [s.kind for s in init.sites] == ["step"]
    # Where the I/O cannot be a site, it stays plain and says so.
    raw = plan.get("Raw.__init__")
    assert is_plain(raw)
    assert any("__init__ does I/O" in note for note in raw.notes)


def test_method_changing_state_with_io_is_not_a_plain_step():
    plan = module(
        """
        import requests

        class Cache:
            def refresh(self, u):
                self.data = requests.get(u).json()

            def reload(self, p):
                with open(p) as f:
                    self.text = f.read()
                    return len(self.text)

            def read(self, u):
                return requests.get(u).json()
        """
    )
    refresh, reload = plan.get("Cache.refresh"), plan.get("Cache.reload")
    assert (refresh.role, refresh.style) == ("workflow", "inline")
    assert "assigns self.data at line 6" in refresh.reason
    assert (reload.role, reload.style) == ("plain", "unsafe")
    assert (plan.get("Cache.read").role, plan.get("Cache.read").style) == ("step", "decorate")


def test_manual_decorators_are_respected():
    plan = module(
        """
        import autodurable
        from autodurable import workflow

        @autodurable.step(retries=3)
        def charge(x):
            return x

        @workflow
        def order(x):
            return x
        """
    )
    assert (plan.get("charge").role, plan.get("charge").style) == ("step", "manual")
    assert (plan.get("order").role, plan.get("order").style) == ("workflow", "manual")


def test_opted_out_module_is_all_plain():
    project = analyse(
        {
            "legacy": '"""Old code. autodurable: off"""\nimport requests\n\n'
            "def fetch(u):\n    return requests.get(u)\n",
            "user": "from legacy import fetch\n\ndef use(u):\n    return fetch(u)\n",
        }
    )
    legacy = project.modules["legacy"]
    assert legacy.opted_out and legacy.top_level is None
    assert legacy.get("fetch").role == "plain"
    assert project.function("user:use").role == "plain"


def test_syntax_error_is_reported_and_others_are_analysed():
    project = analyse(
        {
            "broken": "def f(:\n    pass\n",
            "fine": "import requests\n\ndef g():\n    requests.get('u')\n",
        }
    )
    assert "broken" not in project.modules
    assert "broken.py" in project.errors and "line 1" in project.errors["broken.py"]
    assert project.function("fine:g").role == "step"


REASONS = """
import random
import requests
import time

def fetch(u):
    return requests.get(u).json()

def stamp():
    return time.time()

def mixed(u):
    x = requests.get(u)
    return fetch(x)

def loop(us):
    return [requests.post(u).status_code for u in us]

def each(us):
    for u in us:
        requests.delete(u)

def caller(u):
    return mixed(u)

def coarse(p):
    with open(p) as f:
        return fetch(f.read())

def draws():
    return random.random() + fetch("u")["n"]
"""


def test_every_io_based_reason_names_the_callee_and_its_line():
    lines = REASONS.splitlines()
    plan = module(REASONS)
    checked = 0
    for found in plan.functions:
        pattern = r"(?:calls|and the) (?:step |workflow )?([\w.:]+) at line (\d+)"
        for callee, line in re.findall(pattern, found.reason):
            name = callee.rpartition(":")[2].rpartition(".")[2]
            assert name in lines[int(line) - 1], (found.qualname, callee, line)
            checked += 1
        if found.role != "plain":
            assert re.search(r"calls .+ at line \d+", found.reason), found
    assert checked == 11


# -- discovery on disk ------------------------------------------------------------------------


def test_analyse_project_discovers_modules_and_skips_environments(tmp_path: Path):
    files = {
        "app.py": "from pkg.util import fetch\n\ndef main():\n    return fetch('u')\n",
        "pkg/__init__.py": "",
        "pkg/util.py": "import requests\n\ndef fetch(u):\n    return requests.get(u)\n",
        "pkg/broken.py": "def (\n",
        "pkg/generated.py": "import requests\n\ndef g():\n    requests.get('u')\n",
        ".venv/pyvenv.cfg": "",
        ".venv/lib/site.py": "x = 1\n",
        "venv/pyvenv.cfg": "",
        "venv/lib/other.py": "x = 1\n",
        "__pycache__/junk.py": "x = 1\n",
        "not-a-module.py": "x = 1\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    project = analyse_project(tmp_path, exclude=["pkg/generated.py"])
    assert sorted(project.modules) == ["app", "pkg", "pkg.util"]
    assert list(project.errors) == [str(tmp_path / "pkg" / "broken.py")]
    assert project.function("app:main").role == "workflow"
    assert project.for_path(tmp_path / "pkg" / "util.py").module == "pkg.util"
    assert project.for_path(tmp_path / "elsewhere.py") is None


# -- definitions the rewrite could not move, and qualnames defined twice ---------------------


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (["x = super().parse(f.read())"], "a super() call"),
        (["def inner():", "    return f.read()"], "a definition of inner"),
        (["del f"], "a del statement"),
    ],
)
def test_blocks_that_cannot_become_functions_make_the_method_coarse(block, problem):
    block = ("\n" + " " * 20).join(block)
    plan = module(
        f"""
        import requests

        def save(x):
            return requests.post("/", data=x)

        class Reader(Base):
            def load(self, p):
                with open(p) as f:
                    {block}
                return save(p)
        """
    )
    load = plan.get("Reader.load")
    assert (load.role, load.style) == ("step", "coarse")
    assert f"{problem}" in load.reason and "with-block at line 9" in load.reason


def test_super_inside_an_io_expression_is_not_inlined():
    plan = module(
        """
        import requests

        def save(x):
            return requests.post("/", data=x)

        class Api(Base):
            def load(self, u):
                data = requests.get(super().url(u)).json()
                return save(data)
        """
    )
    load = plan.get("Api.load")
    assert (load.role, load.style) == ("step", "coarse")
    assert "super() call inside an I/O expression at line 9" in load.reason


def test_a_qualname_defined_twice_gets_a_plan_per_definition():
    plan = module(
        """
        import sys
        from typing import overload
        import requests

        class Remote:
            @property
            def value(self):
                return requests.get("/value").json()

            @value.setter
            def value(self, new):
                self.local = new

        if sys.platform == "win32":
            def fetch(u):
                return requests.get(u).text
        else:
            def fetch(u):
                return u

        @overload
        def get(u: int) -> int: ...
        @overload
        def get(u: str) -> str: ...
        def get(u):
            return requests.get(u).json()

        def use(u):
            return fetch(u), get(u)
        """
    )
    value = [(f.line, f.role) for f in plan.functions if f.qualname == "Remote.value"]
    assert value == [(8, "step"), (12, "plain")]
    fetch = [(f.line, f.role) for f in plan.functions if f.qualname == "fetch"]
    assert fetch == [(16, "step"), (19, "plain")]
    get = [(f.line, f.role) for f in plan.functions if f.qualname == "get"]
    assert get == [(23, "plain"), (25, "plain"), (26, "step")]
    assert plan.get("use").role == "workflow"  # one definition of each is a step


def test_plans_are_built_without_pydantic_validation_and_share_no_lists():
    from autodurable._analysis import _plan

    assert _plan._constructor is _plan._construct  # the fast path checked out at import
    a = _plan._plan(module="m", qualname="f", line=1, role="plain", style="none", reason="r")
    b = _plan._plan(module="m", qualname="g", line=2, role="plain", style="none", reason="r")
    assert a.sites is not b.sites and a.notes is not b.notes
    assert a == FunctionPlan.model_validate(a.model_dump())


def test_a_match_on_a_singleton_is_walked_without_error():
    plan = module(
        """
        import requests

        def check(flag, u):
            match flag:
                case True:
                    return requests.get(u).text
                case None:
                    return ""
        """
    )
    assert is_step(plan.get("check"), "requests.get")
