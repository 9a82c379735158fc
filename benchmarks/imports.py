"""Import-time cost of autodurable's import hook, against plain ``import``.

Run ``python benchmarks/imports.py [--modules 200] [--repeats 5]`` (``--quick``:
20 modules, one repeat, for the smoke test).

It generates, in a temporary folder, a project (a ``pyproject.toml`` marks its
root) of N modules spread over a few packages. Each module imports a few
standard-library modules and 1-3 other generated modules (the first one none),
has a little module-level code (constants, a dict), about eight functions and a
class. Some functions do I/O (``open``, ``urllib.request.urlopen``,
``sqlite3.connect``, ``time.time``, ``random.random``), some call other
modules' functions, so roles propagate across modules; none of them runs at
import time. Then it imports all N modules (one ``import`` statement each), in
a fresh ``python -c`` subprocess per measurement so no import cache leaks
between them, in four variants:

- plain cold: plain Python after deleting every ``__pycache__`` of the
  project: every module is compiled;
- plain warm: the same, with the normal bytecode cached;
- hook cold: ``prepare_hook(root)`` first (as ``autodurable run`` does), then
  the same imports, after deleting every ``__pycache__`` of the project,
  autodurable's own caches there included (the rewritten bytecode, the project
  plan): the whole project is analysed and every module rewritten and compiled;
- hook warm: the same with the rewritten bytecode and the plan cached.

Before each warm measurement an untimed run of the same variant fills the
caches. Every child first imports the standard-library modules the project
uses, before its clock starts and in both variants (autodurable imports some of
them itself, which would otherwise move their cost out of the hook's window),
and runs without ``PYTHONDONTWRITEBYTECODE`` and ``PYTHONPYCACHEPREFIX`` so that
the caches are written where the benchmark expects them. The variants
alternate within each repeat (in a rotating order) so that the machine's noise
is spread over all of them; every number is the median over the repeats.

How to read it: "imports" is timed inside the child with
``time.perf_counter``, from just before the first project import to after the
last; it is what the targets are about (hook/plain within 3x cold and 1.1x
warm). "autodurable import" (importing ``autodurable._hook._launcher``) and
"prepare_hook" (discovering the project, fingerprinting every file, installing
the finder and the sentinel) are the hook's set-up before the first import;
the first is a fixed cost, the second grows with the project. "process" is the
whole child process timed by the parent (interpreter start-up included), what
a user waits for. Each child checks that the hook really rewrote the modules
(or, without it, that nothing is rewritten); the benchmark fails if not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("acme_core", "acme_billing", "acme_reports", "acme_web")
VARIANTS = ("plain cold", "plain warm", "hook cold", "hook warm")
TARGETS = {"cold": 3.0, "warm": 1.1}
EXTRA_STDLIB = ("os", "re", "logging", "functools", "itertools", "collections", "dataclasses")
STDLIB = ("json", "random", "sqlite3", "sys", "time", "urllib.request", *EXTRA_STDLIB)
MARK = "BENCH-RESULT "

# -- the generated project ---------------------------------------------------------------------

MODULE = '''\
"""Generated module {name}: settings, I/O helpers and a service."""

from __future__ import annotations

{stdlib}

{project}

TIMEOUT = {timeout}
RETRIES = {retries}
SETTINGS = {{
    "name": "{short}",
    "limit": {limit},
    "tags": ["{short}", "generated", "benchmark"],
    "endpoints": {{"primary": "https://example.invalid/{short}", "backup": None}},
}}
WEIGHTS = tuple(i / {limit} for i in range(8))


def read_settings(path):
    """Load a JSON settings file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def fetch(url):
    """Download a document."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read()


def query(db, sql, params=()):
    """Run a query on a SQLite file."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stamp():
    """Now, as a UNIX time."""
    return time.time()


def jitter(base):
    """A randomised back-off delay."""
    return base * (1.0 + random.random())


def normalize(values):
    """Scale `values` so that they sum to 1."""
    total = sum(values) or 1
    return [value / total for value in values]


def summarize(items):
    """Count the entries of each group."""
    return {{key: len(value) for key, value in sorted(items.items())}}


def process(url, db):
    """Fetch, store and summarise: calls I/O helpers here and in other modules."""
    data = {fetcher}.fetch(url)
    rows = {querier}.query(db, "SELECT id, value FROM items WHERE size < ?", (len(data),))
    weights = normalize([len(data), len(rows), {limit}])
    return {{"weights": weights, "rows": rows, "at": stamp(), "by": {helper}.stamp()}}


class Service:
    """A small service object of module {name}."""

    def __init__(self, name, db):
        self.name = name
        self.db = db
        self.calls = 0

    def run(self, url):
        return fetch(url)

    def refresh(self, url):
        return {worker}.process(url, self.db)

    def describe(self):
        return f"{{self.name}} ({{SETTINGS['name']}}, limit {{SETTINGS['limit']}})"
