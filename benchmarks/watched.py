"""What watching costs a function that does no I/O (`autodurable.watched`).

Run ``python benchmarks/watched.py [--repeats 7] [--number 100000]``
(``--quick``: a few thousand calls, one repeat, for the smoke test).

A watched function is one the analyser could not type (``client.send(...)``
on an untyped parameter): in workflow code each call runs with a watch, and
is recorded only if it reaches an I/O chokepoint. Most watched functions in
real code do no I/O (``formatter.render(...)``): this measures what they pay.

- outside workflows: a plain call of the watched function against the same
  function undecorated (the wrapper is disabled there);
- inside a workflow: the same two calls made from a workflow's code (on a
  fresh SQLite file; nothing is written, since the function does no I/O), the
  watched call's position, digest of its arguments and watch included.

Each number is the median over the repeats, in µs per call; targets: at most
1 µs more than the plain function outside workflows, at most 3 µs inside.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import autodurable

TARGET_OUTSIDE_US = 1.0
TARGET_INSIDE_US = 3.0


def render(template: str, value: int) -> str:
    return template.format(value)


watched_render = autodurable.watched(render)


def _loop(fn, number: int) -> float:
    start = time.perf_counter()
    for i in range(number):
        fn("item {}", i)
    return (time.perf_counter() - start) / number * 1e6


@autodurable.workflow
def measure(number: int) -> tuple[float, float]:
    plain = _loop(render, number)
    watched = _loop(watched_render, number)
    return plain, watched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="a few calls, one repeat")
    args = parser.parse_args()
    repeats, number = (1, 2_000) if args.quick else (args.repeats, args.number)
    with tempfile.TemporaryDirectory() as folder:
        autodurable.configure(database_url=f"sqlite:///{Path(folder) / 'state.db'}")
        rows: dict[str, list[float]] = {
            k: [] for k in ("out_plain", "out_watched", "in_plain", "in_watched")
        }
        for _ in range(repeats):
            rows["out_plain"].append(_loop(render, number))
            rows["out_watched"].append(_loop(watched_render, number))
            plain, watched = measure(number)
            rows["in_plain"].append(plain)
            rows["in_watched"].append(watched)
    med = {k: statistics.median(v) for k, v in rows.items()}
    outside = med["out_watched"] - med["out_plain"]
    inside = med["in_watched"] - med["in_plain"]
    print(f"{'where':<20} {'plain µs':>9} {'watched µs':>11} {'extra µs':>9} {'target':>7}")
    for where, plain, watched, extra, target in (
        ("outside workflows", med["out_plain"], med["out_watched"], outside, TARGET_OUTSIDE_US),
        ("inside a workflow", med["in_plain"], med["in_watched"], inside, TARGET_INSIDE_US),
    ):
        verdict = "ok" if extra <= target else "MISSED"
        print(f"{where:<20} {plain:>9.3f} {watched:>11.3f} {extra:>9.3f} {target:>7.1f} {verdict}")
    print(f"(medians of {repeats} repeat(s) of {number} calls)")


if __name__ == "__main__":
    main()
