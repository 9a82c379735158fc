"""`get_event_async`: the event read for async code, in and out of workflows, on both stores."""

from __future__ import annotations

import asyncio
import threading

import pytest

import autodurable
from autodurable._errors import AutodurableError

from ..helpers import run_workflow


@autodurable.workflow
def announcer(gate: str) -> str:
    autodurable.set_event("phase", "started")
    autodurable.recv(gate, timeout=30)
    autodurable.set_event("phase", "finished")
    return "announced"


@autodurable.workflow
async def async_reader(source: str) -> str:
    return await autodurable.get_event_async(source, "phase", timeout=5)


def test_async_code_awaits_an_event_without_blocking_its_loop(database):
    handle = autodurable.start(autodurable.options(announcer, workflow_id="ann"), "gate")

    async def main() -> tuple[str, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        value = await autodurable.get_event_async("ann", "phase", timeout=30)
        missing = await autodurable.get_event_async("ann", "missing", timeout=0.3)
        ticker.cancel()
        assert missing is None
        return value, ticks

    value, ticks = asyncio.run(main())
    assert value == "started"
    assert ticks >= 5  # the loop ran while the read waited
    threading.Timer(0.1, autodurable.send, ("ann", "go"), {"topic": "gate"}).start()
    assert handle.result(30) == "announced"


def test_in_an_async_workflow_the_read_is_a_recorded_step(database):
    autodurable.start(autodurable.options(announcer, workflow_id="src"), "g")
    autodurable.send("src", "go", topic="g")
    autodurable.get_workflow("src").result(30)
    assert asyncio.run(run_workflow(async_reader, "reader", "src")) == "finished"
    autodurable.get_workflow("src").delete()  # the event is gone: a replay must not need it
    assert asyncio.run(run_workflow(async_reader, "reader", "src")) == "finished"
    assert [s.name for s in autodurable.get_workflow("reader").steps()] == [
        "autodurable.get_event:phase"
    ]


def test_bad_input_is_refused_before_anything_waits(database):
    with pytest.raises(AutodurableError, match="timeout must be a number"):
        autodurable.get_event_async("w", "k", timeout=-1)
    with pytest.raises(AutodurableError, match="an event key must be a non-empty string"):
        autodurable.get_event_async("w", "")
