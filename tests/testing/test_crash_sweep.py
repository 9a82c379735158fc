"""The crash sweep and the pytest plugin, tested as their users run them: test
files in a pytest session of their own (pytester), on both stores.

A correct workflow passes; a workflow that is not crash-safe fails with a message
naming the boundary: one that reads the clock or randomness outside steps, one
whose step has a non-idempotent effect without an idempotency key, one whose
control flow depends on I/O outside steps."""

from __future__ import annotations

import textwrap

import pytest

# pytester restores sys.modules after each inner session: a module first imported
# there would be imported again by the next test, as new objects (a second copy of
# the runtime's context variables). Everything the inner sessions use is imported
# here first.
import autodurable._control._handle
import autodurable._core._clocks
import autodurable._core._concurrency
import autodurable._core._messages
import autodurable._core._workflows
import autodurable._store._postgres
import autodurable._store._sqlite
import autodurable.testing
import autodurable.testing.plugin  # noqa: F401

pytestmark = pytest.mark.usefixtures("database_url")

# A payment service and a mailer as the test's fakes see them: `effect` is where the
# outside world changes (once per key when the service honours keys).
COMMON = """
import asyncio
import random
import time

import autodurable
from autodurable.testing import crash_sweep, effect, SweepFailure

@autodurable.step
def reserve(order):
    effect("reserve", idempotency_key=autodurable.idempotency_key())
    return f"r-{order}"

@autodurable.step
def charge(order, amount, keyed=True):
    key = autodurable.idempotency_key() if keyed else None
    effect("charge", idempotency_key=key)
    return {"order": order, "paid": amount}

@autodurable.step
def email(order):
    effect("email", idempotency_key=autodurable.idempotency_key())
    return True
"""


# The inner sessions' options: as the outer's addopts, since they run in this process
# (pytest-benchmark, when installed, warns there under xdist, and warnings are errors).
INNER = ("-q", "-p", "no:cacheprovider", "-p", "no:benchmark")


def session(pytester: pytest.Pytester, database_url: str, body: str) -> pytest.RunResult:
    """Run one test file (COMMON + body) in a pytest session of its own."""
    if database_url.startswith("postgresql"):
        pytester._monkeypatch.setenv("AUTODURABLE_TEST_DATABASE_URL", database_url)
    pytester.makepyfile(test_flows=COMMON + textwrap.dedent(body))
    return pytester.runpytest(*INNER)


def test_a_correct_workflow_passes_sync_and_async(pytester, database_url):
    result = session(
        pytester,
        database_url,
        """
        @autodurable.workflow
        def checkout(order, amount):
            reservation = reserve(order)
            paid = charge(order, amount)
            email(order)
            return [reservation, paid]

        @autodurable.step
        async def fetch(n):
            await asyncio.sleep(0)
            effect("fetch", idempotency_key=autodurable.idempotency_key())
            return n * 2

        @autodurable.workflow
        async def gather(count):
            return sum(await asyncio.gather(*[fetch(n) for n in range(count)]))

        def test_checkout(durable):
            report = crash_sweep(checkout, "o1", 990)
            assert report.result == ["r-o1", {"order": "o1", "paid": 990}]
            assert [a.name for a in report.attempts][-1].endswith("email")
            assert report.cases == 6 and report.effects == {"reserve": 1, "charge": 1, "email": 1}

        def test_gather(durable):
            report = crash_sweep(gather, 4)
            assert report.result == 12 and report.cases == 8

        @pytest.mark.crash_sweep(checkout, "o2", amount=5)
        def test_marker(crash_sweep_report):
            assert crash_sweep_report.result[1] == {"order": "o2", "paid": 5}
        """.replace("@pytest", "@__import__('pytest')"),
    )
    result.assert_outcomes(passed=3)


