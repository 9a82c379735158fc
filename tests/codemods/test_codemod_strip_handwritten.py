"""``codemod --strip`` removes only what make_durable wrote: hand-written decorators,
proxies and options, and the clocks and sleeps inside hand-decorated functions, stay.
Before -> after as libcst ``CodemodTest`` cases, as in test_codemod_strip."""

# (the expected code is what the codemods write; they do not wrap long lines)

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("libcst")

from libcst.codemod import CodemodContext, CodemodTest, transform_module
from libcst.testing.utils import data_provider

from autodurable.codemods._plans import standalone_plan
from autodurable.codemods.make_durable import MakeDurableCommand
from autodurable.codemods.strip_durable import StripDurableCommand

from .test_codemod import Case

HAND_WRITTEN = """
import time

import autodurable
import requests
from payments import Client

client = autodurable.proxy(Client(), retries=3)


@autodurable.step
def fetch(u):
    return requests.get(u).json()


@autodurable.step(retries=3, timeout=10)
def charge(order):
    return client.charge(order, idempotency_key=autodurable.idempotency_key())


@autodurable.step(retries=2, unrecordable="rerun")
def refund(order):
    return client.refund(order)


@autodurable.workflow(name="checkout")
def checkout(order):
    autodurable.sleep(5)
    started = autodurable.now()
    with autodurable.options(timeout=5):
        charge(order)
    return autodurable.options(fetch, retries=5)(order["url"]), started
"""

CASES = {
    "hand_written_stays": Case(HAND_WRITTEN, HAND_WRITTEN),
    "codemod_forms_go_hand_written_ones_stay": Case(
        """
        import autodurable
        import requests

        @autodurable.step(unrecordable="rerun")
        def fetch(u):
            return requests.get(u).json()

        @autodurable.step(unrecordable="error")
        def fetch_strict(u):
            return requests.get(u).json()

        @autodurable.step(unrecordable="rerun", retries=3, timeout=30)
        def charge(payments, order):
            return payments.charge(order)

        @autodurable.watched
        def notify(mailer, order):
            return mailer.send(order)

        @autodurable.workflow
        def report(urls):
            autodurable.sleep(1)
            return [fetch(u) for u in urls]

        def inferred(urls):
            autodurable.sleep(1)
            return report(urls)
        """,
        """
        import autodurable
        import requests
        import time

        def fetch(u):
            return requests.get(u).json()

        def fetch_strict(u):
            return requests.get(u).json()

        def charge(payments, order):
            return payments.charge(order)

        def notify(mailer, order):
            return mailer.send(order)

        @autodurable.workflow
        def report(urls):
            autodurable.sleep(1)
            return [fetch(u) for u in urls]

        def inferred(urls):
            time.sleep(1)
            return report(urls)
        """,
        warnings=["charge: dropped the options of @autodurable.step (retries=..., timeout=...)"],
    ),
    "only_codemod_code_in_a_hand_decorated_function_goes": Case(
        """
        import autodurable
        import autodurable.inline
        import requests

        @autodurable.workflow
        def sync(url):
            data = autodurable.inline.run_step("m:requests.get", lambda: requests.get(url).json())
            autodurable.sleep(1)
            return data
        """,
        """
        import autodurable
        import autodurable.inline
        import requests

        @autodurable.workflow
        def sync(url):
            data = requests.get(url).json()
            autodurable.sleep(1)
            return data
        """,
    ),
}


class StripHandWrittenTest(CodemodTest):
    TRANSFORM = StripDurableCommand

    @data_provider({name: (case,) for name, case in CASES.items()})
    def test_rule(self, case: Case) -> None:
        assert case.after is not None
        self.assertCodemod(case.before, case.after, expected_warnings=case.warnings or [])

    @data_provider({name: (case,) for name, case in CASES.items()})
    def test_idempotent(self, case: Case) -> None:
        assert case.after is not None
        self.assertCodemod(case.after, case.after)


def test_make_then_strip_keeps_the_hand_written_parts():
    """A module with hand-written durable code, made durable and stripped again, is back."""
    before = textwrap.dedent(
        """\
        import autodurable
        import requests


        @autodurable.step(retries=3)
        def charge(order):
            return requests.post("https://pay.example.com", json=order).json()


        def fetch(u):
            return requests.get(u).json()


        @autodurable.workflow
        def checkout(order):
            autodurable.sleep(1)
            return charge(order), fetch(order["url"])
        """
    )
    plan = standalone_plan(before, "shop")
    assert plan is not None
    for unrecordable in ("rerun", "error"):
        made = transform_module(
            MakeDurableCommand(CodemodContext(), unrecordable, module_plan=plan), before
        )
        made_code = made.code
        assert f'@autodurable.step(unrecordable="{unrecordable}")\ndef fetch' in made_code
        stripped = transform_module(StripDurableCommand(CodemodContext()), made_code)
        assert stripped.code == before
