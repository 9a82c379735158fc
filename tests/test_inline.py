"""The helpers that rewritten code calls (autodurable._inline)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools

import pytest

import autodurable
from autodurable import _inline
from autodurable._decorators import kind_of, workflow_name


def test_iterate_is_lazy_outside_workflows():
    endless = itertools.count()
    assert _inline.run_iterate("loop", lambda: endless) is endless  # not read to the end


def test_iterate_records_a_list_in_workflow_code(store):
    reads = []

    def rows():
        reads.append(1)
        yield from ("a", "b")

    @autodurable.workflow
    def loop():
        return [row for row in _inline.run_iterate("loop:rows", rows)]

    assert autodurable.options(loop, workflow_id="it")() == ["a", "b"]
    (step,) = store.list_steps("it")
    assert (step.name, step.output) == ("loop:rows", '["a","b"]')
    assert reads == [1]


@dataclasses.dataclass
class Ledger:
    owner: str

    @_inline.workflow
    def total(self, n: int) -> int:
        return sum(_add(i) for i in range(n))


@_inline.step
def _add(i: int) -> int:
    _add_calls.append(i)
    return i


_add_calls: list[int] = []


def test_inferred_wrappers_record_like_the_decorators(store):
    _add_calls.clear()
    ledger = Ledger("ann")
    assert autodurable.options(ledger.total, workflow_id="inf")(3) == 3
    assert [s.name for s in store.list_steps("inf")] == ["_add"] * 3
    record = store.get_workflow("inf")
    assert record.name == f"{__name__}:Ledger.total"
    assert "ann" in record.inputs  # the instance of a method is recorded as an input
    assert autodurable.options(ledger.total, workflow_id="inf")(3) == 3
    assert _add_calls == [0, 1, 2]  # the finished workflow's steps did not run again


def test_inferred_wrappers_keep_what_the_function_is():

    async def fetch() -> int:
        return 7

    step, flow = _inline.step(fetch), _inline.workflow(fetch)
    assert inspect.iscoroutinefunction(step) and inspect.iscoroutinefunction(flow)
    assert asyncio.run(step()) == 7 and asyncio.run(flow()) == 7  # outside workflows: plain
    assert (step.__name__, step.__qualname__) == ("fetch", fetch.__qualname__)
    assert (kind_of(step), kind_of(flow), kind_of(fetch)) == ("step", "workflow", None)
    assert workflow_name(flow) == f"{__name__}:{fetch.__qualname__}"


def test_inferred_wrappers_refuse_generators_and_wrap_other_callables():
    def rows():
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        _inline.step(rows)
    with pytest.raises(TypeError, match="generator function"):
        _inline.workflow(rows)

    class Tool:
        @_inline.step
        @staticmethod
        def double(x: int) -> int:
            return 2 * x

    assert Tool.double(4) == 8 and Tool().double(5) == 10
