"""Proxies (every method call a step) and durable clocks, randomness, ids and sleep."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter

import pytest

import autodurable

from ..helpers import Crash, crash_points, maybe_crash

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

calls: Counter[str] = Counter()


class Charges:
    def create(self, amount, key):
        calls["create"] += 1
        if calls["create"] == 1 and amount < 0:
            raise ConnectionError("reset by peer")
        return {"amount": amount, "key": key}


class PaymentClient:
    currency = "EUR"

    def __init__(self):
        self.charges = Charges()
        self._secret = "s3cret"

    def refund(self, charge_id):
        calls["refund"] += 1
        return f"refunded {charge_id}"

    async def status(self):
        calls["status"] += 1
        return "ok"


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()


def test_proxy_method_calls_are_steps_with_options(store):
    client = autodurable.proxy(
        PaymentClient(), retries=autodurable.Retry(max_attempts=2, initial_interval=0)
    )
    assert isinstance(client, PaymentClient)
    assert client.currency == "EUR" and client._secret == "s3cret"

    @autodurable.workflow
    def pay():
        charge = client.charges.create(-5, autodurable.idempotency_key())  # retried once
        refund = client.refund("c1")
        maybe_crash("pay")
        return charge, refund

    crash_points.add("pay")
    with pytest.raises(Crash, match=r"^pay$"):
        autodurable.options(pay, workflow_id="pay")()
    assert autodurable.options(pay, workflow_id="pay")() == (
        {"amount": -5, "key": "pay:1"},
        "refunded c1",
    )
    assert calls == Counter(create=2, refund=1)
    assert [(s.name, s.attempts) for s in store.list_steps("pay")] == [
        ("PaymentClient.charges.create", 2),
        ("PaymentClient.refund", 1),
    ]


def test_proxy_per_call_options_override_proxy_options():
    client = autodurable.proxy(
        PaymentClient(), retries=autodurable.Retry(max_attempts=3, initial_interval=0)
    )

    @autodurable.workflow
    def pay():
        with autodurable.options(retries=0):
            return client.charges.create(-1, "k")

    with pytest.raises(ConnectionError, match=r"^reset by peer$"):
        pay()
    assert calls["create"] == 1


def test_proxy_async_methods_and_custom_name(store):
    client = autodurable.proxy(PaymentClient(), name="payments")

    @autodurable.workflow
    async def check():
        return await client.status()

    assert asyncio.run(autodurable.options(check, workflow_id="s")()) == "ok"
    assert [s.name for s in store.list_steps("s")] == ["payments.status"]


def test_proxy_bad_options_are_rejected():
    with pytest.raises(autodurable.ConfigError, match="timeout"):
        autodurable.proxy(PaymentClient(), timeout=-1)


@autodurable.workflow
def nondeterministic():
    values = (
        autodurable.now(),
        autodurable.now(dt.UTC),
        autodurable.random(),
        autodurable.uuid4(),
    )
    maybe_crash("nondeterministic")
    return values


def test_clock_random_and_uuid_replay_identically(store):
    crash_points.add("nondeterministic")
    with pytest.raises(Crash, match=r"^nondeterministic$"):
        autodurable.options(nondeterministic, workflow_id="nd")()
    first = [autodurable._core._codec.Codec().decode(s.output) for s in store.list_steps("nd")]
    time.sleep(0.01)
    replayed = autodurable.options(nondeterministic, workflow_id="nd")()
    assert list(replayed) == first
    assert isinstance(replayed[0], dt.datetime) and replayed[0].tzinfo is None
    assert replayed[1].tzinfo is dt.UTC
    assert isinstance(replayed[3], uuid.UUID)


def test_durable_functions_are_plain_outside_workflows(store):
    assert abs(autodurable.now() - dt.datetime.now()) < dt.timedelta(seconds=5)
    assert 0 <= autodurable.random() < 1
    assert autodurable.uuid4() != autodurable.uuid4()
    autodurable.sleep(0)
    asyncio.run(autodurable.sleep_async(0))
    assert store.list_workflows() == []


@autodurable.workflow
async def async_sleeper():
    await autodurable.sleep_async(0.2)
    maybe_crash("async_sleeper")
    return "woke"


def test_async_sleep_records_wake_time_and_does_not_sleep_again(store):
    crash_points.add("async_sleeper")
    with pytest.raises(Crash, match=r"^async_sleeper$"):
        asyncio.run(autodurable.options(async_sleeper, workflow_id="zz")())
    (step,) = store.list_steps("zz")
    assert step.name == "autodurable.sleep" and float(step.output) <= time.time()
    started = time.monotonic()
    assert asyncio.run(autodurable.options(async_sleeper, workflow_id="zz")()) == "woke"
    assert time.monotonic() - started < 0.2  # the wake-up time is already past
