"""Equivalence: codemodded source under plain ``python`` records what ``autodurable run`` records.

For the legacy examples (examples/legacy/) and the programs of the analyser and
rewrite tests, each in a project of its own, the original runs under
``python -m autodurable run`` and a copy, rewritten by the codemod (the engine
of ``autodurable codemod --write``), runs with plain ``python``. Both state
databases must hold the same steps: names, order, status, results, errors.

What may differ, and is normalised before comparing:
- values of the clock (timestamps, epoch seconds, uuids) and of random draws
  from a fresh ``random.Random()``; the global ``random`` is seeded the same in
  both runs (a ``sitecustomize`` on the path), so samples and choices compare.
Step names are compared as they are: the calls the codemod writes as public
API (``datetime.now()`` becomes ``autodurable.now()``) are recorded under that
name by the hook as well.

By design the codemod does not rewrite a script's top level (under plain python
it runs outside any workflow), and workflows start only at roots, so each
project's driver script calls everything from one function, ``main``, set as a
workflow in ``[tool.autodurable.roles]``: the codemod writes it as
``@autodurable.workflow``, the root of the plain run, and under the hook it runs
inside the script's run. The
``SCRIPT`` program of test_rewrite (top-level I/O) is left out for that
reason; its generator is covered by ``GENERATOR``.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodurable._analysis._catalogue import NONDETERMINISTIC, default_catalogue
from autodurable._core._codec import Codec
from autodurable.codemods._run import CHANGED, FAILED, run_codemod, write_file

from ..analysis import test_analysis
from ..helpers import ROOT, child_env, serving
from ..hook import test_launcher, test_rewrite

FAKES = {
    "fakeio.py": '''
        """A stand-in I/O library: deterministic answers, no network."""
        import asyncio

        class Boom(ValueError):
            pass

        def get(u):
            return {"k": f"{u}!", "n": len(str(u))}

        def post(u, data=None):
            return ["posted", u, data]

        def rows(u):
            yield from range(1, 4)

        def note(x):
            return x

        def boom(x):
            raise Boom(x)

        async def aget(u):
            await asyncio.sleep(0)
            return u.upper()

        async def apost(u):
            return ["posted", u]
        ''',
    "aiohttp.py": """
        class ClientSession:
            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            async def get(self, u):
                return f"body of {u}"
        """,
    "aiofiles.py": """
        class open:
            def __init__(self, path):
                self.path = path

            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            async def read(self):
                return f"text of {self.path}"
        """,
    "framework.py": """
        import functools

        class App:
            def __init__(self):
                self.routes = {}

            def route(self, path):
                def register(fn):
                    self.routes[path] = fn
                    return fn
                return register

        def command():
            def wrap(fn):
                @functools.wraps(fn)
                def cli(*args, **kwargs):
                    return ("cli", fn(*args, **kwargs))
                return cli
            return wrap

        app = App()
        """,
    "requests.py": """
        class Response:
            def __init__(self, url):
                self.url, self.status_code, self.text = str(url), 200, f"text of {url}"

            def json(self):
                return {"url": self.url, "n": len(self.url)}

            def __repr__(self):
                return f"<Response {self.url}>"

        def get(u, **kwargs):
            return Response(u)

        def post(u, **kwargs):
            return Response(u)

        def delete(u, **kwargs):
            return Response(u)
        """,
    "sitecustomize.py": "import random\nrandom.seed(20240601)\n",
}

NO_CRASH = "\n\ndef maybe_crash(point):\n    return None\n"
GENERATOR = """
import fakeio

def pages(urls):
    for u in urls:
        yield fakeio.get(u)["n"]

def save(x):
    return fakeio.post("save", x)

def flow(urls):
    return save(list(pages(urls)))
"""
DRIVER = """
import asyncio
import prog_async, prog_blocks, prog_clock, prog_decorated, prog_generator, prog_helpers
import prog_lines, prog_property, prog_reasons, prog_shared, prog_sql, prog_sync
from pkg import a, b, sub


