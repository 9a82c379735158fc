"""Listing workflows whose results are large: out of line against small results.

Run ``python benchmarks/large_values.py [--workflows 1000] [--megabytes 1]
[--repeats 7]`` (``--quick``: 20 workflows, one repeat, for a smoke run).

It records, on fresh SQLite stores (temporary files), W workflows whose one
step, and so the workflow, returns M megabytes (stored out of line: the row holds a reference), W
whose step returns a few bytes (the baseline), and W with the same large
results kept in their rows (the threshold raised above them: what the rows
would hold without out-of-line storage). Then it times ``autodurable workflows
list --limit 100`` (in-process, output discarded) and the store's read of all
W workflows, medians of the repeats, and prints each against the baseline.
No timing is asserted anywhere: the numbers are for people.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import autodurable  # noqa: E402
from autodurable._cli import main as cli  # noqa: E402
from autodurable._core._runtime import _reset_overrides_for_tests, get_runtime  # noqa: E402

SIZE = {"bytes": 1}


@autodurable.step
def produce(n: int) -> bytes:
    return bytes([n % 256]) * SIZE["bytes"]


@autodurable.workflow
def job(n: int) -> bytes:
    return produce(n)  # the workflow's output is as large as its step's result


def fill(url: str, workflows: int, size: int, threshold: int | None) -> None:
    _reset_overrides_for_tests()
    autodurable.configure(database_url=url)
    if threshold is not None:
        out_of_line = get_runtime().codec.out_of_line
        assert out_of_line is not None
        out_of_line.threshold = threshold
    SIZE["bytes"] = size
    for n in range(workflows):
        autodurable.options(job, workflow_id=f"job-{n:05d}")(n)


def median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def list_command() -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli(["workflows", "list", "--limit", "100"]) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.workflows, args.repeats = 20, 1
    size = int(args.megabytes * 1024 * 1024)
    cases = {
        "small results (baseline)": (8, None),
        f"{args.megabytes:g} MB results, out of line": (size, None),
        f"{args.megabytes:g} MB results, in their rows": (size, 4 * size),
    }
    print(f"{args.workflows} workflows per case, medians of {args.repeats} (ms)")
    print(f"{'case':<36} {'list --limit 100':>17} {'read all':>10}")
    baseline: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as folder:
        for index, (label, (result_size, threshold)) in enumerate(cases.items()):
            url = f"sqlite:///{Path(folder) / f'case{index}.db'}"
            fill(url, args.workflows, result_size, threshold)
            store = get_runtime().store
            listed = median_ms(list_command, args.repeats)
            read_all = median_ms(
                lambda store=store: store.list_workflows(limit=args.workflows), args.repeats
            )
            if baseline is None:
                baseline = (listed, read_all)
            ratios = f"({listed / baseline[0]:.2f}x, {read_all / baseline[1]:.2f}x)"
            print(f"{label:<36} {listed:>17.1f} {read_all:>10.1f}  {ratios}")
            _reset_overrides_for_tests()
    return 0


if __name__ == "__main__":
    sys.exit(main())
