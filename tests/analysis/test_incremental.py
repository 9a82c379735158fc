"""Analysing only the modules an edit changed (`autodurable._analysis._incremental`).

The promise: when `reanalyse` gives plans, they are the plans a fresh analysis of
the edited project gives, for the edited modules and (since they are kept) for
every other one; when the edit changes what other modules see, it gives None.
"""

from __future__ import annotations

import ast
import gc
import textwrap

import pytest

from autodurable._analysis._incremental import Recorded, encode_index, reanalyse
from autodurable._analysis._project import analyse_whole

# A small service: an SDK client built by a factory, passed as a parameter, held
# in an attribute; a registry of tools filled by a decorator from another module;
# Django models related across modules.
PROJECT = {
    "clients": """
        import requests

        class Api:
            def __init__(self, base):
                self.base = base
                self.session = requests.Session()

            def fetch(self, path):
                return self.session.get(self.base + path).json()

        def make_api():
            return Api("http://api.example")
    """,
    "worker": """
        def handle(api, item):
            return api.fetch(f"/items/{item}")
    """,
    "service": """
        from clients import make_api
        from worker import handle

        def run(items):
            api = make_api()
            return [handle(api, item) for item in items]

        def count(items):
            return len(items)
    """,
    "registry": """
        TOOLS = {}

        def tool(fn):
            TOOLS[fn.__name__] = fn
            return fn
    """,
    "tools": """
        import pathlib
        from registry import tool

        @tool
        def read(path):
            return pathlib.Path(path).read_text()
    """,
    "agent": """
        from registry import TOOLS

        def act(name, argument):
            return TOOLS[name](argument)
    """,
    "shop.models": """
        from django.db import models

        class Customer(models.Model):
            name = models.CharField(max_length=50)
    """,
    "orders": """
        from django.db import models
        from shop.models import Customer

        class Order(models.Model):
            customer = models.ForeignKey(Customer, on_delete=models.CASCADE)

        def owner_name(order):
            return order.customer.name

        def orders_of(customer: Customer):
            return list(customer.order_set.all())
    """,
}
PROJECT = {module: textwrap.dedent(text) for module, text in PROJECT.items()}


def trees(sources: dict[str, str]) -> dict[str, tuple[str, ast.Module]]:
    return {
        module: (module.replace(".", "/") + ".py", ast.parse(text))
        for module, text in sources.items()
    }


def whole(sources: dict[str, str]):
    return analyse_whole(trees(sources))


def again(sources: dict[str, str], changed: dict[str, str]):
    """`reanalyse` of the `changed` modules, over the analysis of `sources`."""
    _, analysed = whole(sources)
    edited = trees(changed)
    return reanalyse(encode_index(analysed), Recorded.of(analysed), edited)


def dumped(plan) -> dict[str, str]:
    return {name: module.model_dump_json() for name, module in plan.modules.items()}


@pytest.mark.parametrize("module", sorted(PROJECT))
def test_each_module_analysed_again_alone_gives_the_plan_of_the_whole(module):
    plan, _ = whole(PROJECT)
    found = again(PROJECT, {module: PROJECT[module]})
    assert found is not None, f"{module} analysed alone was refused"
    assert found.modules[module].model_dump_json() == plan.modules[module].model_dump_json()
    assert found.statistics == plan.statistics


EDITS_INSIDE = {
    # Lines added above (every line number moves), a new local, another expression.
    "service": PROJECT["service"].replace(
        "def run(items):\n",
        "# the entry point\n\n\ndef run(items):\n    items = list(items)\n",
    ),
    # Another argument to the same call, and a statement more.
    "worker": PROJECT["worker"].replace(
        'return api.fetch(f"/items/{item}")',
        'path = "/items/" + str(item)\n    return api.fetch(path)',
    ),
    "orders": PROJECT["orders"].replace("order.customer.name", "order.customer.name.upper()"),
}


