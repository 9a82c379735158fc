"""`MakeDurableCommand` as libcst ``CodemodTest`` cases: every rule before -> after, after -> after.

The command gets no file name here, so it analyses each fixture on its own
(the analyser's standalone plan); the project-wide plan is exercised by
test_codemod_cli and test_codemod_equivalence. Every case is also run on its
own output (idempotence), and its output must compile. test_codemod_strip
takes these outputs back with `StripDurableCommand`.
"""

# ruff: noqa: E501
# (the expected code is what the codemods write; they do not wrap long lines)

from __future__ import annotations

from typing import Any, NamedTuple

from libcst.codemod import CodemodContext, CodemodTest, transform_module
from libcst.testing.utils import data_provider

from autodurable.codemods.make_durable import MakeDurableCommand


class Case(NamedTuple):
    """One rule: the source before, after (None: the file is skipped), options, warnings."""

    before: str
    after: str | None
    options: dict[str, Any] = {}
    warnings: list[str] | None = None


UNSAFE = (
    "line 4: Cache.reload left unchanged: changes state (assigns self.text at line 6) and "
    "calls open at line 5, but a return inside the with-block at line 5: left unchanged; "
    "split the I/O into a function of its own"
)

MAKE = {
    # Patches are workflow code of their own: the codemod leaves the calls as they are.
    "patches_left_alone": Case(
        """
        import autodurable
        import requests

        def sms(o):
            return requests.post("/sms", json=o).status_code

        def email(o):
            return requests.post("/email", json=o).status_code

        def notify(order):
            if autodurable.patched("sms"):
                return sms(order)
            autodurable.deprecate_patch("old-mail")
            return email(order)
        """,
        """
        import autodurable
        import requests

        @autodurable.step(unrecordable="rerun")
        def sms(o):
            return requests.post("/sms", json=o).status_code

        @autodurable.step(unrecordable="rerun")
        def email(o):
            return requests.post("/email", json=o).status_code

        def notify(order):
            if autodurable.patched("sms"):
                return sms(order)
            autodurable.deprecate_patch("old-mail")
            return email(order)
        """,
    ),
    "step": Case(
        """
        "A module docstring."
        import requests

        def fetch(u):  # talks to the outside world
            return requests.get(u).json()
        """,
        """
        "A module docstring."
        import requests
        import autodurable

        @autodurable.step(unrecordable="rerun")
        def fetch(u):  # talks to the outside world
            return requests.get(u).json()
        """,
    ),
    "workflow": Case(
        """
        import requests

        def fetch(u):
            return requests.get(u).json()

        def report(urls):
            # only calls steps
            return [fetch(u) for u in urls]
        """,
        """
        import requests
        import autodurable

        @autodurable.step(unrecordable="rerun")
        def fetch(u):
            return requests.get(u).json()

        def report(urls):
            # only calls steps
            return [fetch(u) for u in urls]
        """,
    ),
    "bare": Case(
        """
        import requests

        def fetch(u):
            return requests.get(u).json()

        def report(urls):
            # only calls steps
            return [fetch(u) for u in urls]
        """,
        """
        import requests
        import autodurable

        @autodurable.step(unrecordable="error")
        def fetch(u):
            return requests.get(u).json()

        def report(urls):
            # only calls steps
            return [fetch(u) for u in urls]
        """,
        options={"unrecordable": "error"},
    ),
    "innermost": Case(
        """
        import functools
        import requests

        class Client:
            @staticmethod
            def ping(u):
                return requests.head(u).status_code

            @property
            def data(self):
                return requests.get("/data").json()

        @functools.lru_cache(maxsize=None)
        def cached(u):
            return requests.get(u).text
        """,
        """
        import functools
        import requests
        import autodurable

        class Client:
            @staticmethod
            @autodurable.step(unrecordable="rerun")
            def ping(u):
                return requests.head(u).status_code

            @property
            @autodurable.step(unrecordable="rerun")
            def data(self):
                return requests.get("/data").json()

        @functools.lru_cache(maxsize=None)
        @autodurable.step(unrecordable="rerun")
        def cached(u):
            return requests.get(u).text
        """,
    ),
    "expressions": Case(
        """
        import requests

        def save(x):
            return requests.post("/save", json=x).status_code

        def sync(u):
            data = requests.get(u).json()["items"]
            requests.post(u, json=data)
            return save(data)
        """,
        """
        import requests
        import autodurable
        import autodurable.inline

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", json=x).status_code

        def sync(u):
            data = autodurable.inline.run_step("sync:requests.get", lambda: requests.get(u).json()["items"])
            autodurable.inline.run_step("sync:requests.post", lambda: requests.post(u, json=data), discard=True)
            return save(data)
        """,
    ),
    "loop": Case(
        """
        import requests

        def each(urls):
            out = []
            for u in urls:
                out.append(requests.get(u).text)
            return out

        def save(x):
            return requests.post("/save", data=x).status_code

        def listed(u):
            total = 0
            for item in requests.get(u).json(), []:
                total += len(item)
            return save(total)
        """,
        """
        import requests
        import autodurable
        import autodurable.inline

        def each(urls):
            out = []
            for u in urls:
                out.append(autodurable.inline.run_step("each:requests.get", lambda: requests.get(u).text))
            return out

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x).status_code

        def listed(u):
            total = 0
            for item in autodurable.inline.run_iterate("listed:requests.get", lambda: (requests.get(u).json(), [])):
                total += len(item)
            return save(total)
        """,
    ),
    "await": Case(
        """
        import asyncio
        import aiofiles
        import aiohttp

        async def save(x):
            return await aiohttp.request("POST", "/save", data=x)

        async def sync(u):
            body = await aiohttp.request("GET", u)
            await aiohttp.request("POST", u)
            async with aiohttp.ClientSession() as session:
                page = await session.get(u)
            async with aiofiles.open(u) as fh:
                text = await fh.read()
            await asyncio.sleep(1)
            return await save((body, page, text))
        """,
        """
        import aiofiles
        import aiohttp
        import autodurable
        import autodurable.inline

        @autodurable.step(unrecordable="rerun")
        async def save(x):
            return await aiohttp.request("POST", "/save", data=x)

        async def sync(u):
            body = await autodurable.inline.run_astep("sync:aiohttp.request", lambda: aiohttp.request("GET", u))
            await autodurable.inline.run_astep("sync:aiohttp.request", lambda: aiohttp.request("POST", u), discard=True)
            async with aiohttp.ClientSession() as session:
                page = await autodurable.inline.run_astep("sync:aiohttp.ClientSession.get", lambda: session.get(u))
            @autodurable.step(name="sync:aiofiles.open", unrecordable="rerun")
            async def _with_open():
                nonlocal text
                async with aiofiles.open(u) as fh:
                    text = await fh.read()
                return {name: values[name] for values in [locals()] for name in ("text",) if name in values}
            _with_open_bound = await _with_open()
            if "text" in _with_open_bound:
                text = _with_open_bound["text"]
            await autodurable.sleep_async(1)
            return await save((body, page, text))
        """,
    ),
    "clocks": Case(
        """
        import random
        import time
        import uuid
        from datetime import datetime, timezone
        import requests

        def save(x):
            return requests.post("/save", json=x).status_code

        def stamp(items):
            started = time.time()
            picked = random.sample(items, 2)
            when = datetime.now(timezone.utc)
            token = uuid.uuid4()
            draw = random.random()
            random.shuffle(items)
            time.sleep(0.5)
            return save([started, picked, when, token, draw])
        """,
        """
        import random
        import time
        from datetime import timezone
        import requests
        import autodurable
        import autodurable.inline

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", json=x).status_code

        def stamp(items):
            started = autodurable.inline.recorded("time.time", time.time)
            picked = autodurable.inline.recorded("random.sample", random.sample, items, 2)
            when = autodurable.now(timezone.utc)
            token = autodurable.uuid4()
            draw = autodurable.random()
            autodurable.inline.shuffle(items)
            autodurable.sleep(0.5)
            return save([started, picked, when, token, draw])
        """,
    ),
    "from_imports": Case(
        """
        from time import sleep
        import requests

        def save(x):
            return requests.post("/save", json=x).status_code

        def pause(x):
            sleep(1)
            return save(x)
        """,
        """
        import requests
        import autodurable

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", json=x).status_code

        def pause(x):
            autodurable.sleep(1)
            return save(x)
        """,
    ),
    "block": Case(
        """
        import requests

        def save(x):
            return requests.post("/save", data=x).status_code

        def load(path, flag):
            count = 0
            # read the file once
            with open(path) as fh:
                for line in fh:
                    count += 1
                if flag:
                    note: str = line.strip()
            return save(count), note if flag else None
        """,
        """
        import requests
        import autodurable

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x).status_code

        def load(path, flag):
            count = 0
            # read the file once
            @autodurable.step(name="load:open", unrecordable="rerun")
            def _with_open():
                nonlocal note, line, count
                with open(path) as fh:
                    for line in fh:
                        count += 1
                    if flag:
                        note = line.strip()
                return {name: values[name] for values in [locals()] for name in ("note", "line", "count") if name in values}
            _with_open_bound = _with_open()
            if "note" in _with_open_bound:
                note = _with_open_bound["note"]
            if "line" in _with_open_bound:
                line = _with_open_bound["line"]
            if "count" in _with_open_bound:
                count = _with_open_bound["count"]
            return save(count), note if flag else None
        """,
    ),
    "block_global": Case(
        """
        import requests

        TOTAL = 0

        def save(x):
            return requests.post("/save", data=x).status_code

        def load(path):
            global TOTAL
            with open(path) as fh:
                TOTAL += len(fh.read())
            return save(TOTAL)
        """,
        """
        import requests
        import autodurable

        TOTAL = 0

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x).status_code

        def load(path):
            global TOTAL
            @autodurable.step(name="load:open", unrecordable="rerun")
            def _with_open():
                global TOTAL
                with open(path) as fh:
                    TOTAL += len(fh.read())
                return {name: values[name] for name, values in [("TOTAL", globals())] if name in values}
            _with_open_bound = _with_open()
            if "TOTAL" in _with_open_bound:
                TOTAL = _with_open_bound["TOTAL"]
            return save(TOTAL)
        """,
    ),
    "coarse": Case(
        """
        import requests

        def save(x):
            return requests.post("/save", data=x)

        def mixed(p):
            with open(p) as f:
                return save(f.read())
        """,
        """
        import requests
        import autodurable

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x)

        @autodurable.step(unrecordable="rerun")
        def mixed(p):
            with open(p) as f:
                return save(f.read())
        """,
    ),
    "manual": Case(
        """
        import requests
        from autodurable import step, workflow

        @step(retries=3)
        def fetch(u):
            return requests.get(u).json()

        @workflow
        def report(u):
            return fetch(u)

        def caller(u):
            # an inferred workflow: not a root, so no decorator (nothing changes)
            return report(u)
        """,
        """
        import requests
        from autodurable import step, workflow

        @step(retries=3)
        def fetch(u):
            return requests.get(u).json()

        @workflow
        def report(u):
            return fetch(u)

        def caller(u):
            # an inferred workflow: not a root, so no decorator (nothing changes)
            return report(u)
        """,
    ),
    "unsafe": Case(
        """
        import requests

        class Cache:
            def reload(self, p):
                with open(p) as f:
                    self.text = f.read()
                    return len(self.text)
        """,
        """
        import requests

        class Cache:
            def reload(self, p):
                with open(p) as f:
                    self.text = f.read()
                    return len(self.text)
        """,
        warnings=[UNSAFE],
    ),
    "generator": Case(
        """
        import requests

        def pages(urls):
            for u in urls:
                yield requests.get(u).json()
        """,
        """
        import requests
        import autodurable.inline

        def pages(urls):
            for u in urls:
                yield autodurable.inline.run_step("pages:requests.get", lambda: requests.get(u).json())
        """,
    ),
    "optout": Case(
        """
        "Old code. autodurable: off"
        import requests

        def fetch(u):
            return requests.get(u)
        """,
        None,
    ),
    "fstring": Case(
        """
        import requests

        def save(x):
            return requests.post("/save", data=x).status_code

        def show(u):
            line = f"got {requests.get(u).text!r} from {u}"
            return save(line)
        """,
        """
        import requests
        import autodurable
        import autodurable.inline

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x).status_code

        def show(u):
            line = f"got {autodurable.inline.run_step('show:requests.get', lambda: requests.get(u).text)!r} from {u}"
            return save(line)
        """,
    ),
    "unicode": Case(
        """
        import requests

        def save(x):
            return requests.post("/save", data=x).status_code

        def greet(u):
            text = "héllo wörld " + requests.get(u).text  # é before the site
            return save(text)
        """,
        """
        import requests
        import autodurable
        import autodurable.inline

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x).status_code

        def greet(u):
            text = "héllo wörld " + autodurable.inline.run_step("greet:requests.get", lambda: requests.get(u).text)  # é before the site
            return save(text)
        """,
    ),
    "plain": Case(
        """
        import json

        def dumps(x):
            return json.dumps(x)
        """,
        """
        import json

        def dumps(x):
            return json.dumps(x)
        """,
    ),
    "nested_fstrings": Case(
        """
        import requests

        def save(x):
            return requests.post("/save", data=x).status_code

        def show(u):
            line = f"got {f'<{requests.get(u).text}>'} from {u}"
            return save(line)
        """,
        """
        import requests
        import autodurable

        @autodurable.step(unrecordable="rerun")
        def save(x):
            return requests.post("/save", data=x).status_code

        def show(u):
            line = f"got {f'<{requests.get(u).text}>'} from {u}"
            return save(line)
        """,
        # Before Python 3.12 no string literal can stand inside f-strings of both quotes.
        warnings=["line 7: show:requests.get left unchanged: inside nested f-strings"],
    ),
}


