"""What the import hook adds to a call made from plain code (outside any workflow).

Run ``python benchmarks/plain_calls.py [--repeats 7] [--number 200000]``
(``--quick``: a few thousand calls, one repeat, for the smoke test).

A small module is compiled twice in this process: as written, and as the import
hook rewrites it (the same analyser and ``rewrite()``; ``fakeio`` stands for an
I/O library and costs a function call). Each function is then called from plain
code, where the rewritten one must behave as the original: the table prints
µs per call for both, the difference, and the ratio. The kinds:

- ``step``: a function that does I/O (an inferred step, a wrapt proxy that is
  bypassed outside workflow code);
- ``method step``: the same as a method of an instance (binding included);
- ``workflow``: a function that calls a step (not wrapped at all now: only roots
  start workflows), the call of the step included;
- ``inline site``: workflow code with I/O of its own (a guarded site), the call
  of the step included.

The variants alternate within each repeat; each number is the median over the
repeats. The target: at most 0.3 µs more per call than the original.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import textwrap
import timeit
import types

from autodurable._analysis import analyse_sources
from autodurable._hook._rewrite import rewrite

TARGET_US = 0.3
SOURCE = textwrap.dedent(
    """
    import fakeio

    def fetch(x):
        return fakeio.get(x)

    class Client:
        def fetch(self, x):
            return fakeio.get(x)

    def flow(x):
        return fetch(x)

    def mixed(x):
        y = fakeio.get(x)
        return fetch(y)

    client = Client()
    """
)
CALLS = {
    "step": "fetch(1)",
    "method step": "client.fetch(1)",
    "workflow": "flow(1)",
    "inline site": "mixed(1)",
}


def _fakeio() -> types.ModuleType:
    module = types.ModuleType("fakeio")
    module.get = lambda x: x  # type: ignore[attr-defined]
    return module


def _module(rewritten: bool) -> types.ModuleType:
    name = "plain_calls_subject"
    tree = ast.parse(SOURCE)
    if rewritten:
        plan = analyse_sources({name: (f"{name}.py", SOURCE)}, io=["fakeio"]).modules[name]
        tree = rewrite(tree, plan)
    module = types.ModuleType(name)
    exec(compile(tree, f"{name}.py", "exec"), module.__dict__)
    return module


def measure(repeats: int, number: int) -> dict[str, dict[str, float]]:
    """µs per call: {kind: {"plain": ..., "hooked": ...}} (medians over `repeats`)."""
    sys.modules["fakeio"] = _fakeio()
    namespaces = {"plain": vars(_module(False)), "hooked": vars(_module(True))}
    samples: dict[str, dict[str, list[float]]] = {k: {"plain": [], "hooked": []} for k in CALLS}
    for repeat in range(repeats):
        order = ("plain", "hooked") if repeat % 2 == 0 else ("hooked", "plain")
        for kind, statement in CALLS.items():
            for variant in order:
                timer = timeit.Timer(statement, globals=namespaces[variant])
                samples[kind][variant].append(timer.timeit(number) / number * 1e6)
    return {
        kind: {variant: statistics.median(values) for variant, values in by_variant.items()}
        for kind, by_variant in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=200_000, help="calls per measurement")
    parser.add_argument("--quick", action="store_true", help="a few calls, for the smoke test")
    args = parser.parse_args(argv)
    repeats, number = (1, 2_000) if args.quick else (args.repeats, args.number)
    results = measure(repeats, number)
    print(f"calls from plain code; median of {repeats} x {number} calls; target +{TARGET_US} µs")
    print(f"{'kind':<12}  {'plain µs':>9}  {'hooked µs':>9}  {'added µs':>9}  {'ratio':>6}  target")
    for kind, times in results.items():
        added = times["hooked"] - times["plain"]
        ratio = times["hooked"] / times["plain"]
        verdict = "met" if added <= TARGET_US else "MISSED"
        print(
            f"{kind:<12}  {times['plain']:>9.3f}  {times['hooked']:>9.3f}  "
            f"{added:>+9.3f}  {ratio:>5.2f}x  {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
