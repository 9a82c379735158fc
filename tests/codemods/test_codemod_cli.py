"""``autodurable codemod`` and ``python -m libcst.tool codemod``: what is shown, written, reported.

Projects are written into the test's folder (a pyproject.toml marks the root);
the command runs in this process through `autodurable._cli._main.main`, except where
the point is another process (libcst's own tool, a missing libcst).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodurable._analysis import analyse_project
from autodurable._cli._main import main
from autodurable.codemods._run import FileResult, Progress, run_codemod, summary, write_file

from ..helpers import ROOT, child_env

FETCH = """\
import requests


def fetch(u):  # a step
    return requests.get(u).json()
"""

REPORT = """\
import os
import time

from pkg.fetching import fetch


def report(urls):
    os.makedirs("out", exist_ok=True)
    out = []
    for u in urls:
        out.append(fetch(u))
        time.sleep(1)
    return out
"""


def project(folder: Path, files: dict[str, str], config: str = "") -> Path:
    (folder / "pyproject.toml").write_text(f"[project]\nname = 'demo'\n{config}")
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def demo(folder: Path, config: str = "") -> Path:
    files = {"pkg/__init__.py": "", "pkg/fetching.py": FETCH, "app.py": REPORT}
    return project(folder, files, config)


def codemod(*args: str) -> int:
    return main(["codemod", *args])


def test_default_shows_a_diff_and_writes_nothing(tmp_path, capsys):
    demo(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.py")}
    assert codemod(".") == 0
    out, err = capsys.readouterr()
    assert "--- app.py\n+++ app.py\n" in out and "--- pkg/fetching.py\n" in out
    assert '+@autodurable.step(unrecordable="rerun")\n def fetch(u):  # a step\n' in out
    assert "@autodurable.workflow" not in out  # an inferred workflow is not a root
    assert "-        time.sleep(1)\n+        autodurable.sleep(1)\n" in out
    assert '+    autodurable.inline.run_step("report:os.makedirs", lambda: os.makedirs(' in out
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.py")} == before
    assert err.strip().splitlines()[-1] == (
        "autodurable codemod: 2 file(s) would change, 1 unchanged, 0 skipped, 0 failed "
        "(nothing written: --write applies the changes)"
    )


def test_write_applies_and_a_second_run_changes_nothing(tmp_path, capsys):
    demo(tmp_path)
    assert codemod("--write", ".") == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "rewrote app.py" in err and "2 file(s) changed" in err
    app = (tmp_path / "app.py").read_text()
    assert "@autodurable.workflow" not in app and "autodurable.sleep(1)" in app
    compile(app, "app.py", "exec")
    assert codemod("--check", ".") == 0
    out, err = capsys.readouterr()
    assert out == "" and "0 file(s) would change, 3 unchanged" in err
    assert "warning" not in err  # its own recorded sites are not reported as lambdas
    # The hook reads the result as decorated by hand: it will not wrap anything twice.
    plan = analyse_project(tmp_path)
    styles = {f.qualname: f.style for m in plan.modules.values() for f in m.functions}
    assert styles == {"fetch": "manual", "report": "decorate"}  # nothing left to add


def test_check_exits_1_when_files_would_change(tmp_path, capsys):
    demo(tmp_path)
    assert codemod("--check", "app.py") == 1
    out, _ = capsys.readouterr()
    assert out == "would change: app.py\n"
    assert "autodurable" not in (tmp_path / "app.py").read_text()


def test_the_plan_is_the_projects_and_only_the_given_paths_are_written(tmp_path, capsys):
    demo(tmp_path)
    # app.py alone: `report` is workflow code (its sites are recorded) because
    # pkg.fetching:fetch is a step, which only the analysis of the whole project shows.
    assert codemod("--write", "app.py") == 0
    assert "autodurable.sleep(1)" in (tmp_path / "app.py").read_text()
    assert (tmp_path / "pkg" / "fetching.py").read_text() == FETCH
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "__init__.py", "app.py", "fetching.py", "pyproject.toml",
    ]  # fmt: skip


def test_configuration_decides_as_for_the_hook(tmp_path, capsys):
    config = (
        '\n[tool.autodurable]\nio = ["mylib"]\n\n[tool.autodurable.roles]\n"app:report" = "plain"\n'
    )
    demo(tmp_path, config)
    (tmp_path / "extra.py").write_text("import mylib\n\ndef call():\n    return mylib.do()\n")
    assert codemod(".") == 0
    out, _ = capsys.readouterr()
    assert "+++ extra.py" in out and "@autodurable.step" in out.split("+++ extra.py")[1]
    assert "+++ app.py" not in out  # forced plain: nothing to write there


def test_unparsable_file_is_reported_and_left_untouched(tmp_path, capsys):
    demo(tmp_path)
    broken = tmp_path / "broken.py"
    broken.write_text("def broken(:\n    pass\n")
    assert codemod("--write", ".") == 1
    _, err = capsys.readouterr()
    assert "broken.py: failed: does not parse: " in err and "(line 1)" in err
    assert broken.read_text() == "def broken(:\n    pass\n"
    assert "autodurable.sleep(1)" in (tmp_path / "app.py").read_text()  # the others go on
    assert "2 file(s) changed, 1 unchanged, 0 skipped, 1 failed" in err


def test_skipped_files_say_why(tmp_path, capsys):
    files = {
        "pkg/__init__.py": "",
        "pkg/fetching.py": FETCH,
        "app.py": REPORT,
        "scripts/tool.py": FETCH,
        "legacy.py": '"""Old. autodurable: off"""\n' + FETCH,
        "not-a-module.py": FETCH,
    }
    project(tmp_path, files, '\n[tool.autodurable]\nexclude = ["scripts/*"]\n')
    assert codemod("-v", ".") == 0
    out, err = capsys.readouterr()
    assert "scripts/tool.py: skipped: not a module of the project" in err
    assert "legacy.py: skipped: opted out (autodurable: off in its docstring)" in err
    assert "not-a-module.py: skipped:" in err
    assert "+++ scripts" not in out and "+++ legacy.py" not in out
    assert "2 file(s) would change, 1 unchanged, 3 skipped, 0 failed" in err


def test_parallel_jobs_give_the_same_results(tmp_path):
    files = {"pkg/__init__.py": "", "pkg/fetching.py": FETCH, "app.py": REPORT}
    for i in range(6):
        files[f"pkg/user{i}.py"] = (  # workflow code with a recorded clock: changed
            f"import time\nfrom pkg.fetching import fetch\n\n"
            f"def use{i}(u):\n    return fetch(u), time.time()\n"
        )
    project(tmp_path, files)
    serial = run_codemod([tmp_path], jobs=1)
    parallel = run_codemod([tmp_path], jobs=2)
    assert [(r.path, r.status, r.new) for r in parallel] == [
        (r.path, r.status, r.new) for r in serial
    ]
    assert sum(r.status == "changed" for r in serial) == 8


def test_strip_takes_the_codemod_back(tmp_path, capsys):
    demo(tmp_path)
    assert codemod("--write", ".") == 0
    assert codemod("--strip", "--write", ".") == 0
    assert (tmp_path / "pkg" / "fetching.py").read_text() == FETCH
    app = (tmp_path / "app.py").read_text()
    assert "autodurable" not in app and "time.sleep(1)" in app
    compile(app, "app.py", "exec")


def test_line_endings_and_file_mode_are_kept(tmp_path):
    demo(tmp_path)
    path = tmp_path / "pkg" / "fetching.py"
    path.write_bytes(FETCH.replace("\n", "\r\n").encode())
    path.chmod(0o640)
    [result] = [r for r in run_codemod([path])]
    assert result.status == "changed"
    assert write_file(result.path, result.original, result.new) is None
    data = path.read_bytes()
    assert b'@autodurable.step(unrecordable="rerun")\r\ndef fetch' in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_file_changed_meanwhile_is_not_overwritten(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("x = 2\n")
    assert "changed on disk" in (write_file(str(path), "x = 1\n", "y\n") or "")
    assert path.read_text() == "x = 2\n"


def test_bad_input_exits_2(tmp_path, capsys):
    assert codemod("missing.py") == 2
    assert "no such file or folder: missing.py" in capsys.readouterr().err
    assert codemod("--jobs", "-1", ".") == 2


def test_a_bad_configuration_is_one_line_and_exit_2(tmp_path, capsys):
    demo(tmp_path, '\n[tool.autodurable]\nsentinel = "loud"\n')
    assert codemod(".") == 2
    err = capsys.readouterr().err
    assert err.startswith("autodurable: invalid [tool.autodurable]") and "sentinel" in err
    assert len(err.strip().splitlines()) == 1


def test_without_libcst_the_command_names_the_extra(tmp_path):
    code = "import sys; sys.modules['libcst'] = None\nfrom autodurable._cli._main import main\n"
    code += "sys.exit(main(['codemod', '.']))\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "pip install 'autodurable[codemod]'" in done.stderr


def test_progress_bar_only_on_a_terminal_and_for_many_files():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = Progress(stream, width=10)
    bar.start(40)
    for _ in range(10):
        bar.update(FileResult("f.py", "unchanged"))
    assert stream.getvalue().endswith("\r[##........] 10/40 files")
    bar.clear()
    assert stream.getvalue().endswith("\r")
    quiet = Progress(io.StringIO())
    quiet.start(1000)
    quiet.update(FileResult("f.py", "unchanged"))
    small = Progress(Terminal())
    small.start(3)
    assert not quiet.enabled and not small.enabled and quiet.stream.getvalue() == ""


def test_summary_counts_every_status():
    results = [FileResult(str(i), status) for i, status in
               enumerate(["changed", "changed", "unchanged", "skipped", "failed"])]  # fmt: skip
    assert summary(results, written=True) == (
        "autodurable codemod: 2 file(s) changed, 1 unchanged, 1 skipped, 1 failed"
    )


def test_libcst_tool_runs_the_commands(tmp_path):
    """``python -m libcst.tool codemod make_durable.MakeDurableCommand PATH`` (the
    repository's .libcst.codemod.yaml names the codemods package), then its inverse."""
    demo(tmp_path)

    def tool(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "libcst.tool", "codemod", command, "--hide-progress",
             *args, str(tmp_path)],
            cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    shown = tool("make_durable.MakeDurableCommand", "--unified-diff", "1")
    assert shown.returncode == 0, shown.stderr
    assert "+        autodurable.sleep(1)" in shown.stdout
    assert (tmp_path / "app.py").read_text() == REPORT
    written = tool("make_durable.MakeDurableCommand", "--unrecordable", "error")
    assert written.returncode == 0, written.stderr
    assert (
        '@autodurable.step(unrecordable="error")\ndef fetch'
        in (tmp_path / "pkg" / "fetching.py").read_text()
    )
    again = run_codemod([tmp_path], unrecordable="error")
    assert {r.status for r in again} == {"unchanged"}
    stripped = tool("strip_durable.StripDurableCommand")
    assert stripped.returncode == 0, stripped.stderr
    assert (tmp_path / "pkg" / "fetching.py").read_text() == FETCH


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the default start method differs")
def test_jobs_on_the_command_line(tmp_path, capsys):
    demo(tmp_path)
    assert codemod("--jobs", "2", "--check", ".") == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["would change: app.py", "would change: pkg/fetching.py"]
