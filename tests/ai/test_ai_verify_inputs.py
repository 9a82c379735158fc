"""A plan that makes a workflow of a function taking a client is refused: the workflow's
inputs could not be recorded, so it would run unrecorded and fail at its first
``idempotency_key()``. The problem says how to pass the client differently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("libcst")

from autodurable._ai._apply import apply_plan
from autodurable._ai._project import load_project
from autodurable._ai._rewrite import ACCEPTED, rewrite_module
from autodurable._ai._schema import plan_from_data
from autodurable._cli._main import main

ORDERS = """\
import requests


def charge_card(payments, order):
    return payments.charge(amount=order["cents"], source=order["card"])


def process(order, payments):
    charge = charge_card(payments, order)
    return charge["id"]


def sync(session: requests.Session, url):
    return session.get(url, timeout=10).json()


def checkout(order, payments_url):
    payments = make_client(payments_url)
    return process(order, payments)


def make_client(url):
    return requests.Session()
"""

CLIENT_WORKFLOW = {
    "roles": [
        {"function": "charge_card", "role": "step", "reason": "moves money"},
        {"function": "process", "role": "workflow", "reason": "the entry point"},
    ],
    "idempotency_keys": [
        {"function": "charge_card", "call": "payments.charge", "reason": "charge once"}
    ],
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    path = tmp_path / "shop" / "orders.py"
    path.write_text(ORDERS)
    return path


def _apply(path: Path, data: dict[str, Any]) -> Any:
    project = load_project(path)
    module = project.module_of(path)
    assert module is not None
    return apply_plan(project, module, plan_from_data(data))


def test_a_workflow_taking_a_client_passed_on_to_a_step_is_refused(project: Path) -> None:
    candidate = _apply(project, CLIENT_WORKFLOW)
    assert not candidate.ok
    (problem,) = candidate.problems
    assert problem.startswith(
        "roles[1]: process is a workflow, but its parameter `payments` is passed to "
        "charge_card at line 9, used as a client (payments.charge at line "
    )  # the call's line changed: the key was added to it
    assert "), which cannot be recorded as a workflow input" in problem
    assert "fail at its first autodurable.idempotency_key()" in problem
    assert (
        "create the client inside the workflow or a step, pass its configuration instead "
        "(a URL, a name), or make process a step" in problem
    )


def test_a_workflow_whose_parameter_is_annotated_as_a_client_is_refused(project: Path) -> None:
    candidate = _apply(
        project, {"roles": [{"function": "sync", "role": "workflow", "reason": "a root"}]}
    )
    (problem,) = candidate.problems
    assert problem.startswith(
        "roles[0]: sync is a workflow, but its parameter `session` is a requests.Session"
    )


def test_passing_the_configuration_instead_is_accepted(project: Path) -> None:
    fixed = {
        "roles": [
            *CLIENT_WORKFLOW["roles"][:1],
            {"function": "checkout", "role": "workflow", "reason": "takes the URL"},
        ],
        "idempotency_keys": CLIENT_WORKFLOW["idempotency_keys"],
    }
    candidate = _apply(project, fixed)
    assert candidate.ok, candidate.problems
    assert "@autodurable.workflow" in candidate.text


def test_the_rewrite_loop_sends_the_problem_back_and_takes_the_fix(project: Path) -> None:
    replies = [
        json.dumps(CLIENT_WORKFLOW),
        json.dumps({"roles": [CLIENT_WORKFLOW["roles"][0]]}),  # the model makes it a step only
    ]
    seen: list[list[dict[str, str]]] = []

    def ask(messages: list[dict[str, str]]) -> str:  # a scripted model: no LLM is called
        seen.append(messages)
        return replies[len(seen) - 1]

    loaded = load_project(project)
    module = loaded.module_of(project)
    assert module is not None
    outcome = rewrite_module(loaded, module, ask=ask, max_rounds=2)
    assert outcome.status == ACCEPTED and outcome.rounds == 2
    feedback = seen[1][-1]["content"]
    assert "its parameter `payments`" in feedback and "pass its configuration" in feedback


def test_the_command_line_refuses_it_and_writes_nothing(
    project: Path, tmp_path: Path, capsys: Any
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(CLIENT_WORKFLOW))
    assert main(["ai", "rewrite", str(project), "--plan", str(saved), "--write"]) == 1
    assert "its parameter `payments` is passed to charge_card" in capsys.readouterr().out
    assert project.read_text() == ORDERS