@pytest.mark.parametrize("module", sorted(EDITS_INSIDE))
def test_an_edit_inside_a_module_is_analysed_alone_and_matches_a_fresh_analysis(module):
    edited = {**PROJECT, module: EDITS_INSIDE[module]}
    found = again(PROJECT, {module: edited[module]})
    fresh, _ = whole(edited)
    assert found is not None
    assert found.modules[module].model_dump_json() == fresh.modules[module].model_dump_json()
    before, _ = whole(PROJECT)
    # What is kept of the other modules is what a fresh analysis gives them.
    assert {k: v for k, v in dumped(before).items() if k != module} == {
        k: v for k, v in dumped(fresh).items() if k != module
    }
    assert found.statistics == fresh.statistics


EDITS_SEEN_BY_OTHERS = {
    "a factory's result changes type": (
        "clients",
        PROJECT["clients"].replace('return Api("http://api.example")', "return None"),
    ),
    "a step no longer does I/O": (
        "clients",
        PROJECT["clients"].replace("return self.session.get(self.base + path).json()", "return {}"),
    ),
    "a class is removed": ("shop.models", "from django.db import models\n"),
    "a relation is removed (its other side was another module's)": (
        "orders",
        PROJECT["orders"].replace(
            "customer = models.ForeignKey(Customer, on_delete=models.CASCADE)", "pass"
        ),
    ),
    "a registering decorator is removed": ("tools", PROJECT["tools"].replace("@tool\n", "")),
    "another type is passed to another module's function": (
        "service",
        PROJECT["service"].replace("handle(api, item)", "handle(Other(), item)")
        + "\nclass Other:\n    pass\n",
    ),
}


@pytest.mark.parametrize("case", sorted(EDITS_SEEN_BY_OTHERS))
def test_an_edit_that_changes_what_other_modules_see_needs_the_whole_project(case):
    module, text = EDITS_SEEN_BY_OTHERS[case]
    assert again(PROJECT, {module: text}) is None


def test_the_refused_edits_do_change_another_modules_plan():
    """The check is not idle: for these edits, keeping the other modules' plans
    would have been wrong."""
    before, _ = whole(PROJECT)
    wrong = []
    for case, (module, text) in EDITS_SEEN_BY_OTHERS.items():
        fresh, _ = whole({**PROJECT, module: text})
        others = [name for name in PROJECT if name != module]
        if any(
            before.modules[name].model_dump_json() != fresh.modules[name].model_dump_json()
            for name in others
        ):
            wrong.append(case)
    assert {
        "a factory's result changes type",
        "a step no longer does I/O",
        "a registering decorator is removed",
    } <= set(wrong)


def test_a_new_module_or_an_index_that_does_not_decode_needs_the_whole_project():
    _, analysed = whole(PROJECT)
    recorded = Recorded.of(analysed)
    assert reanalyse(encode_index(analysed), recorded, trees({"new": "x = 1\n"})) is None
    broken = trees({"service": PROJECT["service"]})
    assert reanalyse(b"not marshal", recorded, broken) is None
    assert reanalyse(encode_index(analysed)[:-5], recorded, broken) is None


def test_an_edit_analysed_alone_is_recorded_for_the_next_one():
    """Two edits in a row: the second starts from what the first recorded."""
    first = {**PROJECT, "service": EDITS_INSIDE["service"]}
    _, analysed = whole(PROJECT)
    index = encode_index(analysed)
    once = reanalyse(index, Recorded.of(analysed), trees({"service": first["service"]}))
    assert once is not None
    second = {**first, "worker": EDITS_INSIDE["worker"]}
    twice = reanalyse(index, once.recorded, trees({"worker": second["worker"]}))
    fresh, _ = whole(second)
    assert twice is not None
    assert twice.modules["worker"].model_dump_json() == fresh.modules["worker"].model_dump_json()
    assert twice.statistics == fresh.statistics


def test_an_analysis_makes_no_reference_cycles():
    """What an analysis leaves is freed by reference counting alone, so the command
    can freeze what it keeps alive (`_hook._cache.collector_paused`) without
    keeping garbage; a recursive closure, for one, would hold syntax trees."""
    whole(PROJECT)  # imports done: their leftovers are not the analysis's
    gc.collect()
    gc.disable()
    try:
        plan, analysed = whole(PROJECT)
        del plan, analysed
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = [type(found).__name__ for found in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert garbage == []
