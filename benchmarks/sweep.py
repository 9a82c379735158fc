"""How long a crash sweep takes (`autodurable.testing.crash_sweep`).

Run ``python benchmarks/sweep.py [--steps 20] [--repeats 5] [--database-url URL]``
(``--quick``: 5 steps, one repeat, for the smoke test).

The workflow calls ``--steps`` trivial steps, each through a fake service that
honours idempotency keys (`autodurable.testing.effect`). The sweep runs it twice
uncrashed, then 2 x steps times crashed (before and after each step) and
resumed: 2 + 4 x steps runs in all. Printed: the median over the repeats of the
whole sweep's time, of one uncrashed run measured in the same process, and
their ratio (how many uncrashed runs the sweep costs). Target: a sweep of a
20-step workflow well under 10 seconds.

Then virtual time: a workflow that sleeps 30 days and then waits a day for a
message that never comes, run under `virtual_time()`: the real time it takes
(median). Target: under a second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

import autodurable
from autodurable.testing import crash_sweep, effect, throwaway_runtime, virtual_time

DAY = 86400.0


@autodurable.step
def work(n: int) -> int:
    effect("work", idempotency_key=autodurable.idempotency_key())
    return n * 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    steps, repeats = (5, 1) if args.quick else (args.steps, args.repeats)

    @autodurable.workflow
    def flow(count: int) -> int:
        return sum(work(n) for n in range(count))

    sweeps, runs = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder, throwaway_runtime(folder):
            started = time.perf_counter()
            autodurable.options(flow, workflow_id=f"plain-{uuid.uuid4().hex}")(steps)
            runs.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = crash_sweep(flow, steps)
            sweeps.append(time.perf_counter() - started)
            assert report.cases == 2 * steps

    @autodurable.workflow
    def month(user: str) -> object:
        autodurable.sleep(30 * DAY)
        return autodurable.recv("feedback", timeout=DAY)

    months = []
    for _ in range(repeats):
        with (
            tempfile.TemporaryDirectory() as folder,
            throwaway_runtime(folder),
            virtual_time() as clock,
        ):
            started = time.perf_counter()
            autodurable.options(month, workflow_id=f"month-{uuid.uuid4().hex}")("ada")
            months.append(time.perf_counter() - started)
            assert clock.elapsed >= 31 * DAY
    sweep, run = statistics.median(sweeps), statistics.median(runs)
    print(f"crash sweep of a {steps}-step workflow (SQLite, {repeats} repeat(s), medians)")
    print(f"  one uncrashed run      {run * 1000:8.1f} ms")
    print(f"  the whole sweep        {sweep * 1000:8.1f} ms  ({2 + 4 * steps} runs)")
    print(f"  sweep / run            {sweep / run:8.1f}x")
    print(f"  target: well under 10 s; {'met' if sweep < 10 else 'MISSED'}")
    print("  every repeat (s): " + ", ".join(f"{s:.2f}" for s in sweeps))
    month_time = statistics.median(months)
    print("virtual time: 30 days of sleep, then a day's wait for a message")
    print(f"  real time              {month_time * 1000:8.1f} ms")
    print(f"  target: under 1 s; {'met' if month_time < 1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
