"""wrapt's types without its package (`_wrapt`), and post-import hooks (`_post_import`).

Code rewritten by the hook, and every process under ``autodurable run``, load
wrapt's C extension alone: the package imports ``importlib.metadata`` and
``inspect`` (about 25 ms). The types must stay the package's own when the
program imports wrapt, before or after us.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from autodurable._core import _post_import, _wrapt

from ..helpers import child_env


def run_python(code: str, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


STEP_THEN_WRAPT = """
import sys
before = set(sys.modules)
import autodurable.inline as inline

@inline.step
def double(x):
    return 2 * x

heavy = {'wrapt', 'importlib.metadata', 'asyncio', 'dataclasses', 'inspect', 'logging'}
print(double(21), sorted(heavy & (set(sys.modules) - before)))
import wrapt
from autodurable._core import _wrapt
print(isinstance(double, wrapt.FunctionWrapper), _wrapt.FunctionWrapper is wrapt.FunctionWrapper)
"""


def test_rewritten_code_loads_neither_the_wrapt_package_nor_heavy_standard_modules() -> None:
    assert run_python(STEP_THEN_WRAPT) == ["42", "[]", "True", "True"]


def test_a_program_that_imported_wrapt_first_shares_its_types() -> None:
    code = (
        "import wrapt, autodurable.inline\n"
        "from autodurable._core import _wrapt\n"
        "print(_wrapt.FunctionWrapper is wrapt.FunctionWrapper,"
        " _wrapt.BoundFunctionWrapper is wrapt.BoundFunctionWrapper)\n"
    )
    assert run_python(code) == ["True", "True"]


def test_with_wrapts_extension_disabled_its_python_types_are_used() -> None:
    listed = "sorted(heavy & (set(sys.modules) - before))"
    code = STEP_THEN_WRAPT.replace(listed, "0")
    code += "print('wrapt._wrappers' in sys.modules)\n"  # the extension never loaded
    printed = run_python(code, WRAPT_DISABLE_EXTENSIONS="1")
    assert printed == ["42", "0", "True", "True", "False"]


class Base:
    def inherited(self) -> str:
        return "base"

    @staticmethod
    def helper() -> str:
        return "static"


class Child(Base):
    pass


def test_resolve_path_reads_attributes_as_defined() -> None:
    owner, attribute, value = _wrapt.resolve_path(sys.modules[__name__], "Child.helper")
    assert (owner, attribute) == (Child, "helper")
    assert isinstance(value, staticmethod)  # as defined: setting it back restores it
    owner, attribute, value = _wrapt.resolve_path(__name__, "Child.inherited")
    assert (owner, attribute, value) == (Child, "inherited", Base.__dict__["inherited"])
    assert _wrapt.resolve_path("json", "dumps")[2] is __import__("json").dumps


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("hooked_")]:
        del sys.modules[name]


def test_a_hook_runs_once_right_after_the_modules_code(modules: Path) -> None:
    (modules / "hooked_one.py").write_text(
        "import sys\nSEEN = 'hook' in vars(sys.modules[__name__])\n"
    )
    calls: list[tuple[str, bool, str, str]] = []

    def hook(module: ModuleType) -> None:
        calls.append(
            (
                module.__name__,
                module.SEEN,
                type(module.__loader__).__name__,
                type(module.__spec__.loader).__name__,
            )
        )
        module.hook = True

    _post_import.when_imported("hooked_one", hook)
    assert calls == []
    import hooked_one  # type: ignore[import-not-found]

    # After its code, before the import returns; it sees its own loader, not ours.
    assert calls == [("hooked_one", False, "SourceFileLoader", "SourceFileLoader")]
    assert hooked_one.hook is True
    del sys.modules["hooked_one"]
    import hooked_one  # imported again: the hook ran once

    assert len(calls) == 1


def test_a_hook_for_a_module_imported_already_runs_at_once(modules: Path) -> None:
    seen: list[ModuleType] = []
    _post_import.when_imported("json", seen.append)
    assert seen == [sys.modules["json"]]


def test_a_module_that_fails_leaves_its_hooks_for_the_next_import(modules: Path) -> None:
    source = modules / "hooked_broken.py"
    source.write_text("raise RuntimeError('not yet')\n")
    seen: list[str] = []
    _post_import.when_imported("hooked_broken", lambda module: seen.append(module.__name__))
    with pytest.raises(RuntimeError, match="not yet"):
        import hooked_broken  # type: ignore[import-not-found]
    assert seen == []
    source.write_text("VALUE = 1\n")
    import hooked_broken  # noqa: F401

    assert seen == ["hooked_broken"]


def test_other_imports_are_not_claimed(modules: Path) -> None:
    (modules / "hooked_plain.py").write_text("VALUE = 1\n")
    _post_import.when_imported("hooked_other", lambda module: None)
    finder = next(f for f in sys.meta_path if type(f).__module__ == _post_import.__name__)
    assert finder.find_spec("hooked_plain", None) is None
    import hooked_plain  # type: ignore[import-not-found]

    assert type(hooked_plain.__spec__.loader).__name__ == "SourceFileLoader"


def test_asyncio_is_patched_when_a_workflow_program_imports_it_later() -> None:
    # A sync program never pays for asyncio; one that imports it after the first
    # workflow started still gets its tasks run in the workflow's context.
    code = (
        "import sys\n"
        "from autodurable._core import _concurrency\n"
        "_concurrency.install()\n"
        "print('asyncio' in sys.modules)\n"
        "import asyncio\n"
        "print(type(vars(asyncio.base_events.BaseEventLoop)['create_task']).__name__,"
        " asyncio.as_completed is asyncio.tasks.as_completed,"
        " type(asyncio.as_completed).__name__)\n"
    )
    assert run_python(code) == ["False", "_Switch", "True", "FunctionWrapper"]


def test_light_digests_and_ids_are_the_standard_librarys() -> None:
    import hashlib
    import uuid

    from autodurable import _light

    for data in (b"", b"abc", bytes(range(256)) * 5000):  # the last past the OpenSSL size
        assert _light.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    grown = _light.sha256(b"a")
    grown.update(b"bc")
    assert grown.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    ids = {_light.uuid4_hex() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert (parsed.hex, parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
