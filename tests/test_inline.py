"""The helpers that rewritten code calls (autodurable._inline)."""

from __future__ import annotations

import itertools

import autodurable
from autodurable import _inline


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
