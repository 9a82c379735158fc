"""Start-up: what autodurable adds before a program's first line, and to its CLI.

Run ``python benchmarks/startup.py [--repeats 15]`` (``--quick``: 3 repeats, for
the smoke test). In a temporary project (a ``pyproject.toml`` and a one-line
``hello.py``), each command runs as a fresh process, the variants alternating
within each repeat so the machine's noise is spread over all of them, after
one untimed run of each (warm caches: bytecode, the hook's plan). Prints the
median wall time of each, and the comparisons the targets are about:

- ``import autodurable`` against ``python -c pass`` (the difference, in ms);
- ``autodurable run hello.py`` against ``python hello.py`` (the ratio), and, for
  scale, a process that only imports the standard modules any durable run needs
  (`FLOOR`: the database driver, JSON, paths, threads, typing) against the same;
- ``autodurable workflows list`` on a database with no workflows (ms);
- a Python process started by a command under ``autodurable run -- CMD`` (the
  environment the launcher gives CMD, captured once) that imports one of the
  project's modules, which the hook rewrites, against the same process started
  plainly (the difference, in ms).

The ``autodurable`` console script next to this interpreter is used when it
exists (as a user types it), else ``python -m autodurable``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("autodurable")
    found = str(script) if script.exists() else shutil.which("autodurable")
    return [found] if found else [sys.executable, "-m", "autodurable"]


HELPERS = """\
import json
import time


def stamp():
    return time.time()


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
"""
CHILD = "python -c 'import helpers'"
FLOOR_MODULES = "sqlite3, json, pathlib, threading, typing"
FLOOR = f"python -c 'import {FLOOR_MODULES}'"
LAUNCHED_CHILD = f"{CHILD} under run -- CMD"


def _variants(project: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    cli = _cli()
    plain = _env()
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], plain),
        "python -c 'import autodurable'": ([sys.executable, "-c", "import autodurable"], plain),
        "python hello.py": ([sys.executable, "hello.py"], plain),
        FLOOR: ([sys.executable, "-c", f"import {FLOOR_MODULES}"], plain),
        "autodurable run hello.py": ([*cli, "run", "hello.py"], plain),
        "autodurable workflows list": (
            [*cli, "workflows", "list", "--database-url", _empty(project)],
            plain,
        ),
        CHILD: ([sys.executable, "-c", "import helpers"], plain),
        LAUNCHED_CHILD: ([sys.executable, "-c", "import helpers"], _launched_env(cli, project)),
    }


def _launched_env(cli: list[str], project: Path) -> dict[str, str]:
    """The environment ``autodurable run -- CMD`` gives CMD's processes."""
    show = "import json, os; print(json.dumps(dict(os.environ)))"
    done = subprocess.run(
        [*cli, "run", "-q", "--", sys.executable, "-c", show],
        cwd=project,
        env=_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    env: dict[str, str] = json.loads(done.stdout)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    check = "import helpers, sys; sys.exit('__autodurable__' not in vars(helpers))"
    if subprocess.run([sys.executable, "-c", check], cwd=project, env=env).returncode:
        raise SystemExit("the launcher's environment did not rewrite helpers.py: nothing measured")
    return env


def _empty(project: Path) -> str:
    """A state database with its tables and no workflows."""
    url = f"sqlite:///{project / 'empty' / 'state.db'}"
    code = "import autodurable, sys; autodurable.configure(database_url=sys.argv[1]); "
    code += "from autodurable._core._runtime import get_runtime; get_runtime().store"
    subprocess.run([sys.executable, "-c", code, url], check=True, cwd=project, env=_env())
    return url


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTODURABLE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 repeats")
    options = parser.parse_args()
    repeats = 3 if options.quick else options.repeats
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "pyproject.toml").write_text('[project]\nname = "hello"\nversion = "0"\n')
        (project / "hello.py").write_text('print("hello")\n')
        (project / "helpers.py").write_text(HELPERS)
        variants = _variants(project)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for command, env in variants.values():
            _time(command, env, project)  # warm: bytecode, the hook's plan
        names = list(variants)
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(_time(*variants[name], project))
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"start-up, median of {repeats} runs each (ms):")
    for name, value in median.items():
        spread = (min(times[name]) * 1000, max(times[name]) * 1000)
        print(f"  {name:46} {value:7.1f}   (min {spread[0]:.1f}, max {spread[1]:.1f})")
    imported = median["python -c 'import autodurable'"] - median["python -c pass"]
    run = median["autodurable run hello.py"] / median["python hello.py"]
    print(f"import autodurable over python -c pass: {imported:+.1f} ms (target <= 35)")
    print(f"autodurable run hello.py / python hello.py: {run:.2f}x (target <= 2.5x)")
    floor = median[FLOOR] / median["python hello.py"]
    print(f"  for scale, importing {FLOOR_MODULES} / python hello.py: {floor:.2f}x")
    listed = median["autodurable workflows list"]
    print(f"autodurable workflows list, no workflows: {listed:.1f} ms (target <= 120)")
    child = median[LAUNCHED_CHILD] - median[CHILD]
    print(f"a process under run -- CMD importing a project module: {child:+.1f} ms (target <= 30)")


if __name__ == "__main__":
    main()