def main():
    out = [
        prog_sync.mixed("u", "in.txt"),
        asyncio.run(prog_async.amixed("u")),
        prog_blocks.nested("lines.txt", True),
        prog_blocks.nested("lines.txt", False),
        prog_generator.flow(["a", "bb"]),
        prog_decorated.flow("ab"),
        prog_shared.shares_names("data.txt"),
        prog_shared.imports_in_block("data.json"),
        prog_shared.assigns_into_io("u"),
        prog_property.flow(),
        prog_sql.record("app.db", 7),
        prog_clock.stamp(),
        prog_reasons.fetch("u1"),
        prog_reasons.stamp(),
        prog_reasons.mixed("u2"),
        prog_reasons.loop(["a", "b"]),
        prog_reasons.each(["a", "b"]),
        prog_reasons.caller("u3"),
        prog_reasons.coarse("in.txt"),
        prog_reasons.draws(),
        prog_helpers.work(3),
        a.via_module("pa"),
        b.via_name("pb"),
        sub.from_parent("ps"),
    ]
    for call in (prog_lines.failing, prog_lines.inline):
        try:
            call("u")
        except Exception as exc:
            out.append(type(exc).__name__)
    print(len(out))


if __name__ == "__main__":
    main()
"""


def programs() -> dict[str, str]:
    """The test programs, as files of one project."""
    files = {
        "prog_sync.py": test_rewrite.SYNC + NO_CRASH,
        "prog_async.py": test_rewrite.ASYNC + NO_CRASH,
        "prog_blocks.py": test_rewrite.BLOCKS + NO_CRASH,
        "prog_generator.py": GENERATOR,
        "prog_decorated.py": test_rewrite.DECORATED,
        "prog_lines.py": test_rewrite.LINES,
        "prog_shared.py": test_rewrite.SHARED + NO_CRASH,
        "prog_property.py": test_rewrite.PROPERTY,
        "prog_sql.py": test_rewrite.SQL + NO_CRASH,
        "prog_clock.py": test_rewrite.CLOCK + NO_CRASH,
        "prog_reasons.py": test_analysis.REASONS,
        "prog_helpers.py": test_launcher.HELPERS,
        "driver.py": DRIVER,
        "in.txt": "file text",
        "lines.txt": "a\nb\nc\n",
        "data.txt": "{'a': 1, 'b': 2}",
        "data.json": '{"a": 1}',
    }
    for module, source in test_analysis.PACKAGE.items():
        files[module.replace(".", "/") + ".py"] = source
    return files


def write_tree(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of fake libraries (outside every project) for PYTHONPATH."""
    return write_tree(tmp_path_factory.mktemp("fakes"), FAKES)


def env(fakes: Path, **extra: str) -> dict[str, str]:
    environment = child_env(**extra)
    environment["PYTHONPATH"] = f"{fakes}:{environment['PYTHONPATH']}"
    return environment


def make_project(folder: Path, files: dict[str, str], io: str = "") -> Path:
    write_tree(folder, files)
    (folder / "pyproject.toml").write_text(
        f"[project]\nname = 'p'\n\n[tool.autodurable]\n{io}\n"
        '[tool.autodurable.roles]\n"driver:main" = "workflow"\n'
    )
    return folder


def codemodded(original: Path, folder: Path) -> Path:
    """A copy of `original` rewritten by the codemod (its files written, as --write does)."""
    shutil.copytree(original, folder, ignore=shutil.ignore_patterns("__pycache__", ".autodurable"))
    results = run_codemod([folder])
    assert not [r for r in results if r.status == FAILED], results
    changed = [r for r in results if r.status == CHANGED]
    assert changed
    for result in changed:
        assert write_file(result.path, result.original, result.new) is None
    return folder


def execute(command: list[str], folder: Path, environment: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=folder, env=environment, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def hook_run(folder: Path, script: str, environment: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "autodurable", "run", "-q", script, *args]
    return execute(command, folder, environment)


def plain_run(folder: Path, script: str, environment: dict[str, str], *args: str) -> str:
    return execute([sys.executable, script, *args], folder, environment)


_CLOCK = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b1[6-9]\d{8}(\.\d+)?\b"), "<epoch>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
]


def _nondeterministic(name: str) -> bool:
    callee = name.rpartition(":")[2]
    return default_catalogue().kind(callee) == NONDETERMINISTIC


def normal(name: str, status: str, output: str | None, error: str | None) -> tuple:
    """One recorded step, with what legitimately differs between two runs normalised."""
    if output is not None and _nondeterministic(name):
        output = type(json.loads(output)).__name__  # a fresh draw or reading: its type only
    elif output is not None:
        for pattern, replacement in _CLOCK:
            output = pattern.sub(replacement, output)
    failure = Codec.error_summary(error)[:2] if error else None
    return name, status, output, failure


