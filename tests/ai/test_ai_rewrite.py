"""`autodurable ai rewrite` against a real local chat-completions server with scripted replies.

The server is stdlib ``http.server`` in a thread speaking the OpenAI
chat-completions protocol; the client under test is the real one (urllib).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from autodurable._ai._rewrite import write_checked
from autodurable._ai._settings import resolve
from autodurable._analysis import analyse_sources
from autodurable._cli._main import main
from autodurable._errors import ConfigError

KEY = "sk-test-3f9a1c-secret"

ORDERS = '''\
"""Orders."""
import requests


def fetch_rates(url):
    return requests.get(url, timeout=10).json()


def charge_card(payments, order):
    return payments.charge(amount=order["cents"], source=order["card"])


def notify(order):
    requests.post("https://hooks.example.com/orders", json=order, timeout=10)


def total(order, rates):
    return order["cents"] * rates["EUR"]


def process(order, payments):
    rates = fetch_rates("https://rates.example.com")
    charge = charge_card(payments, order)
    notify(order)
    return charge["id"], total(order, rates)
'''

VALID = {
    "summary": "charge_card charges through a client passed in: a step with a key.",
    "roles": [{"function": "charge_card", "role": "step", "reason": "payments.charge moves money"}],
    "io": [{"function": "charge_card", "call": "payments.charge", "reason": "payment API"}],
    "options": [
        {"function": "charge_card", "retries": 3, "timeout": 30, "reason": "remote, can be slow"}
    ],
    "idempotency_keys": [
        {"function": "charge_card", "call": "payments.charge", "reason": "charge once"}
    ],
}
MALFORMED = '{"roles": [{"function": "charge_card", "role": "step",'
UNKNOWN = {"roles": [{"function": "charge_payment", "role": "step", "reason": "moves money"}]}
HTTP_LEFT = {
    "roles": [
        {"function": "charge_card", "role": "step", "reason": "moves money"},
        {"function": "notify", "role": "plain", "reason": "fire and forget"},
    ]
}
BROKEN_SPLIT = {
    "splits": [
        {
            "function": "process",
            "code": "def process(order, payments):\n    rates = fetch_rates(\n",
            "reason": "separate the rates",
        }
    ]
}


# -- the server -----------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer: content, or a delay before it, or an HTTP error."""

    content: str = ""
    delay: float = 0.0
    status: int = 200


def plan(data: dict[str, Any]) -> Reply:
    return Reply(json.dumps(data))


@dataclass
class ChatServer:
    """A chat-completions endpoint that answers from a script and records every request."""

    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if not server.replies:
                    return self._send(500, {"error": {"message": "no more scripted replies"}})
                reply = server.replies.pop(0)
                time.sleep(reply.delay)
                if reply.status != 200:
                    return self._send(reply.status, {"error": {"message": reply.content}})
                message = {"role": "assistant", "content": reply.content}
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model"),
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:  # the client gave up waiting (the timeout test)
                    pass

        return Handler

    def messages(self, index: int) -> list[dict[str, str]]:
        return self.requests[index]["body"]["messages"]