def test_the_clock_read_outside_steps_fails_naming_the_boundary(pytester, database_url):
    result = session(
        pytester,
        database_url,
        """
        @autodurable.workflow
        def nightly(order):
            reserve(order)
            paid = charge(order, int(time.time() * 1000) % 1000 + random.randrange(1000))
            email(order)
            return paid

        def test_nightly(durable):
            crash_sweep(nightly, "o3")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SweepFailure: crash sweep of nightly: crashed before step 3 'email' (its body not "
            "run), the resumed run raised NondeterminismError*step 2: step 'charge' was recorded "
            "here called with other arguments*"
        ]
    )


def test_an_effect_without_an_idempotency_key_fails_naming_the_step(pytester, database_url):
    result = session(
        pytester,
        database_url,
        """
        @autodurable.workflow
        def checkout(order):
            reserve(order)
            return charge(order, 10, keyed=False)

        def test_checkout(durable):
            crash_sweep(checkout, "o4")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*crashed after step 2 '*charge' (its body done, its result not recorded) and "
            "resumed, effect 'charge' happened 2 time(s); without the crash 1: give the call "
            "autodurable.idempotency_key()*"
        ]
    )


def test_control_flow_on_unrecorded_io_fails(pytester, database_url):
    result = session(
        pytester,
        database_url,
        """
        inbox = []

        def reset():
            inbox[:] = ["a", "b", "c"]

        @autodurable.workflow
        def drain():
            done = []
            while inbox:  # reads the outside world outside any step
                item = inbox.pop()
                done.append(reserve(item))
            return done

        def test_drain(durable):
            crash_sweep(drain, reset=reset)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*SweepFailure: crash sweep of drain: crashed *step 1 *"])


def test_the_world_seen_by_observe_is_compared(pytester, database_url):
    result = session(
        pytester,
        database_url,
        """
        sent = []

        @autodurable.step
        def notify(order):
            sent.append(order)  # a mailer without idempotency keys
            return True

        @autodurable.workflow
        def flow(order):
            return notify(order)

        def test_flow(durable):
            crash_sweep(flow, "o5", observe=lambda: list(sent), reset=sent.clear)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [  # (fnmatch reads [...] as a set of characters: the lists are matched around it)
            "*crashed after step 1 'notify' (its body done, its result not recorded) and "
            "resumed, the outside world is *'o5', 'o5'*; without the crash it is *'o5'*"
        ]
    )


FLOWS = """
import autodurable

@autodurable.step
def fetch(n):
    return n + 1

@autodurable.step
def{second}(n):
    return n * 2

@autodurable.workflow(name="pipeline")
def pipeline(n):
    return{second}(fetch(n))
"""


def test_the_replay_option_runs_every_history_of_a_folder_as_a_test(pytester, database_url):
    """Histories of production workflows kept as regression fixtures."""
    if database_url.startswith("postgresql"):
        pytester._monkeypatch.setenv("AUTODURABLE_TEST_DATABASE_URL", database_url)
    pytester.makepyfile(flows=FLOWS.format(second=" double"))
    pytester.syspathinsert()
    histories = pytester.mkdir("histories")
    pytester.makepyfile(
        test_record=f"""
        import autodurable, flows
        from autodurable._control._histories import export_history
        from pathlib import Path

        def test_record(durable):
            assert autodurable.options(flows.pipeline, workflow_id="p1")(3) == 8
            text = __import__("json").dumps(export_history("p1").to_json())
            Path({str(histories / "p1.json")!r}).write_text(text)
        """
    )
    pytester.runpytest(*INNER, "test_record.py").assert_outcomes(passed=1)
    (histories / "broken.json").write_text("{")
    result = pytester.runpytest(*INNER, "--autodurable-replay",
                                str(histories), "flows.py")  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*broken.json: not JSON*"])
    (histories / "broken.json").unlink()
    # The code changes: the recorded history no longer replays.
    pytester.makepyfile(flows=FLOWS.format(second=" triple"))
    for cached in list(pytester.path.glob("__pycache__/flows*")):
        cached.unlink()
    result = pytester.runpytest(*INNER, "--autodurable-replay",
                                str(histories), "flows.py")  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*p1.json: p1: diverges: workflow 'p1', step 2: the recorded history has step "
         "'double' here but the code now calls 'triple'*"]
    )  # fmt: skip
