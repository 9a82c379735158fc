"""The codemod is idempotent: a second pass over its own output changes nothing.

Over every example under examples/ and every program the other codemod tests
use (the rule cases of test_codemod and test_codemod_strip, the projects of
test_codemod_cli and test_codemod_equivalence), the first pass's output must
compile and a second pass must leave every file as it is, so that
``autodurable codemod --check`` passes right after ``--write``. Each
construct the codemod writes is read back as durable already: decorators as
decorated by hand, ``run_step`` / ``run_astep`` / ``run_iterate`` thunks as
recorded expressions (not I/O again), with-block steps as local steps, durable
clocks, random draws and sleeps as the public API, imports as present.
"""

# ruff: noqa: E501
# (the expected code is what the codemod writes; it does not wrap long lines)

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from libcst.codemod import (
    CodemodContext,
    TransformFailure,
    TransformSuccess,
    transform_module,
)

from autodurable._analysis import analyse_sources
from autodurable._cli._main import main
from autodurable.codemods._run import (
    CHANGED,
    FAILED,
    UNCHANGED,
    FileResult,
    run_codemod,
    write_file,
)
from autodurable.codemods.make_durable import MakeDurableCommand

from ..helpers import ROOT
from ..hook import test_rewrite
from . import test_codemod_cli, test_codemod_equivalence
from .test_codemod import MAKE, _fixture
from .test_codemod_strip import STRIP

EXAMPLES = sorted(
    path for path in (ROOT / "examples").iterdir() if path.is_dir() or path.suffix == ".py"
)


def _write_pass(folder: Path) -> list[FileResult]:
    """``autodurable codemod --write folder``, through the library: the results."""
    results = run_codemod([folder])
    assert not [r for r in results if r.status == FAILED], results
    for result in results:
        if result.status == CHANGED:
            compile(result.new, result.path, "exec", dont_inherit=True)  # it still compiles
            assert write_file(result.path, result.original, result.new) is None
    return results


