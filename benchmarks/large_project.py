"""A large project under ``autodurable run``: cold, warm, after an edit, without bytecode.

Run ``python benchmarks/large_project.py [--repeats 3] [--package django]``. The
project is the source of an installed package (Django by default, 800+ modules;
nothing of it is kept in this repository) copied into a temporary folder with a
``pyproject.toml``, and a script importing a fixed sample of 200 of its modules.
Each variant is a fresh process; the variants alternate within each repeat, and
the medians are printed with the targets:

- plain: ``python app.py`` with no bytecode (cold) and with it (warm);
- ``autodurable run app.py``: cold (no cache of any kind), warm, after editing one
  module the script imports (a comment line added: the module's source changes),
  and with ``PYTHONDONTWRITEBYTECODE=1`` after ``autodurable compile`` (the caches
  built ahead of time in the folder ``AUTODURABLE_CACHE_DIR`` names, as a
  Dockerfile would);
- the peak memory of the analysis alone (a process that only analyses the
  project, less the same process before it starts).

``--quick`` (the smoke test) uses a generated project of 60 modules instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = 200
# Modules of the package that need optional dependencies or a configured framework.
SKIPPED = ("test", "migrations", "templatetags", "management.commands", "oracle", "mysql",
           "postgres", "gis", "locale", "app_template", "project_template", "__main__")  # fmt: skip


def _copy_package(name: str, into: Path) -> list[str]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not an installed package: pip install {name}")
    source = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    modules = []
    for path in sorted((into / name).rglob("*.py")):
        parts = list(path.relative_to(into).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        if not any(skip in module for skip in SKIPPED):
            modules.append(module)
    return modules


def _generated(into: Path, count: int) -> list[str]:
    """A project of `count` modules calling each other, some doing file I/O."""
    package = into / "gen"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for n in range(count):
        lines = ["import json, pathlib", f"from gen import m{max(n - 1, 0)} as previous", ""]
        lines += [f"def read_{n}(path):", "    return json.loads(pathlib.Path(path).read_text())"]
        later = f" or previous.work_{n - 1}(path)" if n else ""
        lines += ["", f"def work_{n}(path):", f"    return read_{n}(path){later}"]
        (package / f"m{n}.py").write_text("\n".join(lines) + "\n")
    return [f"gen.m{n}" for n in range(count)]


def _project(folder: Path, package: str, quick: bool) -> Path:
    modules = _generated(folder, 60) if quick else _copy_package(package, folder)
    (folder / "pyproject.toml").write_text('[project]\nname = "large"\nversion = "0"\n')
    (folder / "settings.py").write_text("SECRET_KEY = 'x'\nINSTALLED_APPS = []\n")
    sample = sorted(random.Random(1).sample(modules, min(SAMPLE, len(modules))))
    files = [folder / (name.replace(".", "/") + ".py") for name in sample]
    edited = next(path for path in files[len(files) // 2 :] if path.is_file())
    (folder / "app.py").write_text(
        "import importlib, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n"
        "imported = 0\n"
        f"for name in {sample!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        imported += 1\n"
        "    except Exception:\n"
        "        pass\n"
        "print('imported', imported)\n"
    )
    return edited


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTODURABLE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, **extra}


def _no_bytecode(folder: Path) -> dict[str, str]:
    """No bytecode, and the hook's caches in a folder of the project, as a Dockerfile
    would name one (`_clear` removes it)."""
    return _env(PYTHONDONTWRITEBYTECODE="1", AUTODURABLE_CACHE_DIR=str(folder / ".cache"))


def _clear(folder: Path) -> None:
    for cache in folder.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(folder / ".autodurable", ignore_errors=True)
    shutil.rmtree(folder / ".cache", ignore_errors=True)


def _time(command: list[str], folder: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "imported" not in done.stdout:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def _analysis_memory(folder: Path) -> float:
    """MB the analysis of the project adds to the peak of a process that only analyses."""
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from autodurable._hook._cache import ProjectState\n"
        "state = ProjectState(Path(sys.argv[1]))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "state.plan\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    _clear(folder)
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], env=_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--package", default="django")
    parser.add_argument("--quick", action="store_true", help="a generated project, 1 repeat")
    options = parser.parse_args()
    repeats = 1 if options.quick else options.repeats
    python, cli = sys.executable, [sys.executable, "-m", "autodurable"]
    run = [*cli, "run", "-q", "--new", "app.py"]
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        edited = _project(folder, options.package, options.quick)
        count = len(list(folder.rglob("*.py")))
        print(f"project: {count} modules ({'generated' if options.quick else options.package})")

        def plain_cold() -> float:
            _clear(folder)
            return _time([python, "app.py"], folder, _env())

        def plain_warm() -> float:
            return _time([python, "app.py"], folder, _env())

        def hook_cold() -> float:
            _clear(folder)
            return _time(run, folder, _env())

        def hook_warm() -> float:
            return _time(run, folder, _env())

        def hook_edited() -> float:
            _time(run, folder, _env())  # warm first
            with edited.open("a") as fh:
                fh.write(f"# edited {time.time_ns()}\n")
            return _time(run, folder, _env())

        def no_bytecode_compiled() -> float:
            _clear(folder)
            env = _no_bytecode(folder)
            subprocess.run(
                [*cli, "compile", "app.py"], cwd=folder, env=env, check=True, capture_output=True
            )
            return _time(run, folder, env)

        def no_bytecode_warm() -> float:
            return _time(run, folder, _no_bytecode(folder))

        variants = {
            "plain, cold": plain_cold,
            "plain, warm": plain_warm,
            "run, cold": hook_cold,
            "run, warm": hook_warm,
            "run, after editing one module": hook_edited,
            "run, PYTHONDONTWRITEBYTECODE, after compile": no_bytecode_compiled,
            "run, PYTHONDONTWRITEBYTECODE, warm": no_bytecode_warm,
        }
        for _ in range(repeats):  # in this order: each variant leaves what the next needs
            for name, variant in variants.items():
                times.setdefault(name, []).append(variant())
        memory = statistics.median(_analysis_memory(folder) for _ in range(repeats))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"median of {repeats} runs each (s):")
    for name, value in median.items():
        spread = f"(min {min(times[name]):.2f}, max {max(times[name]):.2f})"
        print(f"  {name:46} {value:6.2f}   {spread}")
    warm = median["run, warm"]
    checks = [
        ("cold start / plain cold", median["run, cold"] / median["plain, cold"], "<= 3x"),
        ("after an edit / warm start", median["run, after editing one module"] / warm, "<= 1.3x"),
        ("no bytecode, compiled / warm", median["run, PYTHONDONTWRITEBYTECODE, warm"] / warm, "1x"),
    ]
    for label, ratio, target in checks:
        print(f"{label}: {ratio:.2f}x (target {target})")
    print(f"peak memory of the analysis: {memory:.0f} MB (target <= 100 MB)")


if __name__ == "__main__":
    main()