'''

PACKAGE_INIT = '''\
"""Generated package {name}."""

VERSION = "1.0.{index}"
DEFAULTS = {{"package": "{name}", "debug": False}}
'''


def module_names(count: int) -> list[str]:
    """Dotted names of the `count` generated modules, spread over the packages."""
    return [f"{PACKAGES[i % len(PACKAGES)]}.m{i:03d}" for i in range(count)]


def module_source(index: int, names: list[str], rng: random.Random) -> str:
    """The source of module number `index`; it imports 1-3 modules generated before it."""
    name = names[index]
    deps = rng.sample(names[:index], min(index, rng.randint(1, 3)))
    stdlib = sorted(
        {"json", "random", "sqlite3", "time", "urllib.request", *rng.sample(EXTRA_STDLIB, 2)}
    )
    project = [f"from {dep.rpartition('.')[0]} import {dep.rpartition('.')[2]}" for dep in deps]
    if not deps:
        stdlib = sorted({*stdlib, "sys"})

    def local() -> str:
        """What a call to another module's function goes through (itself, for the first)."""
        return rng.choice(deps).rpartition(".")[2] if deps else "sys.modules[__name__]"

    return MODULE.format(
        name=name,
        short=name.rpartition(".")[2],
        stdlib="\n".join(f"import {module}" for module in stdlib),
        project="\n".join(sorted(project)) or "# the first module imports no other",
        timeout=rng.randint(5, 60),
        retries=rng.randint(1, 5),
        limit=rng.randint(10, 1000),
        fetcher=local(),
        querier=local(),
        helper=local(),
        worker=local(),
    )


def generate(root: Path, count: int) -> list[str]:
    """Write the project under `root`; returns its module names in import order."""
    rng = random.Random(20240601)
    names = module_names(count)
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "acme"\nversion = "1.0.0"\n', encoding="utf-8"
    )
    for index, package in enumerate(PACKAGES):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(
            PACKAGE_INIT.format(name=package, index=index), encoding="utf-8"
        )
    for index, name in enumerate(names):
        package, _, module = name.rpartition(".")
        (root / package / f"{module}.py").write_text(
            module_source(index, names, rng), encoding="utf-8"
        )
    return names


def delete_caches(root: Path) -> None:
    """Delete every ``__pycache__`` of the project (normal and autodurable's caches)."""
    for folder in sorted(root.rglob("__pycache__")):
        shutil.rmtree(folder)


def cache_stamps(root: Path) -> dict[str, int]:
    """Path -> mtime of every cache file, to tell whether a run rewrote any."""
    return {str(path): path.stat().st_mtime_ns for path in root.rglob("__pycache__/*")}


# -- the child process -------------------------------------------------------------------------

CHILD = """\
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
hook = {hook!r}
if hook:
    from pathlib import Path
    from autodurable._hook._launcher import prepare_hook
imported = time.perf_counter()
{stdlib}
stdlib = time.perf_counter()
if hook:
    prepare_hook(Path({root!r}))
before = time.perf_counter()
{imports}
after = time.perf_counter()
names = {names!r}
modules = [sys.modules[name] for name in names]
rewritten = sum("__autodurable__" in vars(module) for module in modules)
durable = sum(
    "DurableFunction" in [c.__name__ for c in type(value).__mro__]
    for module in modules
    for value in list(vars(module).values())
)
print({mark!r} + json.dumps({{
    "autodurable": imported - start,
    "stdlib": stdlib - imported,
    "prepare": before - stdlib,
    "imports": after - before,
    "rewritten": rewritten,
    "durable": durable,
}}))
"""


def child_code(root: Path, names: list[str], hook: bool) -> str:
    """The ``python -c`` program of one measurement."""
    return CHILD.format(
        root=str(root),
        hook=hook,
        stdlib="\n".join(f"import {module}" for module in STDLIB),
        imports="\n".join(f"import {name}" for name in names),
        names=names,
        mark=MARK,
    )


def child_env() -> dict[str, str]:
    """This environment, minus what would disable or move the bytecode caches."""
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "AUTODURABLE_DATABASE_URL"):
        env.pop(name, None)
    return env


class BenchmarkError(Exception):
    """The benchmark could not measure what it claims to (a child failed, no hook...)."""


def run_child(variant: str, root: Path, names: list[str], code: str) -> dict[str, float]:
    """Run one measurement of `variant` (caches prepared by the caller); its timings in s."""
    hook = variant.startswith("hook")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise BenchmarkError(
            f"the {variant} child failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    result = json.loads(lines[-1][len(MARK) :])
    if hook and (result["rewritten"] != len(names) or result["durable"] == 0):
        raise BenchmarkError(
            f"the import hook was not active in the {variant} child: {result['rewritten']} of "
            f"{len(names)} modules rewritten, {result['durable']} DurableFunction(s) defined\n"
            f"{done.stderr}"
        )
    if not hook and (result["rewritten"] or result["durable"]):
        raise BenchmarkError(f"plain Python rewrote modules in the {variant} child: {result}")
    result["process"] = wall
    return result


def measure(
    root: Path, names: list[str], repeats: int
) -> tuple[dict[str, dict[str, list[float]]], list[str]]:
    """Samples (s) by variant and kind, and warnings about warm runs that missed their cache."""
    codes = {hook: child_code(root, names, hook) for hook in (False, True)}
    samples: dict[str, dict[str, list[float]]] = {variant: {} for variant in VARIANTS}
    warnings: set[str] = set()

    def once(variant: str, record: bool) -> None:
        code = codes[variant.startswith("hook")]
        if variant.endswith("cold"):
            delete_caches(root)
        else:
            run_child(variant, root, names, code)  # untimed: fills this variant's caches
        before = cache_stamps(root)
        result = run_child(variant, root, names, code)
        if variant.endswith("warm"):
            changed = sum(before.get(path) != stamp for path, stamp in cache_stamps(root).items())
            if changed:
                warnings.add(f"{variant}: a run (re)wrote {changed} cache file(s)")
        if record:
            for kind in ("autodurable", "stdlib", "prepare", "imports", "process"):
                samples[variant].setdefault(kind, []).append(result[kind])

    for variant in VARIANTS:  # warm up: the interpreter's and autodurable's files, the disk
        once(variant, record=False)
    for r in range(repeats):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for variant in order:
            once(variant, record=True)
    return samples, sorted(warnings)


# -- the report --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=200, help="modules (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    parser.add_argument("--quick", action="store_true", help="20 modules, one repeat (smoke test)")
    args = parser.parse_args(argv)
    count, repeats = (20, 1) if args.quick else (max(1, args.modules), max(1, args.repeats))

    import autodurable  # the version, and a clear error now if it is not importable

    print(f"autodurable {autodurable.__version__} import-hook benchmark")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) "
        f"on {platform.platform()}"
    )
    with tempfile.TemporaryDirectory(prefix="autodurable-imports-") as folder:
        root = Path(folder) / "project"
        names = generate(root, count)
        lines = sum(
            len(path.read_text(encoding="utf-8").splitlines()) for path in root.rglob("*.py")
        )
        print(
            f"project: {count} modules in {len(PACKAGES)} packages (+{len(PACKAGES)} "
            f"__init__.py), {lines} lines; repeats={repeats}"
        )
        print()
        try:
            samples, warnings = measure(root, names, repeats)
        except BenchmarkError as exc:
            print(f"benchmark FAILED: {exc}", file=sys.stderr)
            return 1

    def med(variant: str, kind: str) -> float:
        values = samples[variant].get(kind)
        return statistics.median(values) * 1e3 if values else 0.0

    print(f"Medians over {repeats} repeat(s), ms.")
    print(
        f"{'variant':<10}  {'imports':>9}  {'autodurable import':>18}  {'prepare_hook':>12}  "
        f"{'process':>9}"
    )
    for variant in VARIANTS:
        hook = variant.startswith("hook")
        setup = (
            f"{med(variant, 'autodurable'):>18.1f}  {med(variant, 'prepare'):>12.1f}"
            if hook
            else f"{'-':>18}  {'-':>12}"
        )
        print(
            f"{variant:<10}  {med(variant, 'imports'):>9.1f}  {setup}  "
            f"{med(variant, 'process'):>9.1f}"
        )
    print()
    print(
        f"{'hook/plain':<10}  {'imports':>9}  {'imports+prepare_hook':>20}  {'process':>9}  "
        f"target (imports)"
    )
    missed = []
    for state in ("cold", "warm"):
        hook, plain = f"hook {state}", f"plain {state}"
        base = med(plain, "imports")
        ratio = med(hook, "imports") / base
        with_prepare = (med(hook, "imports") + med(hook, "prepare")) / base
        process = med(hook, "process") / med(plain, "process")
        target = TARGETS[state]
        verdict = "met" if ratio <= target else "MISSED"
        if ratio > target:
            missed.append(state)
        print(
            f"{state:<10}  {ratio:>8.2f}x  {with_prepare:>19.2f}x  {process:>8.2f}x  "
            f"<= {target:.1f}x {verdict}"
        )
    print()
    print("imports: timed in the child from before the first project import to after the last.")
    print("autodurable import, prepare_hook: the hook's set-up before it (hook variants only).")
    print("process: the whole child process, interpreter start-up included, timed by the parent.")
    for warning in warnings:
        print(f"warning: {warning}")
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
