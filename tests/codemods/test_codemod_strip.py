"""`StripDurableCommand` as libcst ``CodemodTest`` cases, and the import helpers both codemods use.

Every rule before -> after and after -> after (idempotence), and strip taking
the output of make_durable (the cases of test_codemod) back to its input.
"""

# ruff: noqa: E501
# (the expected code is what the codemods write; they do not wrap long lines)

from __future__ import annotations

import ast

import libcst as cst
from libcst.codemod import CodemodContext, CodemodTest, transform_module
from libcst.testing.utils import data_provider

from autodurable.codemods._imports import add_imports, remove_unused
from autodurable.codemods.strip_durable import StripDurableCommand

from .test_codemod import MAKE, Case, _fixture

STRIP = {
    "options": Case(
        """
        import autodurable

        @autodurable.step(name="charge", unrecordable="rerun", retries=3, timeout=10)
        def charge(order, key):
            return order, key

        @autodurable.workflow(unrecordable="rerun")
        def checkout(order):
            return charge(order, autodurable.idempotency_key())
        """,
        """
        import autodurable

        def charge(order, key):
            return order, key

        def checkout(order):
            return charge(order, autodurable.idempotency_key())
        """,
        warnings=[
            "charge: dropped the options of @autodurable.step (retries=..., timeout=...)",
            "still uses autodurable.idempotency_key(): it has no plain equivalent and is left as is",
        ],
    ),
    "alias": Case(
        """
        import autodurable as ad
        from autodurable import step

        @step(unrecordable="rerun")
        def ping():
            return 1

        @ad.workflow(unrecordable="error")
        def wait():
            ad.sleep(1)
            return ping()
        """,
        """
        import time

        def ping():
            return 1

        def wait():
            time.sleep(1)
            return ping()
        """,
    ),
    "proxy": Case(
        """
        import autodurable
        from payments import Client

        client = autodurable.proxy(Client(), retries=3)

        def pay(order):
            return autodurable.options(client.charge, retries=5)(order)

        def pay_all(orders):
            with autodurable.options(timeout=5):
                return [pay(o) for o in orders]
        """,
        """
        import autodurable
        from payments import Client

        client = autodurable.proxy(Client(), retries=3)

        def pay(order):
            return autodurable.options(client.charge, retries=5)(order)

        def pay_all(orders):
            with autodurable.options(timeout=5):
                return [pay(o) for o in orders]
        """,
        warnings=["still uses `with autodurable.options(...)`: left as is"],
    ),
    "names_taken": Case(
        """
        import autodurable
        from datetime import datetime

        time = 3

        @autodurable.workflow(unrecordable="rerun")
        def stamp():
            autodurable.sleep(time)
            return autodurable.now()
        """,
        """
        from datetime import datetime
        import time as _time

        time = 3

        def stamp():
            _time.sleep(time)
            return datetime.now()
        """,
    ),
    "none": Case(
        """
        import json
        """,
        None,
    ),
}

# Where strip(make(before)) gives `before` back exactly; the others differ in ways
# the strip docstring owns up to (imports come back at the end of the import
# block, dropped annotations stay dropped). Hand-written decorators, proxies and
# options stay ("proxy" above; tests/codemods/test_codemod_strip_handwritten.py).
ROUND_TRIPS = [
    "step", "workflow", "bare", "innermost", "expressions", "block_global", "coarse",
    "generator", "fstring", "unicode",
]  # fmt: skip


class StripDurableTest(CodemodTest):
    TRANSFORM = StripDurableCommand

    @data_provider({name: (case,) for name, case in STRIP.items()})
    def test_rule(self, case: Case) -> None:
        if case.after is None:
            self.assertCodemod(case.before, case.before, expected_skip=True)
            return
        self.assertCodemod(case.before, case.after, expected_warnings=case.warnings or [])

    @data_provider({name: (case,) for name, case in STRIP.items()})
    def test_idempotent(self, case: Case) -> None:
        after = case.after or case.before
        # What is left refers to autodurable only where nothing plain can stand in:
        # it is reported again, and left again.
        left = [w for w in case.warnings or [] if w.startswith("still uses")]
        skip = "autodurable" not in after
        self.assertCodemod(after, after, expected_skip=skip, expected_warnings=[] if skip else left)

    @data_provider({name: (name,) for name in ROUND_TRIPS})
    def test_strip_takes_make_durable_back(self, name: str) -> None:
        case = MAKE[name]
        assert case.after is not None
        self.assertCodemod(case.after, case.before)

    @data_provider({name: (case,) for name, case in MAKE.items() if case.after})
    def test_strip_leaves_plain_python(self, case: Case) -> None:
        assert case.after is not None
        result = transform_module(StripDurableCommand(CodemodContext()), _fixture(case.after))
        code = getattr(result, "code", _fixture(case.after))
        if "autodurable" in case.before:  # written by hand: it stays
            self.assertEqual(code.count("autodurable"), case.before.count("autodurable"))
        else:
            self.assertNotIn("autodurable", code)
        self.assertEqual(_names(code), _names(_fixture(case.before)))


def _names(code: str) -> list[str]:
    """The functions a module defines, in order (the structure strip must keep)."""
    return [
        n.name
        for n in ast.walk(ast.parse(code))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_imports_go_after_the_docstring_future_and_import_block():
    module = cst.parse_module(
        '"""Doc."""\nfrom __future__ import annotations\nimport os\n\nx = os.sep\n'
    )
    added = add_imports(module, ["autodurable", "os", ("time", "_time"), "autodurable"])
    assert added.code == (
        '"""Doc."""\nfrom __future__ import annotations\nimport os\nimport autodurable\n'
        "import time as _time\n\nx = os.sep\n"
    )
    assert add_imports(added, ["autodurable"]) is added  # already there: nothing to add


def test_imports_are_removed_only_when_unused_and_not_exported():
    module = cst.parse_module(
        "# why these\nimport time, os\nimport json\nfrom a import (b, c)\n__all__ = ['json']\n"
        "print(c)\n"
    )
    assert remove_unused(module, {"time", "os", "json", "b"}).code == (
        "# why these\nimport json\nfrom a import c\n__all__ = ['json']\nprint(c)\n"
    )
