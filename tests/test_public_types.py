"""The public API is typed for the people who call it: mypy, strict, on code that uses it.

Decorated functions keep their signatures, a handle carries its workflow's result
type (an async workflow's too), statuses are a Literal, decorator and per-call
keywords are checked, and a misspelt option is a type error before it is a
run-time `ConfigError`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .helpers import ROOT

GOOD = """
from typing import assert_type

import autodurable


@autodurable.step(retries=3, timeout=10)
def charge(order: str, amount: int) -> str:
    return f"{order}:{amount}"


@autodurable.workflow(workflow_timeout=60)
def checkout(order: str) -> int:
    charge(order, 10)
    return 10


@autodurable.workflow
async def notify(user: str) -> bool:
    return bool(user)


handle = autodurable.start(checkout, "o-1")
assert_type(handle, autodurable.WorkflowHandle[int])
assert_type(handle.result(), int)
assert_type(autodurable.start(notify, "u").result(), bool)
assert_type(handle.status(), autodurable.WorkflowStatus)
assert_type(autodurable.options(checkout, workflow_id="o-2")("o-3"), int)
with autodurable.options(retries=5, timeout=2.5):
    pass
"""

BAD = """
import autodurable


@autodurable.step(retry=3)
def charge(order: str) -> str:
    return order


@autodurable.workflow
def checkout(order: str) -> int:
    return 1


autodurable.start(checkout, 42)
text: str = autodurable.start(checkout, "o").result()
"""


def _mypy(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # the source tree, as a user's checker sees it
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary",
         "good.py", "bad.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_strict_mypy_sees_the_types_the_api_promises(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    done = _mypy(tmp_path)
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert not [line for line in lines if line.startswith("good.py")], done.stdout
    bad = "\n".join(line for line in lines if line.startswith("bad.py"))
    assert 'Unexpected keyword argument "retry"' in bad
    wrong_input = 'No overload variant of "start" matches argument types '
    wrong_input += '"Callable[[str], int]", "int"'
    assert wrong_input in bad
    assert "Incompatible types in assignment" in bad and 'variable has type "str"' in bad
    # (and the misspelt decorator leaves its function untyped: a fourth error)
    assert len(lines) == 4, done.stdout