def _fixture(code: str) -> str:
    return CodemodTest.make_fixture_data(code)


class MakeDurableTest(CodemodTest):
    TRANSFORM = MakeDurableCommand

    @data_provider({name: (case,) for name, case in MAKE.items()})
    def test_rule(self, case: Case) -> None:
        if case.after is None:
            self.assertCodemod(case.before, case.before, expected_skip=True, **case.options)
            return
        self.assertCodemod(
            case.before, case.after, expected_warnings=case.warnings or [], **case.options
        )

    @data_provider({name: (case,) for name, case in MAKE.items()})
    def test_idempotent(self, case: Case) -> None:
        after = case.after or case.before
        self.assertCodemod(after, after, expected_skip=case.after is None, **case.options)

    @data_provider({name: (case,) for name, case in MAKE.items() if case.after})
    def test_output_compiles(self, case: Case) -> None:
        assert case.after is not None
        compile(_fixture(case.after), "<after>", "exec", dont_inherit=True)

    def test_a_given_plan_is_used_as_it_is(self) -> None:
        from autodurable._analysis import analyse_sources

        source = _fixture(MAKE["workflow"].before)
        plan = analyse_sources({"m": ("m.py", source)}, roles={"m:report": "plain"})
        result = transform_module(
            MakeDurableCommand(CodemodContext(), module_plan=plan.modules["m"]), source
        )
        self.assertIn("@autodurable.step", result.code)
        self.assertNotIn("@autodurable.workflow", result.code)

    def test_bad_option_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            MakeDurableCommand(CodemodContext(), unrecordable="sometimes")
