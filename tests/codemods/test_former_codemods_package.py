"""The former top-level ``codemods`` package: still importable for a release, with a
DeprecationWarning, and its modules are the very modules of `autodurable.codemods`."""

from __future__ import annotations

import subprocess
import sys

from ..helpers import ROOT, child_env

CHECK = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from codemods.make_durable import MakeDurableCommand
    import codemods.strip_durable
import autodurable.codemods.make_durable as new
import autodurable.codemods.strip_durable as new_strip
print(MakeDurableCommand is new.MakeDurableCommand, codemods.strip_durable is new_strip)
print([str(w.message) for w in caught if w.category is DeprecationWarning])
"""


def test_importing_codemods_warns_and_gives_the_same_modules(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    same, warned = done.stdout.splitlines()
    assert same == "True True"
    assert "the top-level 'codemods' package is deprecated; import 'autodurable.codemods'" in warned
