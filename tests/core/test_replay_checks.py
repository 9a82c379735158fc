"""What a replay checks against the record, beyond a step's name and position.

A workflow whose code now returns before replaying everything that was
recorded for it says so (its leftover steps are not run again).
"""

from __future__ import annotations

import logging

import pytest

import autodurable

from ..helpers import Crash, crash_points, maybe_crash, run_workflow

pytestmark = pytest.mark.usefixtures("database")

effects: list[str] = []
short_path = [False]


@autodurable.step
def charge(invoice: str) -> str:
    effects.append(invoice)
    return f"charged {invoice}"


@autodurable.workflow
def billing(invoices: list[str]) -> list[str]:
    done = []
    for invoice in invoices:
        done.append(charge(invoice))
        if short_path[0]:
            return done  # the code changed: it now stops after the first invoice
        maybe_crash(f"after {invoice}")
    return done


@pytest.fixture(autouse=True)
def _fresh():
    effects.clear()
    short_path[0] = False
    yield
    short_path[0] = False


def test_returning_with_recorded_steps_left_over_is_reported(caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    crash_points.add("after c")
    with pytest.raises(Crash):
        run_workflow(billing, "bill", ["a", "b", "c", "d"])
    assert effects == ["a", "b", "c"]
    short_path[0] = True
    assert run_workflow(billing, "bill", ["a", "b", "c", "d"]) == ["charged a"]
    assert effects == ["a", "b", "c"]  # nothing ran again
    warned = [r.getMessage() for r in caplog.records if "returned after" in r.getMessage()]
    assert len(warned) == 1
    assert "workflow bill" in warned[0] and "returned after 1 step(s)" in warned[0]
    assert "but 2 more were recorded" in warned[0] and "from step 2, 'charge'" in warned[0]


def test_a_replay_that_uses_every_recorded_step_says_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="autodurable")
    crash_points.add("after b")
    with pytest.raises(Crash):
        run_workflow(billing, "full", ["a", "b", "c"])
    assert run_workflow(billing, "full", ["a", "b", "c"]) == [
        "charged a",
        "charged b",
        "charged c",
    ]
    assert effects == ["a", "b", "c"]
    assert not [r for r in caplog.records if "returned after" in r.getMessage()]


def _charge_elsewhere(amount: int) -> str:
    effects.append(f"refund {amount}")
    return f"refunded {amount}"


# A step of the same name in another module (as after moving code around).
_charge_elsewhere.__module__ = "refunds"
_charge_elsewhere.__qualname__ = "charge"
refunds_charge = autodurable.step(_charge_elsewhere)
use_refunds = [False]


@autodurable.workflow
def settle(amount: int) -> list[str]:
    first = (refunds_charge if use_refunds[0] else charge)(str(amount))
    maybe_crash("after first")
    return [first, charge("fee")]


def test_a_step_of_the_same_name_from_another_module_is_not_replayed():
    use_refunds[0] = False
    crash_points.add("after first")
    with pytest.raises(Crash):
        run_workflow(settle, "settle", 5)
    use_refunds[0] = True  # the code now calls refunds.charge at the same place
    try:
        with pytest.raises(autodurable.NondeterminismError) as info:
            run_workflow(settle, "settle", 5)
    finally:
        use_refunds[0] = False
    assert info.value.module == "refunds"
    assert "step 'charge' here was recorded from a function of that name in another " in str(
        info.value
    )
    assert effects == ["5"]  # nothing ran again, nothing ran in its place
    assert run_workflow(settle, "settle", 5) == ["charged 5", "charged fee"]  # the old code
