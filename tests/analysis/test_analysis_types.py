"""The analyser follows types as a reader does: one test per inference rule and per negative.

Each test analyses inline sources and asserts what the rule promises: the role,
the style, and where useful the reason naming the call and its line. Each is
written so that it fails when its rule is taken out (the function would then be
plain, or watched on a call it could not type, or a step for the wrong reason).
"""

from __future__ import annotations

import textwrap

import pytest

from autodurable._analysis import FunctionPlan, ModulePlan, ProjectPlan, analyse_sources


def analyse(sources: dict[str, str], **config) -> ProjectPlan:
    """Analyse ``{module: source}``; packages are modules whose name ends in ``.__init__``."""
    given = {}
    for name, source in sources.items():
        path = name.replace(".", "/") + ".py"
        given[name.removesuffix(".__init__")] = (path, textwrap.dedent(source))
    return analyse_sources(given, **config)


def module(source: str, **config) -> ModulePlan:
    return analyse({"mod": source}, **config).modules["mod"]


def line_of(source: str, text: str) -> int:
    """The line of the dedented `source` holding `text` (exactly one must)."""
    found = [n for n, line in enumerate(textwrap.dedent(source).splitlines(), 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def get(plan: ModulePlan, qualname: str) -> FunctionPlan:
    found = plan.get(qualname)
    assert found is not None, qualname
    return found


def assert_step(plan: FunctionPlan, callee: str, line: int) -> None:
    """A step that decorates, for calling `callee` at `line`."""
    assert (plan.role, plan.style) == ("step", "decorate"), plan.reason
    assert plan.reason == f"calls {callee} at line {line}", plan.reason


def assert_plain(plan: FunctionPlan) -> None:
    """Plain, and not watched either."""
    assert (plan.role, plan.style) == ("plain", "none"), plan.reason


def assert_watched(plan: FunctionPlan, call: str, line: int) -> None:
    assert (plan.role, plan.style) == ("step", "watched"), plan.reason
    assert plan.reason.startswith(f"calls {call} at line {line}, which the analyser cannot type")


# -- 1. parameter annotations ---------------------------------------------------------------

ANNOTATIONS = """
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional, Union

import httpx
import requests
from slack_sdk import WebClient
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from httpx import AsyncClient

def plain(session: Session, q):
    session.execute(q)

def optional(c: Optional[httpx.Client], u):
    return c.post(u)

def bar_none(c: httpx.Client | None, u):
    return c.put(u)

def union_none(c: Union[None, httpx.Client], u):
    return c.patch(u)

def annotated(c: Annotated[httpx.Client, "injected"], u):
    return c.delete(u)

def string(client: "WebClient", channel, text):
    client.chat_postMessage(channel=channel, text=text)

async def type_checking(c: AsyncClient, u):
    return await c.head(u)

def real_union(c: httpx.Client | requests.Session, u):
    return c.post(u)
"""


@pytest.mark.parametrize(
    ("qualname", "callee"),
    [
        ("plain", "sqlalchemy.orm.Session.execute"),
        ("optional", "httpx.Client.post"),
        ("bar_none", "httpx.Client.put"),
        ("union_none", "httpx.Client.patch"),
        ("annotated", "httpx.Client.delete"),
        ("string", "slack_sdk.WebClient.chat_postMessage"),
        ("type_checking", "httpx.AsyncClient.head"),
    ],
)
def test_a_parameter_annotation_names_the_type(qualname, callee):
    line = line_of(ANNOTATIONS, f"def {qualname}(") + 1  # each calls on its first line
    assert_step(get(module(ANNOTATIONS), qualname), callee, line)


def test_a_real_union_of_two_types_names_nothing():
    plan = module(ANNOTATIONS)
    line = line_of(ANNOTATIONS, "def real_union(") + 1
    assert_watched(get(plan, "real_union"), "c.post", line)


# -- 2. FastAPI injection -------------------------------------------------------------------

INJECTION = """
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

app = FastAPI()
engine = create_engine("sqlite://")
SessionLocal = sessionmaker(engine)

def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()

Db = Annotated[Session, Depends(get_db)]

@app.get("/a")
def annotated_default(db: Session = Depends(get_db)):
    return db.execute(text("select 1")).all()

@app.get("/b")
def bare_default(db=Depends(get_db)):
    db.commit()

@app.get("/c")
def in_annotated(db: Annotated[Session, Depends(get_db)]):
    return db.scalars(text("select 2")).all()

@app.get("/d")
def alias(db: Db):
    db.rollback()
"""


@pytest.mark.parametrize(
    ("qualname", "callee", "text"),
    [
        ("annotated_default", "sqlalchemy.orm.Session.execute", "db.execute("),
        ("bare_default", "sqlalchemy.orm.Session.commit", "db.commit()"),
        ("in_annotated", "sqlalchemy.orm.Session.scalars", "db.scalars("),
        ("alias", "sqlalchemy.orm.Session.rollback", "db.rollback()"),
    ],
)
def test_fastapi_injection_types_the_parameter(qualname, callee, text):
    plan = module(INJECTION)
    assert_step(get(plan, qualname), callee, line_of(INJECTION, text))


def test_the_injection_provider_itself_does_no_io():
    # Building a session and closing it is no I/O: the provider stays plain.
    assert_plain(get(module(INJECTION), "get_db"))


# -- 3. return types of the project's functions ---------------------------------------------


def test_a_factory_types_its_callers_variables():
    source = """
        import httpx

        def make_client():
            return httpx.Client(base_url="https://api")

        def use(u):
            c = make_client()
            return c.get(u).json()
        """
    plan = module(source)
    assert_plain(get(plan, "make_client"))
    assert_step(get(plan, "use"), "httpx.Client.get", line_of(source, "c.get(u)"))


def test_an_lru_cache_builder_types_its_callers():
    source = """
        import functools
        import boto3

        @functools.lru_cache
        def s3():
            return boto3.client("s3")

        def upload(bucket, key, data):
            s3().put_object(Bucket=bucket, Key=key, Body=data)
        """
    plan = module(source)
    assert_plain(get(plan, "s3"))
    assert_step(get(plan, "upload"), "boto3.client.put_object", line_of(source, "put_object"))


def test_a_getter_reading_a_dict_cache_types_its_callers():
    source = """
        import boto3

        _clients = {}

        def client(name):
            if name not in _clients:
                _clients[name] = boto3.client(name)
            return _clients[name]

        def enqueue(url, body):
            client("sqs").send_message(QueueUrl=url, MessageBody=body)
        """
    plan = module(source)
    assert_plain(get(plan, "client"))
    assert_step(get(plan, "enqueue"), "boto3.client.send_message", line_of(source, "send_message"))


def test_an_annotated_return_types_the_callers():
    source = """
        import httpx

        REGISTRY = {}

        def http() -> httpx.Client:
            return REGISTRY["http"]

        def ping(u):
            return http().head(u).status_code
        """
    plan = module(source)
    assert_step(get(plan, "ping"), "httpx.Client.head", line_of(source, ".head(u)"))


def test_a_property_returning_a_client_types_its_uses():
    source = """
        import httpx

        class Api:
            @property
            def http(self):
                return httpx.Client(base_url="https://api")

            def send(self, x):
                return self.http.post("/x", json=x).json()
        """
    plan = module(source)
    assert_step(get(plan, "Api.send"), "httpx.Client.post", line_of(source, "self.http.post"))


def test_the_value_of_an_io_call_returned_by_a_function_is_no_type():
    """``load`` returns what ``fh.read()`` gave: a string, not a file. Its caller's
    ``.split()`` is no I/O; the caller is workflow code because ``load`` is a step."""
    source = """
        def load(p):
            return open(p).read()

        def words(p):
            return load(p).split()
        """
    plan = module(source)
    assert_step(get(plan, "load"), "open", line_of(source, "open(p)"))
    found = get(plan, "words")
    assert (found.role, found.style) == ("workflow", "decorate"), found.reason
    assert found.reason == f"calls step mod:load at line {line_of(source, 'load(p).split')}"
    assert found.sites == []


# -- 4. arguments flowing from call sites ---------------------------------------------------


def test_call_sites_that_agree_type_an_unannotated_parameter():
    source = """
        import httpx

        def push(client, x):
            return client.post("/x", json=x)

        def main():
            c = httpx.Client()
            push(c, 1)
            push(client=httpx.Client(), x=2)
        """
    plan = module(source)
    assert_step(get(plan, "push"), "httpx.Client.post", line_of(source, "client.post"))


def test_call_sites_that_disagree_type_nothing():
    source = """
        import httpx
        import requests

        def push(client, x):
            return client.post("/x", json=x)

        def a():
            push(httpx.Client(), 1)

        def b():
            push(requests.Session(), 2)
        """
    plan = module(source)
    assert_watched(get(plan, "push"), "client.post", line_of(source, "client.post"))


def test_arguments_a_partial_binds_flow_into_the_function_it_calls():
    source = """
        from functools import partial

        import httpx

        def read_page(url, http):
            return http.get(url).text

        class Fetcher:
            def fetch(self, url, http):
                return http.get(url).json()

        def tools(http: httpx.Client):
            fetcher = Fetcher()
            read = partial(read_page, http=http)
            return {"read": read, "fetch": partial(fetcher.fetch, http=http)}
        """
    plan = module(source)
    assert_step(get(plan, "read_page"), "httpx.Client.get", line_of(source, "get(url).text"))
    # A bound method: what the partial binds goes to the parameters after self.
    assert_step(get(plan, "Fetcher.fetch"), "httpx.Client.get", line_of(source, "get(url).json"))


# -- 5. module-level, class-level and instance attributes -----------------------------------


def test_a_module_level_client():
    source = """
        import httpx

        http = httpx.Client()

        def fetch(u):
            return http.get(u).json()
        """
    assert_step(get(module(source), "fetch"), "httpx.Client.get", line_of(source, "http.get"))


def test_a_class_attribute_client():
    source = """
        import httpx

        class Api:
            client = httpx.Client()

            def fetch(self, u):
                return self.client.get(u).json()
        """
    plan = module(source)
    assert_step(get(plan, "Api.fetch"), "httpx.Client.get", line_of(source, "self.client.get"))


def test_a_dataclass_field_annotated_with_a_client():
    source = """
        from dataclasses import dataclass

        import httpx

        @dataclass
        class Api:
            client: httpx.Client
            base: str = "/"

            def fetch(self, u):
                return self.client.get(self.base + u).json()
        """
    plan = module(source)
    assert_step(get(plan, "Api.fetch"), "httpx.Client.get", line_of(source, "self.client.get"))


def test_an_attribute_set_from_a_constructor_argument():
    source = """
        import httpx

        class Svc:
            def __init__(self, client):
                self.client = client

            def send(self, x):
                return self.client.post("/x", json=x).json()

        def main():
            svc = Svc(httpx.Client())
            return svc
        """
    plan = module(source)
    assert_step(get(plan, "Svc.send"), "httpx.Client.post", line_of(source, "self.client.post"))
    assert_plain(get(plan, "Svc.__init__"))
    assert_plain(get(plan, "main"))


def test_an_attribute_set_from_an_annotated_init_parameter():
    source = """
        import httpx

        class Svc:
            def __init__(self, client: httpx.Client):
                self.client = client

            def send(self, x):
                return self.client.post("/x", json=x).json()
        """
    plan = module(source)
    assert_step(get(plan, "Svc.send"), "httpx.Client.post", line_of(source, "self.client.post"))


def test_an_attribute_inherited_from_a_project_base_class():
    source = """
        import httpx

        class Base:
            def __init__(self):
                self.http = httpx.Client()

        class Child(Base):
            def fetch(self, u):
                return self.http.get(u).json()
        """
    plan = module(source)
    assert_step(get(plan, "Child.fetch"), "httpx.Client.get", line_of(source, "self.http.get"))


def test_a_django_model_saves_and_queries_through_its_base():
    source = """
        from django.db import models

        class Order(models.Model):
            status = models.CharField(max_length=10)

            def publish(self):
                self.save(update_fields=["status"])

        def open_orders():
            return list(Order.objects.filter(status="open"))
        """
    plan = module(source)
    assert_step(
        get(plan, "Order.publish"), "django.db.models.Model.save", line_of(source, "self.save(")
    )
    # Building the query is lazy; list() runs it.
    assert_step(
        get(plan, "open_orders"), "django.db.models.QuerySet", line_of(source, "Order.objects")
    )


def test_django_querysets_are_lazy_until_evaluated():
    source = """
        from django.db import models

        class Order(models.Model):
            total = models.IntegerField()

        def unpaid():
            return Order.objects.filter(paid=False).order_by("id")

        def unpaid_total():
            return sum(o.total for o in Order.objects.filter(paid=False))

        def how_many():
            return len(Order.objects.all())

        def totals():
            out = []
            for order in Order.objects.exclude(total=0):
                out.append(order.total)
            return out

        def top(limit):
            return list(Order.objects.order_by("-total")[:limit])

        def one(pk):
            return Order.objects.get(pk=pk)

        class OrderQuerySet(models.QuerySet):
            def big(self):
                return self.filter(total__gt=100)
        """
    plan = module(source)
    assert_plain(get(plan, "unpaid"))
    assert_plain(get(plan, "OrderQuerySet.big"))
    for name in ("unpaid_total", "how_many", "totals", "top"):
        assert get(plan, name).role == "step", name
        assert "django.db.models.QuerySet" in get(plan, name).reason, name
    assert_step(get(plan, "one"), "django.db.models.Model.objects.get", line_of(source, ".get("))


def test_a_client_imported_from_another_module_of_the_project():
    project = analyse(
        {
            "clients": """
                import httpx

                http = httpx.Client(base_url="https://api")
                """,
            "app": """
                import clients
                from clients import http

                def by_name(u):
                    return http.get(u).json()

                def by_module(u):
                    return clients.http.post(u).json()
                """,
        }
    )
    app = project.modules["app"]
    assert_step(get(app, "by_name"), "httpx.Client.get", 6)
    assert_step(get(app, "by_module"), "httpx.Client.post", 9)


# -- 6. pathlib -----------------------------------------------------------------------------

PATHS = """
from pathlib import Path

def joined(root, text):
    p = Path(root) / "a" / "b.txt"
    p.write_text(text)

def parent(root):
    target = Path(root) / "out" / "x.txt"
    target.parent.mkdir(parents=True, exist_ok=True)

def suffix(root, text):
    (Path(root) / "data").with_suffix(".json").write_text(text)

def only_joins(a, b):
    return Path(a) / b
"""


@pytest.mark.parametrize(
    ("qualname", "callee", "text"),
    [
        ("joined", "pathlib.Path.write_text", "p.write_text"),
        ("parent", "pathlib.Path.mkdir", ".parent.mkdir("),
        ("suffix", "pathlib.Path.write_text", ".with_suffix("),
    ],
)
def test_paths_built_with_the_operator_and_methods_stay_paths(qualname, callee, text):
    assert_step(get(module(PATHS), qualname), callee, line_of(PATHS, text))


def test_joining_paths_without_io_is_plain():
    assert_plain(get(module(PATHS), "only_joins"))


# -- 7. conditional expressions and ``or`` --------------------------------------------------


def test_a_conditional_expression_whose_branches_agree():
    """Both branches are an SMTP connection: the ``sendmail`` in the loop is typed, so
    the function is inline workflow code with a site for it (not a coarse step
    around an untyped call)."""
    source = """
        import smtplib

        def notify(host, ssl, messages):
            conn = smtplib.SMTP_SSL(host) if ssl else smtplib.SMTP(host)
            for m in messages:
                conn.sendmail("from@x", "to@x", m)
        """
    found = get(module(source), "notify")
    assert (found.role, found.style) == ("workflow", "inline"), found.reason
    assert "cannot type" not in found.reason
    line = line_of(source, "conn.sendmail")
    assert [(s.kind, s.name, s.line) for s in found.sites] == [
        ("step", "notify:smtplib.SMTP.sendmail", line)
    ]


def test_client_or_a_factory():
    source = """
        import httpx

        def make_client():
            return httpx.Client()

        def fetch(u, client=None):
            client = client or make_client()
            return client.get(u).json()
        """
    plan = module(source)
    assert_step(get(plan, "fetch"), "httpx.Client.get", line_of(source, "client.get"))


# -- 8. Celery ------------------------------------------------------------------------------

CELERY = """
from celery import shared_task

@shared_task
def send_email(to):
    return to

def signup(to):
    send_email.delay(to)

def later(to):
    send_email.apply_async(args=(to,), countdown=60)

def build(to):
    return send_email.s(to).set(queue="mail")
"""


def test_sending_a_project_task_is_io():
    plan = module(CELERY)
    assert_step(get(plan, "signup"), "celery.Task.delay", line_of(CELERY, ".delay("))
    assert_step(get(plan, "later"), "celery.Task.apply_async", line_of(CELERY, ".apply_async("))


def test_building_a_signature_without_sending_it_is_plain():
    plan = module(CELERY)
    assert_plain(get(plan, "build"))
    assert_plain(get(plan, "send_email"))


# -- 9. functions passed to be called elsewhere ---------------------------------------------

PASSED = """
import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

def fetch(u):
    return requests.get(u).text

def save(x):
    requests.post("/save", data=x)

def mapped(urls):
    with ThreadPoolExecutor() as pool:
        return list(pool.map(fetch, urls))

def submitted(u):
    with ThreadPoolExecutor() as pool:
        return pool.submit(fetch, u).result()

class Collector:
    def collect(self):
        requests.get("/metrics")

    def start(self):
        worker = threading.Thread(target=self.collect)
        worker.start()

async def in_executor(url):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, requests.get, url)

def newest(paths):
    return sorted(paths, key=os.path.getmtime)

def relay(u):
    resp = requests.get(u)
    return save(resp.text)
"""


@pytest.mark.parametrize(
    ("qualname", "called", "text"),
    [
        ("mapped", "step mod:fetch", "pool.map(fetch"),
        ("submitted", "step mod:fetch", "pool.submit(fetch"),
        ("Collector.start", "step mod:Collector.collect", "target=self.collect"),
    ],
)
def test_a_project_function_passed_to_be_called_makes_a_workflow(qualname, called, text):
    found = get(module(PASSED), qualname)
    assert (found.role, found.style) == ("workflow", "decorate"), found.reason
    assert found.reason == f"calls {called} at line {line_of(PASSED, text)}"


@pytest.mark.parametrize(
    ("qualname", "callee", "text"),
    [
        ("in_executor", "requests.get", "run_in_executor("),
        ("newest", "os.path.getmtime", "key=os.path.getmtime"),
    ],
)
def test_an_io_function_passed_to_be_called_is_io_of_the_caller(qualname, callee, text):
    assert_step(get(module(PASSED), qualname), callee, line_of(PASSED, text))


def test_an_attribute_of_a_value_passed_as_an_argument_is_no_function_reference():
    """``resp.text`` is a string: the mixed function stays inline workflow code, with a
    site for its own ``requests.get``, instead of a coarse step around a 'reference'."""
    found = get(module(PASSED), "relay")
    assert (found.role, found.style) == ("workflow", "inline"), found.reason
    line = line_of(PASSED, "resp = requests.get(u)")
    assert found.reason.startswith(f"calls requests.get at line {line} and the step mod:save")
    assert [(s.kind, s.name, s.line) for s in found.sites] == [("step", "relay:requests.get", line)]


# -- 10. lambdas doing I/O ------------------------------------------------------------------


def test_a_lambda_doing_io_makes_the_function_a_step():
    source = """
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        def fetch_all(urls):
            with ThreadPoolExecutor() as pool:
                return list(pool.map(lambda u: httpx.get(u).text, urls))
        """
    found = get(module(source), "fetch_all")
    line = line_of(source, "lambda u")
    assert_step(found, "httpx.get", line)
    assert any(f"lambda at line {line} calls httpx.get" in note for note in found.notes)


# -- 11. clocks and randomness --------------------------------------------------------------

CLOCKS = """
import random
import secrets
import time

from django.utils import timezone

def format_given(ts, fmt):
    return time.strftime(fmt, time.gmtime(ts))

def seeded(seed):
    return random.Random(seed).random()

def digest_equal(a, b):
    return secrets.compare_digest(a, b)

def format_now(fmt):
    return time.strftime(fmt)

def elapsed(start):
    return time.monotonic() - start

def unseeded():
    return random.Random().random()

def today():
    return timezone.now().date()
"""


@pytest.mark.parametrize("qualname", ["format_given", "seeded", "digest_equal"])
def test_clocks_given_a_time_and_seeded_generators_are_plain(qualname):
    assert_plain(get(module(CLOCKS), qualname))


@pytest.mark.parametrize(
    ("qualname", "callee", "text"),
    [
        ("format_now", "time.strftime", "time.strftime(fmt)"),
        ("elapsed", "time.monotonic", "time.monotonic()"),
        ("unseeded", "random.Random", "random.Random()"),
        ("today", "django.utils.timezone.now", "timezone.now()"),
    ],
)
def test_clocks_and_unseeded_generators_are_nondeterministic(qualname, callee, text):
    assert_step(get(module(CLOCKS), qualname), callee, line_of(CLOCKS, text))


# -- 12. special methods --------------------------------------------------------------------


def test_init_doing_io_is_inline_workflow_code_and_not_decorated():
    source = """
        import requests

        class Config:
            def __init__(self, u):
                self.data = requests.get(u).json()
        """
    found = get(module(source), "Config.__init__")
    line = line_of(source, "requests.get")
    assert (found.role, found.style) == ("workflow", "inline"), found.reason
    assert found.decorated is False
    assert found.reason.startswith(f"special method that calls requests.get at line {line}")
    assert [(s.kind, s.name, s.line) for s in found.sites] == [
        ("step", "Config.__init__:requests.get", line)
    ]


# -- 13. never half-durable -----------------------------------------------------------------

HALF = """
import requests

def save(x):
    requests.post("/save", json=x)

def loop_and_untyped(client, urls, x):
    for u in urls:
        requests.post(u, json=x)
    client.send(x)

def only_untyped(client, x):
    client.send(x)

def step_and_untyped(conn, x):
    save(x)
    conn.commit()
"""


def test_resolved_io_in_a_loop_and_an_untyped_call_make_one_coarse_step():
    found = get(module(HALF), "loop_and_untyped")
    assert (found.role, found.style) == ("step", "coarse"), found.reason
    io_line = line_of(HALF, "requests.post(u, json=x)")
    untyped_line = io_line + 1  # the client.send(x) after the loop
    assert found.reason.startswith(
        f"calls requests.post at line {io_line} inside a loop, and client.send at line "
        f"{untyped_line}, which the analyser cannot type"
    )
    assert found.sites == []


def test_an_untyped_call_alone_is_watched():
    found = get(module(HALF), "only_untyped")
    assert_watched(found, "client.send", line_of(HALF, "def only_untyped(") + 1)


def test_a_workflow_calling_a_step_and_an_untyped_commit_is_watched():
    found = get(module(HALF), "step_and_untyped")
    assert_watched(found, "conn.commit", line_of(HALF, "conn.commit()"))
    assert f"and the step mod:save at line {line_of(HALF, '    save(x)')}" in found.reason


# -- 14. negatives --------------------------------------------------------------------------

NEGATIVES = """
import anthropic
import boto3
import httpx
import openai
import paramiko
import pika
import psycopg2.extensions
import slack_sdk

def azure():
    return openai.AzureOpenAI(api_key="k", azure_endpoint="https://x", api_version="v")

def slack(token):
    return slack_sdk.WebClient(token=token)

def s3():
    return boto3.client("s3")

def dsn(text):
    return psycopg2.extensions.parse_dsn(text)

def properties():
    return pika.BasicProperties(content_type="application/json", delivery_mode=2)

def message(text):
    return anthropic.types.MessageParam(role="user", content=text)

def failure(text):
    return paramiko.SSHException(text), openai.RateLimitError

def strip(s):
    return s.strip()

def collect(items, x):
    items.append(x)

def note(log, x):
    log.info("got %s", x)

def lookup(d, k):
    return d.get(k)

def header(response: httpx.Response):
    return response.headers.get("x")
"""


@pytest.mark.parametrize(
    "qualname",
    [
        "azure",
        "slack",
        "s3",
        "dsn",
        "properties",
        "message",
        "failure",
        "strip",
        "collect",
        "note",
        "lookup",
        "header",
    ],
)
def test_pure_calls_are_plain_and_not_watched(qualname):
    found = get(module(NEGATIVES), qualname)
    assert_plain(found)
    assert found.sites == []


# -- 15. distribution names in [tool.autodurable] io ----------------------------------------


def test_a_distribution_name_in_the_configuration_names_its_package():
    source = """
        import git

        def pull(path):
            git.Repo(path).remote().pull()
        """
    found = get(module(source, io=["gitpython"]), "pull")
    assert_step(found, "git.Repo", line_of(source, "git.Repo(path)"))


def test_a_distribution_whose_import_name_differs_is_mapped():
    source = """
        import yaml

        def parse(text):
            return yaml.safe_load(text)
        """
    assert_plain(get(module(source), "parse"))
    found = get(module(source, io=["PyYAML"]), "parse")
    assert_step(found, "yaml.safe_load", line_of(source, "yaml.safe_load"))


# -- 16. the catalogue's libraries ----------------------------------------------------------

LIBRARIES = [
    (
        "sqlalchemy-session",
        """
        from sqlalchemy.orm import Session

        def f(session: Session, order):
            session.add(order)
            session.commit()  # <-
        """,
        "sqlalchemy.orm.Session.commit",
    ),
    (
        "sqlalchemy-engine",
        """
        import sqlalchemy

        engine = sqlalchemy.create_engine("sqlite://")

        def f():
            engine.dispose()  # <-
        """,
        "sqlalchemy.engine.Engine.dispose",
    ),
    (
        "sqlalchemy-connection",
        """
        from sqlalchemy import text
        from sqlalchemy.engine import Connection

        def f(conn: Connection):
            return conn.execute(text("select 1")).all()  # <-
        """,
        "sqlalchemy.engine.Connection.execute",
    ),
    (
        "sqlmodel",
        """
        from sqlmodel import Session

        def f(engine, hero):
            with Session(engine) as session:
                session.add(hero)
                session.commit()  # <-
        """,
        "sqlmodel.Session.commit",
    ),
    (
        "django-manager",
        """
        from django.db import models

        class Order(models.Model):
            pass

        def f(pk):
            return Order.objects.get(pk=pk)  # <-
        """,
        "django.db.models.Model.objects.get",
    ),
    (
        "django-save",
        """
        from django.db import models

        class Order(models.Model):
            pass

        def f(order: Order):
            order.save()  # <-
        """,
        "django.db.models.Model.save",
    ),
    (
        "gitpython",
        """
        import git

        def f(url, path):
            git.Repo.clone_from(url, path)  # <-
        """,
        "git.Repo.clone_from",
    ),
    (
        "paramiko",
        """
        import paramiko

        def f(host):
            ssh = paramiko.SSHClient()
            ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            ssh.connect(host)  # <-
        """,
        "paramiko.SSHClient.connect",
    ),
    (
        "pysftp",
        """
        import pysftp

        def f(host, path):
            pysftp.Connection(host, username="u").put(path)  # <-
        """,
        "pysftp.Connection",
    ),
    (
        "playwright",
        """
        from playwright.sync_api import Page

        def f(page: Page, url):
            page.goto(url)  # <-
        """,
        "playwright.sync_api.Page.goto",
    ),
    (
        "selenium",
        """
        from selenium import webdriver

        def f(driver: webdriver.Remote, url):
            driver.get(url)  # <-
        """,
        "selenium.webdriver.Remote.get",
    ),
    (
        "confluent-kafka",
        """
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": "k:9092"})

        def f(value):
            producer.produce("topic", value)  # <-
        """,
        "confluent_kafka.Producer.produce",
    ),
    (
        "pycurl",
        """
        import pycurl

        def f(url):
            c = pycurl.Curl()
            c.setopt(c.URL, url)
            c.perform()  # <-
        """,
        "pycurl.Curl.perform",
    ),
    (
        "litellm",
        """
        import litellm

        def f(messages):
            return litellm.completion(model="gpt-4o", messages=messages)  # <-
        """,
        "litellm.completion",
    ),
    (
        "langchain",
        """
        from langchain_openai import ChatOpenAI

        llm = ChatOpenAI(model="gpt-4o")

        def f(prompt):
            return llm.invoke(prompt).content  # <-
        """,
        "langchain_openai.ChatOpenAI.invoke",
    ),
    (
        "pymssql",
        """
        import pymssql

        def f(host):
            pymssql.connect(host, "user", "password", "db")  # <-
        """,
        "pymssql.connect",
    ),
    (
        "cassandra",
        """
        from cassandra.cluster import Cluster

        session = Cluster(["db"]).connect()

        def f(query):
            return session.execute(query).one()  # <-
        """,
        "cassandra.cluster.Session.execute",
    ),
    (
        "influxdb-client",
        """
        from influxdb_client import InfluxDBClient, Point
        from influxdb_client.client.write_api import SYNCHRONOUS

        client = InfluxDBClient(url="http://influx", token="t", org="o")
        write_api = client.write_api(write_options=SYNCHRONOUS)

        def f(value):
            write_api.write(bucket="b", record=Point("m").field("v", value))  # <-
        """,
        "influxdb_client.client.write_api.WriteApi.write",
    ),
    (
        "elasticsearch",
        """
        from elasticsearch import Elasticsearch

        es = Elasticsearch("http://es:9200")

        def f(doc):
            es.index(index="docs", document=doc)  # <-
        """,
        "elasticsearch.Elasticsearch.index",
    ),
    (
        "redis-pipeline",
        """
        import redis

        r = redis.Redis()

        def f(k, v):
            pipe = r.pipeline()
            pipe.execute()  # <-
        """,
        "redis.client.Pipeline.execute",
    ),
    (
        "redis-pubsub",
        """
        import redis

        r = redis.Redis()

        def f(channel):
            pubsub = r.pubsub()
            pubsub.subscribe(channel)  # <-
        """,
        "redis.client.PubSub.subscribe",
    ),
    (
        "flask-sqlalchemy",
        """
        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()

        def f(user):
            db.session.add(user)
            db.session.commit()  # <-
        """,
        "flask_sqlalchemy.SQLAlchemy.session.commit",
    ),
    (
        "perf-counter",
        """
        import time

        def f():
            return time.perf_counter()  # <-
        """,
        "time.perf_counter",
    ),
]


@pytest.mark.parametrize(
    ("source", "callee"), [c[1:] for c in LIBRARIES], ids=[c[0] for c in LIBRARIES]
)
def test_a_typical_call_of_a_catalogued_library_is_io(source, callee):
    assert_step(get(module(source), "f"), callee, line_of(source, "# <-"))


def test_making_an_instance_calls_its_init_and_constructors_that_connect_are_io():
    source = """
        import smtplib

        class Mailer:
            def __init__(self, host):
                self.conn = smtplib.SMTP_SSL(host)
                self.conn.ehlo()

        def make_mailer(host):
            return Mailer(host)
        """
    plan = module(source)
    assert get(plan, "Mailer.__init__").role == "workflow"  # records its I/O in place
    assert get(plan, "make_mailer").role == "workflow"  # calls Mailer.__init__


def test_building_requests_and_lazy_collections_are_not_io_until_used():
    source = """
        import httpx
        import redis
        import boto3

        client = httpx.Client()
        cache = redis.Redis()
        bucket = boto3.resource("s3").Bucket("b")

        def prepare(url):
            return client.build_request("GET", url)

        def queue(keys):
            pipe = cache.pipeline()
            for key in keys:
                pipe.delete(key)
            return pipe

        def flush(keys):
            pipe = cache.pipeline()
            for key in keys:
                pipe.delete(key)
            pipe.execute()

        def under(prefix):
            return bucket.objects.filter(Prefix=prefix)

        def names(prefix):
            return [o.key for o in bucket.objects.filter(Prefix=prefix)]
        """
    plan = module(source)
    for name in ("prepare", "queue", "under"):
        assert_plain(get(plan, name))
    assert get(plan, "flush").role == "step"
    assert get(plan, "names").role == "step"


def test_calls_out_of_a_dispatch_table_call_what_it_holds():
    source = """
        import requests

        def on_paid(event):
            requests.post("https://ledger/paid", json=event)

        def on_refunded(event):
            requests.post("https://ledger/refunded", json=event)

        def ignore(event):
            return None

        HANDLERS = {"paid": on_paid, "refunded": on_refunded, "other": ignore}

        def dispatch(event):
            return HANDLERS[event["type"]](event)

        def dispatch_or_ignore(event):
            handler = HANDLERS.get(event["type"], ignore)
            return handler(event)

        class Agent:
            def __init__(self):
                self.tools = [on_paid, ignore]

            def act(self, index, event):
                return self.tools[index](event)
        """
    plan = module(source)
    for name in ("dispatch", "dispatch_or_ignore", "Agent.act"):
        assert get(plan, name).role == "workflow", name


def test_calls_out_of_a_table_a_function_returns_call_what_it_holds():
    source = """
        from collections.abc import Callable
        import requests

        def on_join(event):
            requests.post("https://chat/welcome", json=event)

        def on_leave(event):
            requests.post("https://chat/bye", json=event)

        def handlers() -> dict[str, Callable[[dict], None]]:
            return {"join": on_join, "leave": on_leave}

        def commands():
            return [on_join, on_leave]

        def dispatch(event):
            handler = handlers().get(event["type"])
            if handler is not None:
                handler(event)

        def run_first(event):
            table = commands()
            table[0](event)

        def describe():
            return sorted(handlers())

        def sizes() -> dict[str, int]:
            return {"join": 1, "leave": 2}
        """
    plan = module(source)
    assert get(plan, "dispatch").role == "workflow"
    assert get(plan, "run_first").role == "workflow"
    for name in ("handlers", "commands", "describe", "sizes"):  # building or reading one
        assert_plain(get(plan, name))


def test_a_table_a_decorator_fills_holds_what_it_decorates():
    sources = {
        "tools": """
            import requests

            TOOLS = {}
            HOOKS = []

            def tool(fn):
                TOOLS[fn.__name__] = fn
                return fn

            def hook(fn):
                HOOKS.append(fn)
                return fn

            @tool
            def search(query):
                return requests.get("https://search", params={"q": query}).json()

            @tool
            def add(a, b):
                return a + b

            @hook
            def notify(text):
                requests.post("https://chat", json={"text": text})
            """,
        "agent": """
            from tools import HOOKS, TOOLS

            class Agent:
                def __init__(self, tools=None):
                    self.tools = tools if tools is not None else TOOLS

                def call_tool(self, name, args):
                    fn = self.tools.get(name)
                    return fn(**args)

            def run_hooks(text):
                for each in HOOKS:
                    each(text)

            def names():
                return sorted(TOOLS)
            """,
    }
    plan = analyse(sources)
    agent, tools = plan.modules["agent"], plan.modules["tools"]
    assert get(agent, "Agent.call_tool").role == "workflow"  # out of the registered tools
    assert get(agent, "run_hooks").role == "workflow"  # out of the registered hooks
    assert get(tools, "search").role == "step"
    for found, name in ((tools, "tool"), (tools, "hook"), (agent, "names")):
        assert_plain(get(found, name))


def test_a_loop_over_a_table_calls_what_it_holds():
    source = """
        import requests

        def audit(event):
            requests.post("https://audit", json=event)

        def count(event):
            return 1

        PIPELINE = [audit, count]
        BY_NAME = {"audit": audit, "count": count}

        def run_pipeline(event):
            for stage in PIPELINE:
                stage(event)

        def run_all(event):
            for handler in BY_NAME.values():
                handler(event)

        def names(event):
            for name in BY_NAME:  # the keys, not the functions
                print(name(event) if callable(name) else name)
        """
    plan = module(source)
    assert get(plan, "run_pipeline").role == "workflow"
    assert get(plan, "run_all").role == "workflow"
    assert_plain(get(plan, "names"))


def test_the_default_of_a_mappings_get_is_returned_not_called():
    source = """
        import requests

        TOOLS = {}

        def search(query):
            return requests.get("https://search", params={"q": query}).json()

        def register(name, fn):
            TOOLS[name] = fn

        def search_tool():
            return TOOLS.get("search", search)

        def ask(name, query):
            tool = TOOLS.get(name, search)
            return tool(query)
        """
    plan = module(source)
    assert_plain(get(plan, "search_tool"))  # it hands the function over
    assert get(plan, "ask").role == "workflow"  # what calls the result calls it


def test_a_callable_annotation_does_not_hide_the_default_clock():
    source = """
        import time
        from typing import Callable

        class TokenBucket:
            def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
                self._clock = clock
                self.rate = rate

            def ready(self) -> bool:
                return self._clock() > self.rate
        """
    plan = module(source)
    assert get(plan, "TokenBucket.ready").role == "step"
    assert "time.monotonic" in get(plan, "TokenBucket.ready").reason


def test_an_annotated_dispatch_table_and_a_lambda_calling_a_step():
    source = """
        from collections.abc import Callable
        from concurrent.futures import ThreadPoolExecutor
        import requests

        def sms(to):
            requests.post("https://sms", json={"to": to})

        HANDLERS: dict[str, Callable[[str], None]] = {"sms": sms}

        def deliver(kind, to):
            HANDLERS[kind](to)

        def push_all(targets):
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda to: sms(to), targets))
        """
    plan = module(source)
    assert get(plan, "deliver").role == "workflow"
    assert get(plan, "push_all").role == "workflow"


def test_random_shuffle_is_randomness_and_getpass_is_input():
    source = """
        import getpass
        import random

        def shuffled(items):
            random.shuffle(items)
            return items

        def ask():
            return getpass.getpass("password: ")
        """
    plan = module(source)
    assert get(plan, "shuffled").role == "step"
    assert_step(get(plan, "ask"), "getpass.getpass", line_of(source, "getpass.getpass("))


def test_a_call_of_a_local_helper_is_a_call_of_that_project_function():
    source = """
    import asyncio
    import aiohttp

    async def fetch(session: aiohttp.ClientSession, url):
        async with session.get(url) as response:
            return await response.text()

    async def fetch_all(session: aiohttp.ClientSession, urls):
        limit = asyncio.Semaphore(8)

        async def one(url):
            async with limit:
                return await fetch(session, url)

        return await asyncio.gather(*(one(url) for url in urls))

    def outer(x):
        def double(y):
            return y * 2
        return double(x)
    """
    plan = module(source)
    assert get(plan, "fetch_all.<locals>.one").role == "workflow"
    gathered = get(plan, "fetch_all")
    called = line_of(source, "return await asyncio.gather")
    assert gathered.role == "workflow"
    assert f"calls workflow mod:fetch_all.<locals>.one at line {called}" in gathered.reason
    assert get(plan, "outer").role == "plain"  # a local helper that does nothing durable


@pytest.mark.parametrize(
    ("module_name", "factory", "keyword"),
    [
        ("sqlalchemy.orm", "sessionmaker", ""),
        ("sqlalchemy.ext.asyncio", "async_sessionmaker", "async "),
    ],
)
def test_a_session_provider_that_commits_on_the_way_out_records_its_transaction(
    module_name, factory, keyword
):
    source = f"""
    from {module_name} import {factory}

    SessionLocal = {factory}()

    {keyword}def transactional():
        {keyword}with SessionLocal.begin() as session:
            yield session
    """
    found = get(module(source), "transactional")
    # A generator: the I/O expression (the transaction) is recorded on its own.
    assert (found.role, found.style) == ("workflow", "inline"), found.reason
    assert f"calls {module_name}.{factory}.begin at line" in found.reason