def assert_idempotent(folder: Path) -> list[FileResult]:
    """Run the codemod over `folder` twice: the second pass must change nothing."""
    first = _write_pass(folder)
    written = {p: p.read_text() for p in folder.rglob("*.py")}
    second = run_codemod([folder])
    changed = {r.path: r.new for r in second if r.status == CHANGED}
    assert changed == {}, f"a second pass changes {sorted(changed)}"
    assert not [r for r in second if r.status == FAILED], second
    assert {p: p.read_text() for p in folder.rglob("*.py")} == written
    assert [r.status for r in second] == [
        UNCHANGED if r.status == CHANGED else r.status for r in first
    ]
    return first


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_example_is_rewritten_once(tmp_path: Path, example: Path) -> None:
    folder = tmp_path / example.name
    if example.is_dir():
        shutil.copytree(example, folder, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    else:
        folder.mkdir()
        shutil.copy(example, folder / example.name)
    (folder / "pyproject.toml").write_text(f"[project]\nname = '{example.name}'\n")
    assert_idempotent(folder)


def test_the_equivalence_programs_are_rewritten_once(tmp_path: Path) -> None:
    files = {**test_codemod_equivalence.programs(), "prog_script.py": test_rewrite.SCRIPT}
    folder = test_codemod_equivalence.make_project(tmp_path, files, io='io = ["fakeio"]\n')
    first = assert_idempotent(folder)
    assert sum(r.status == CHANGED for r in first) >= 10


def test_the_cli_demo_project_is_rewritten_once(tmp_path: Path) -> None:
    first = assert_idempotent(test_codemod_cli.demo(tmp_path))
    assert sum(r.status == CHANGED for r in first) == 2


def _make(code: str, **options: str) -> str:
    """make_durable on one module, analysed on its own (as libcst's tool runs it)."""
    result = transform_module(MakeDurableCommand(CodemodContext(), **options), code)
    assert not isinstance(result, TransformFailure), result
    return result.code if isinstance(result, TransformSuccess) else code  # or skipped


# Every rule case of test_codemod (its input), and every input and output of
# test_codemod_strip (codemodded code, some decorated or proxied by hand).
RULE_PROGRAMS = {
    **{f"make_{name}": (case.before, case.options) for name, case in MAKE.items()},
    **{f"strip_{name}_before": (case.before, {}) for name, case in STRIP.items()},
    **{f"strip_{name}_after": (case.after, {}) for name, case in STRIP.items() if case.after},
}


@pytest.mark.parametrize("name", sorted(RULE_PROGRAMS))
def test_every_rule_program_is_rewritten_once(name: str) -> None:
    source, options = RULE_PROGRAMS[name]
    once = _make(_fixture(source), **options)
    compile(once, name, "exec", dont_inherit=True)
    assert _make(once, **options) == once


# Generators are not decorated (a decorator would record the generator object), so
# a second pass analyses their bodies again: every construct written into one must
# read back as recorded. Forced roles too, a method, and an async generator.
GENERATORS = """\
import asyncio
import datetime
import random
import time
import uuid

import aiofiles
import aiohttp
import requests


def save(x):
    return requests.post("/save", data=x).status_code


def everything(u, items):
    with open(u) as fh:
        text = fh.read()
    for line in requests.get(u).json():
        yield save(line)
    stamp = time.time()
    when = datetime.datetime.now().isoformat()
    now = datetime.datetime.now()
    key = uuid.uuid4()
    pick = random.random()
    random.shuffle(items)
    time.sleep(1)
    requests.post(u, data=text)
    body = requests.get(u).text
    yield save((text, stamp, when, now, key, pick, items, body))


async def aeverything(u):
    body = await aiohttp.request("GET", u)
    await aiohttp.request("POST", u)
    async with aiohttp.ClientSession() as session:
        page = await session.get(u)
    async with aiofiles.open(u) as fh:
        text = await fh.read()
    for line in requests.get(u).json():
        yield save(line)
    await asyncio.sleep(1)
    yield save((body, page))


def forced(u):
    for line in requests.get(u).json():
        print(line)
    return requests.get(u).text


class Feed:
    def forced_gen(self, u):
        for line in requests.get(u).json():
            yield line
        yield time.time()

    def method(self, u):
        for line in requests.get(u).json():
            yield save(line)
"""
ROLES = """
[tool.autodurable.roles]
"app:forced" = "workflow"
"app:Feed.forced_gen" = "workflow"
"""


def test_every_construct_written_into_generators_is_written_once(tmp_path: Path) -> None:
    folder = test_codemod_cli.project(tmp_path, {"app.py": GENERATORS}, ROLES)
    assert [r.status for r in assert_idempotent(folder)] == [CHANGED]
    written = (folder / "app.py").read_text()
    for construct in ("run_iterate", "run_step", "run_astep", "recorded(", "shuffle(",
                      "autodurable.sleep(", "sleep_async(", "autodurable.now()",
                      "autodurable.uuid4()", "autodurable.random()", "def _with_open",
                      "async def _with_open", "ClientSession.get"):  # fmt: skip
        assert construct in written, construct
    assert written.count("run_iterate") == 5


# -- the iterable of a for loop --------------------------------------------------------------

LOOP = """\
import requests


def save(x):
    return requests.post("/save", data=x).status_code


def pages(u):
    for item in requests.get(u).json():
        yield save(item)


async def apages(u):
    for item in requests.get(u).json():
        yield save(item)
"""

LOOP_AFTER = """\
import requests
import autodurable
import autodurable.inline


@autodurable.step(unrecordable="rerun")
def save(x):
    return requests.post("/save", data=x).status_code


def pages(u):
    for item in autodurable.inline.run_iterate("pages:requests.get", lambda: requests.get(u).json()):
        yield save(item)


async def apages(u):
    for item in autodurable.inline.run_iterate("apages:requests.get", lambda: requests.get(u).json()):
        yield save(item)
"""


def test_a_loop_iterable_is_wrapped_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Generators are not decorated, so their sites are found again on a second pass:
    the ``run_iterate`` written by the first must not be wrapped in another one."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'loop'\n")
    app = tmp_path / "app.py"
    app.write_text(LOOP)
    assert main(["codemod", "--write", str(app)]) == 0
    assert app.read_text() == LOOP_AFTER
    assert main(["codemod", "--check", str(app)]) == 0
    assert main(["codemod", "--write", str(app)]) == 0
    assert app.read_text() == LOOP_AFTER
    assert "0 file(s) changed, 1 unchanged" in capsys.readouterr().err
    assert _make(LOOP) == LOOP_AFTER  # the standalone plan (libcst's own tool) too
    assert _make(LOOP_AFTER) == LOOP_AFTER


def test_the_analyser_reads_a_recorded_iterable_as_a_step_already() -> None:
    plan = analyse_sources({"app": ("app.py", LOOP_AFTER)}).modules["app"]
    for qualname in ("pages", "apages"):
        function = plan.get(qualname)
        assert function.sites == [] and function.notes == [], function
        assert function.role == "workflow"  # it calls the step save, as before