def recorded(folder: Path) -> list[tuple]:
    """Every step of every workflow in the folder's state database, in order."""
    with sqlite3.connect(folder / ".autodurable" / "state.db") as conn:
        rows = conn.execute(
            "SELECT s.name, s.status, s.output, s.error FROM steps s "
            "JOIN workflows w USING (workflow_id) ORDER BY w.created_at, s.position"
        ).fetchall()
    return [normal(*row) for row in rows]


def test_programs_record_the_same_steps(tmp_path: Path, fakes: Path) -> None:
    original = make_project(tmp_path / "original", programs(), io='io = ["fakeio"]\n')
    rewritten = codemodded(original, tmp_path / "rewritten")
    environment = env(fakes)
    expected_out = hook_run(original, "driver.py", environment)
    assert plain_run(rewritten, "driver.py", environment) == expected_out
    steps = recorded(original)
    assert len(steps) > 60
    names = {name for name, *_ in steps}
    for kind in (
        "mixed:fakeio.get",
        "autodurable.sleep",
        "amixed:aiohttp.ClientSession.get",
        "amixed:aiofiles.open",
        "nested:open",
        "pages:fakeio.get",
        "Client.klass",
        "shares_names:open",
        "record:sqlite3.Connection.execute",
        "stamp:datetime.datetime.now",
        "autodurable.random",
        "each:requests.delete",
        "coarse",
        "effect",
        "fetch",
    ):
        assert kind in names, kind  # fmt: skip
    assert recorded(rewritten) == steps


LEGACY = ROOT / "examples" / "legacy"


def legacy_project(folder: Path) -> Path:
    folder.mkdir()
    for name in ("weather_report.py", "inventory_audit.py", "weather_service.py"):
        shutil.copy(LEGACY / name, folder / name)
    (folder / "pyproject.toml").write_text(
        "[project]\nname = 'legacy'\n\n[tool.autodurable.roles]\n"
        '"inventory_audit:main" = "workflow"\n"weather_report:main" = "workflow"\n'
    )
    return folder


def test_inventory_audit_records_the_same_steps(tmp_path: Path, fakes: Path) -> None:
    original = legacy_project(tmp_path / "original")
    rewritten = codemodded(original, tmp_path / "rewritten")
    environment = env(fakes, AUDIT_LOG="audit.log", AUDIT_SAMPLE="5")
    expected_out = hook_run(original, "inventory_audit.py", environment, "inventory.db")
    out = plain_run(rewritten, "inventory_audit.py", environment, "inventory.db")
    assert re.sub(r"\d+\.\d s", "<s>", out) == re.sub(r"\d+\.\d s", "<s>", expected_out)
    steps = recorded(original)
    assert [name for name, *_ in steps][:4] == [
        "prepare_database", "load_items", "random.sample", "time.time",
    ]  # fmt: skip
    assert recorded(rewritten) == steps
    # The codemodded script under the hook: taken as written (nothing wrapped twice).
    again = legacy_project(tmp_path / "again")
    shutil.copy(rewritten / "inventory_audit.py", again / "inventory_audit.py")
    hook_run(again, "inventory_audit.py", environment, "inventory.db")
    assert recorded(again) == steps


def weather_service(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(LEGACY / "weather_service.py"), "--port", "0",
         "--state", str(folder / "service.json")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def test_weather_report_records_the_same_steps(tmp_path: Path, fakes: Path) -> None:
    original = legacy_project(tmp_path / "original")
    rewritten = codemodded(original, tmp_path / "rewritten")
    outputs = []
    for folder in (original, rewritten):  # a service each: the report ids start at 1
        with serving(weather_service(folder)) as url:
            environment = env(fakes, WEATHER_URL=url, WEATHER_OUTPUT="weather")
            run = hook_run if folder is original else plain_run
            outputs.append(run(folder, "weather_report.py", environment, "Oslo", "Rome"))
    assert outputs[0] == outputs[1]
    steps = recorded(original)
    assert [name for name, *_ in steps] == [
        "main:os.makedirs", "fetch_city", "save_city", "autodurable.sleep", "fetch_city",
        "save_city", "build_report", "main:open", "publish",
    ]  # fmt: skip
    assert recorded(rewritten) == steps
