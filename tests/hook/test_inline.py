"""The helpers that rewritten code calls (autodurable.inline)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools

import autodurable
from autodurable import inline as _inline
from autodurable._core._decorators import kind_of, workflow_name


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

    @_inline.root
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

    step, flow = _inline.astep(fetch), _inline.aroot(fetch)
    assert inspect.iscoroutinefunction(step) and inspect.iscoroutinefunction(flow)
    assert asyncio.run(step()) == 7 and asyncio.run(flow()) == 7  # outside workflows: plain
    assert (step.__name__, step.__qualname__) == ("fetch", fetch.__qualname__)
    assert (kind_of(step), kind_of(flow), kind_of(fetch)) == ("step", "workflow", None)
    assert workflow_name(flow) == f"{__name__}:{fetch.__qualname__}"


async def _fetch_twice(n: int) -> list[int]:
    return [await _afetch(i) for i in range(n)]


async def _afetch_body(i: int) -> int:
    _add_calls.append(i)
    return i * 10


_afetch = _inline.astep(_afetch_body)
_fetch_flow = _inline.aroot(_fetch_twice)


def test_inferred_async_wrappers_record_and_replay(store):
    _add_calls.clear()
    run = autodurable.options(_fetch_flow, workflow_id="ainf")
    assert asyncio.run(run(2)) == [0, 10]
    assert [s.name for s in store.list_steps("ainf")] == ["_afetch_body"] * 2
    assert asyncio.run(autodurable.options(_fetch_flow, workflow_id="ainf")(2)) == [0, 10]
    assert _add_calls == [0, 1]