@pytest.fixture
def chat() -> Iterator[Any]:
    """Start a scripted chat server: ``chat(reply, ...)`` returns it (its .url ends in /v1)."""
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(*replies: Reply) -> ChatServer:
        scripted = ChatServer(list(replies))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), scripted.handler())
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        started.append((httpd, thread))
        scripted.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        return scripted

    yield start
    for httpd, thread in started:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small project; returns the path of shop/orders.py. No endpoint in the environment."""
    for name in ("AUTODURABLE_AI_BASE_URL", "AUTODURABLE_AI_MODEL", "AUTODURABLE_AI_API_KEY",
                 "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    path = tmp_path / "shop" / "orders.py"
    path.write_text(ORDERS)
    return path


def rewrite(server: ChatServer, path: Path, *extra: str, monkeypatch: Any) -> int:
    monkeypatch.setenv("AUTODURABLE_AI_API_KEY", KEY)
    return main(["ai", "rewrite", str(path), "--base-url", server.url, "--model", "m", *extra])


def roles_of(text: str) -> dict[str, tuple[str, str]]:
    found = analyse_sources({"shop.orders": ("shop/orders.py", text)}).modules["shop.orders"]
    return {f.qualname: (f.role, f.style) for f in found.functions}


# -- the loop -------------------------------------------------------------------------------


def test_a_valid_plan_is_verified_and_shown_but_not_written(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(VALID))
    assert rewrite(server, project, monkeypatch=monkeypatch) == 0
    out, err = capsys.readouterr()
    assert project.read_text() == ORDERS  # no --write: nothing written
    assert '+@autodurable.step(unrecordable="rerun", retries=3, timeout=30)' in out
    assert "+    return payments.charge(amount=order[\"cents\"], source=order[\"card\"], " \
        "idempotency_key=autodurable.idempotency_key())" in out  # fmt: skip
    assert "charge_card: role step: payments.charge moves money" in out
    assert "fetch_rates: role step: calls requests.get at line 6" in out  # the analyser's own
    assert "nothing written: --write applies the changes" in out
    # One request, as the protocol says, with the key and the module's context.
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "m"
    assert request["body"]["response_format"] == {"type": "json_object"}
    system, user = request["body"]["messages"]
    assert system["role"] == "system" and '"RewritePlan"' in system["content"]
    assert "10 |     return payments.charge(" in user["content"]
    assert "- fetch_rates (line 5): step/decorate: calls requests.get at line 6" in user["content"]
    assert (
        "- charge_card, line 10: calls payments.charge on `payments`, a parameter of unknown "
        "type: the analyser cannot tell whether it does I/O" in user["content"]
    )
    assert KEY not in out + err


def test_write_writes_the_verified_text(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(VALID))
    assert rewrite(server, project, "--write", monkeypatch=monkeypatch) == 0
    text = project.read_text()
    ast.parse(text)
    roles = roles_of(text)
    assert roles["charge_card"] == ("step", "manual")  # written as a decorator
    assert roles["fetch_rates"] == ("step", "manual")
    assert roles["process"] == ("workflow", "decorate")  # workflow code, not a root: no decorator
    assert "idempotency_key=autodurable.idempotency_key()" in text
    out = capsys.readouterr().out
    assert "1 module(s) written" in out and "  written" in out


def test_malformed_json_is_sent_back_with_the_exact_error(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(Reply(MALFORMED), plan(VALID))
    assert rewrite(server, project, monkeypatch=monkeypatch) == 0
    assert len(server.requests) == 2
    first = server.messages(0)
    again = server.messages(1)
    assert again[:2] == first  # the same conversation, continued
    assert again[2] == {"role": "assistant", "content": MALFORMED}
    assert again[3]["role"] == "user"
    assert (
        "- malformed JSON: Expecting property name enclosed in double quotes at line 1 column 55"
        in again[3]["content"]
    )
    out = capsys.readouterr().out
    assert "(round 2)" in out and "rejected before: 1 plan(s)" in out


def test_a_plan_naming_an_unknown_function_is_sent_back(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(UNKNOWN), plan(VALID))
    assert rewrite(server, project, monkeypatch=monkeypatch) == 0
    feedback = server.messages(1)[3]["content"]
    assert (
        "roles[0]: there is no function charge_payment in this module (its functions: "
        "charge_card, fetch_rates, notify, process, total)" in feedback
    )


def test_a_plan_leaving_an_http_call_in_workflow_code_is_sent_back(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(HTTP_LEFT), plan(VALID))
    assert rewrite(server, project, "--write", monkeypatch=monkeypatch) == 0
    feedback = server.messages(1)[3]["content"]
    assert (
        "notify is not a step but calls requests.post at line 14, and the workflow process "
        "calls it at line 24: that runs again on every replay; make notify a step" in feedback
    )
    assert roles_of(project.read_text())["notify"] == ("step", "manual")  # the second plan


def test_gives_up_after_the_bound_and_writes_nothing(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(UNKNOWN), plan(HTTP_LEFT), plan(VALID))
    code = rewrite(server, project, "--write", "--max-rounds", "2", monkeypatch=monkeypatch)
    assert code == 1
    assert len(server.requests) == 2  # the bound, not one more
    assert project.read_text() == ORDERS
    out, err = capsys.readouterr()
    assert "gave up: no verified plan after 2 round(s)" in out
    assert "notify is not a step" in out  # the last problems, said
    assert "+@autodurable" not in out  # no diff of a rejected plan
    assert "1 gave up" in out
    assert "round 1: plan rejected: roles[0]: there is no function charge_payment" in err


def test_a_timeout_of_the_endpoint_gives_up_cleanly(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(Reply(json.dumps(VALID), delay=3))
    started = time.monotonic()
    code = rewrite(server, project, "--write", "--timeout", "0.5", monkeypatch=monkeypatch)
    assert time.monotonic() - started < 2.5
    assert code == 1
    assert len(server.requests) == 1
    assert project.read_text() == ORDERS
    out = capsys.readouterr().out
    assert f"failed: no answer from {server.url}/chat/completions within 0.5 s" in out


def test_code_that_does_not_parse_is_sent_back_and_never_written(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(BROKEN_SPLIT), plan(VALID))
    assert rewrite(server, project, "--write", monkeypatch=monkeypatch) == 0
    feedback = server.messages(1)[3]["content"]
    assert (
        "splits[0] (process): the code does not parse: '(' was never closed (line 2 of the "
        "code)" in feedback
    )
    ast.parse(project.read_text())


def test_a_split_is_applied_and_verified(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    split = {
        "splits": [
            {
                "function": "process",
                "code": (
                    "def process(order, payments):\n"
                    "    charge = charge_card(payments, order)\n"
                    "    notify(order)\n"
                    "    return charge['id'], priced(order)\n\n\n"
                    "def priced(order):\n"
                    "    return total(order, fetch_rates('https://rates.example.com'))\n"
                ),
                "reason": "the rates belong to pricing",
            }
        ],
        "roles": [{"function": "charge_card", "role": "step", "reason": "moves money"}],
    }
    server = chat(plan(split))
    assert rewrite(server, project, "--write", monkeypatch=monkeypatch) == 0
    roles = roles_of(project.read_text())
    assert roles["priced"] == ("workflow", "decorate")  # the new helper calls a step
    assert roles["process"] == ("workflow", "decorate")
    assert "process: split (new code): the rates belong to pricing" in capsys.readouterr().out
    assert len(server.requests) == 1


def test_the_write_barrier_refuses_text_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("x = 1\n")
    why = write_checked(str(path), "x = 1\n", "def broken(:\n")
    assert why is not None and why.startswith("not written: the new text would not parse")
    assert path.read_text() == "x = 1\n"
    assert write_checked(str(path), "x = 1\n", "x = 2\n") is None
    assert path.read_text() == "x = 2\n"


def test_an_http_error_is_reported_without_the_key(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(Reply(f"Incorrect API key provided: {KEY}.", status=401))
    assert rewrite(server, project, monkeypatch=monkeypatch) == 1
    out, err = capsys.readouterr()
    assert "answered HTTP 401: Incorrect API key provided: ***." in out
    assert KEY not in out + err


# -- configuration --------------------------------------------------------------------------


def test_endpoint_settings_come_from_options_environment_and_pyproject() -> None:
    table = {"base_url": "http://table/v1", "model": "table-model", "api_key_env": "SHOP_KEY"}
    env = {"OPENAI_BASE_URL": "http://openai/v1", "OPENAI_API_KEY": "k-openai",
           "SHOP_KEY": "k-shop", "OPENAI_MODEL": "openai-model"}  # fmt: skip
    found = resolve({}, env, table)
    assert (found.base_url, found.model) == ("http://table/v1", "table-model")
    assert found.api_key is not None and found.api_key.get_secret_value() == "k-shop"
    assert found.describe() == "table-model at http://table/v1 (key from SHOP_KEY)"
    assert "k-shop" not in repr(found)
    env |= {"AUTODURABLE_AI_MODEL": "env-model", "AUTODURABLE_AI_API_KEY": "k-env"}
    found = resolve({"base_url": "http://option/v1/"}, env, table)
    assert (found.base_url, found.model) == ("http://option/v1", "env-model")
    assert found.api_key is not None and found.api_key.get_secret_value() == "k-env"
    found = resolve({}, {"OPENAI_API_KEY": "k", "OPENAI_MODEL": "gpt"}, {})
    assert (found.base_url, found.model) == ("https://api.openai.com/v1", "gpt")
    local = resolve({"model": "llama3"}, {}, {"base_url": "http://localhost:11434/v1"})
    assert local.api_key is None and local.describe().endswith("(no key)")
    with pytest.raises(ConfigError, match="no model given"):
        resolve({}, {}, {})
    with pytest.raises(ConfigError, match=r"api_key does not belong in pyproject\.toml"):
        resolve({}, {}, {"model": "m", "api_key": "sk-x"})
    with pytest.raises(ConfigError, match="max_rounds"):
        resolve({}, {}, {"model": "m", "max_rounds": 0})


def test_the_pyproject_table_is_enough(
    chat: Any, project: Path, capsys: Any, monkeypatch: Any
) -> None:
    server = chat(plan(VALID))
    pyproject = project.parent.parent / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "shop"\n\n[tool.autodurable.ai]\n'
        f'base_url = "{server.url}"\nmodel = "shop-model"\napi_key_env = "SHOP_KEY"\n'
    )
    monkeypatch.setenv("SHOP_KEY", KEY)
    assert main(["ai", "rewrite", str(project)]) == 0
    (request,) = server.requests
    assert request["body"]["model"] == "shop-model"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert "asking shop-model at " in capsys.readouterr().err


def test_a_plan_from_a_file_needs_no_model(project: Path, tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(UNKNOWN))
    assert main(["ai", "rewrite", str(project), "--plan", str(bad), "--write"]) == 1
    assert project.read_text() == ORDERS
    assert "rejected: the plan was rejected: roles[0]: there is no function" in (
        capsys.readouterr().out
    )
    good = tmp_path / "good.json"
    good.write_text(json.dumps(VALID))
    assert main(["ai", "rewrite", str(project), "--plan", str(good), "--write"]) == 0
    assert roles_of(project.read_text())["charge_card"] == ("step", "manual")


def test_without_a_model_the_command_says_how_to_give_one(project: Path, capsys: Any) -> None:
    assert main(["ai", "rewrite", str(project)]) == 2
    assert "no model given: pass --model" in capsys.readouterr().err


def test_without_the_extra_the_commands_name_it(
    project: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def absent(name: str, *args: Any) -> Any:
        return None if name in ("libcst", "mcp") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", absent)
    assert main(["ai", "rewrite", str(project), "--model", "m"]) == 2
    assert "needs libcst, which is not installed: pip install 'autodurable[ai" in (
        capsys.readouterr().err
    )
    assert main(["mcp"]) == 2
    err = capsys.readouterr().err
    assert "autodurable mcp needs mcp, libcst, which is not installed" in err
    assert "pip install 'autodurable[ai" in err
    assert main(["ai", "prompt"]) == 0  # the guide needs no extra


# -- what the verifier refuses, and what it does not blame on a plan ---------------------------


@pytest.mark.parametrize(
    ("proposed", "problem"),
    [
        (
            {"roles": [{"function": "fetch_rates", "role": "plain", "reason": "rates are cheap"}]},
            "fetch_rates is not a step but calls requests.get at line 6, and the workflow "
            "process calls it at line 22",
        ),
        (
            {"options": [{"function": "total", "retries": 2, "reason": "just in case"}]},
            "options for total: options apply to steps, and total would be plain code",
        ),
        (
            {
                "idempotency_keys": [
                    {"function": "charge_card", "call": "payments.refund", "reason": "refund once"}
                ]
            },
            "charge_card makes no call to payments.refund (its calls: payments.charge (line 10))",
        ),
        (
            {
                "idempotency_keys": [
                    {"function": "charge_card", "call": "payments.charge", "reason": "charge once"}
                ]
            },
            "idempotency_keys[0]: charge_card is neither a step nor a workflow",
        ),
        (
            {"io": [{"function": "charge_card", "call": "payments.charge", "reason": "payments"}]},
            "io[0]: payments.charge does I/O (payments), but charge_card is not a step",
        ),
        (
            {
                "splits": [
                    {
                        "function": "process",
                        "code": "def process(order):\n    return 1\n",
                        "reason": "simpler",
                    }
                ]
            },
            "splits[0] (process): process must keep its signature (order, payments)",
        ),
        (
            {
                "splits": [
                    {
                        "function": "process",
                        "reason": "a helper",
                        "code": "def process(order, payments):\n    return total(order, {})\n\n"
                        "def total(order, rates):\n    return 0\n",
                    }
                ]
            },
            "the helper total would replace a name the module already defines",
        ),
    ],
)
def test_wrong_or_unsafe_plans_are_refused_with_the_exact_problem(
    project: Path, tmp_path: Path, capsys: Any, proposed: dict[str, Any], problem: str
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(proposed))
    assert main(["ai", "rewrite", str(project), "--plan", str(saved), "--write"]) == 1
    assert problem in capsys.readouterr().out
    assert project.read_text() == ORDERS


def test_a_plan_that_is_not_the_schema_is_refused(
    project: Path, tmp_path: Path, capsys: Any
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps({"roles": [{"function": "total", "role": "durable"}]}))
    assert main(["ai", "rewrite", str(project), "--plan", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "roles[0].role: Input should be 'step', 'workflow' or 'plain' (got \"durable\")" in err
    assert "roles[0].reason: Field required" in err


def test_a_workflow_whose_io_cannot_be_recorded_inline_is_refused(
    project: Path, tmp_path: Path, capsys: Any
) -> None:
    config = project.parent / "config.py"
    config.write_text(
        "def read_config(path):\n    with open(path) as fh:\n        return fh.read()\n"
    )
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(
        {"roles": [{"function": "read_config", "role": "workflow", "reason": "orchestrates"}]}
    ))  # fmt: skip
    assert main(["ai", "rewrite", str(config), "--plan", str(saved), "--write"]) == 1
    assert (
        "read_config is a workflow but calls open at line 2 outside any step: that runs again "
        "on every replay; move it into a step" in capsys.readouterr().out
    )


LEGACY = """\
import autodurable
import requests


@autodurable.workflow
def sync(url):
    return requests.get(url, timeout=10).json()


def refund(payments, cents):
    return payments.refund(amount=cents)
"""


def test_problems_the_module_had_before_are_shown_not_blamed_on_the_plan(
    project: Path, tmp_path: Path, capsys: Any
) -> None:
    legacy = project.parent / "legacy.py"
    legacy.write_text(LEGACY)
    already = (
        "sync is a workflow but calls requests.get at line 7 outside any step: that runs "
        "again on every replay; move it into a step"
    )
    assert main(["ai", "context", str(legacy)]) == 0
    context = capsys.readouterr().out
    assert (
        f"Problems the module has already (fixing them is welcome, not required):\n\n- {already}"
        in context
    )
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(
        {"roles": [{"function": "refund", "role": "step", "reason": "moves money back"}]}
    ))  # fmt: skip
    assert main(["ai", "rewrite", str(legacy), "--plan", str(saved), "--write"]) == 0
    assert f"already in the module: {already}" in capsys.readouterr().out
    assert "@autodurable.step" in legacy.read_text()
