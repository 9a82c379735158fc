"""Per-step cost of OpenTelemetry telemetry: off, off with an SDK set up, on.

Run ``python benchmarks/telemetry.py [--steps 1000] [--repeats 7]`` (``--quick``:
50 steps, one repeat, for a smoke run).

Each mode runs in a fresh interpreter (so that what one imports cannot slow
another), the modes alternating within each repeat in a rotating order; every
number is the median over the repeats, in µs per step. A run is a workflow of
N trivial steps on a fresh SQLite file (``synchronous=normal``); the clock runs
around the step loop inside the workflow body, as in ``benchmarks/steps.py``.

- ``off``: telemetry off (the default), and the child checks that nothing of
  OpenTelemetry was imported;
- ``off+sdk``: telemetry off in a program that has set up OpenTelemetry's SDK
  (a tracer provider with an exporter that keeps nothing, a meter provider):
  what an instrumented application pays for autodurable's steps before it
  turns telemetry on;
- ``on/api``: telemetry on without an SDK (OpenTelemetry's no-op providers):
  the cost of the hooks and the general step path alone;
- ``on/sdk``: telemetry on with the SDK as in ``off+sdk``: a span, a duration
  and a counter per step, created, ended and handed to the exporter.

Ratios are against ``off`` measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("off", "off+sdk", "on/api", "on/sdk")
ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
mode, steps, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode.endswith("sdk"):
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

import autodurable

autodurable.configure(
    f"sqlite:///{folder}/state.db?synchronous=normal", telemetry=mode.startswith("on")
)


@autodurable.step
def trivial(i):
    return i


@autodurable.workflow
def loop(n):
    start = time.perf_counter()
    for i in range(n):
        trivial(i)
    return time.perf_counter() - start


loop(10)  # warm up: the database, the caches, the first spans
elapsed = loop(steps)
imported = sorted({m.split(".")[0] for m in sys.modules if m.startswith("opentelemetry")})
print(json.dumps({"us_per_step": elapsed / steps * 1e6, "otel_imported": bool(imported)}))
"""


def run_mode(mode: str, steps: int) -> dict[str, float | bool]:
    """One run of `mode` in a fresh interpreter; its per-step time and what it imported."""
    with tempfile.TemporaryDirectory(prefix="autodurable-telemetry-") as folder:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(steps), folder],
            cwd=folder,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"mode {mode} failed:\n{done.stderr}")
    result: dict[str, float | bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure every mode `--repeats` times, alternating; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="50 steps, one repeat")
    args = parser.parse_args(argv)
    steps, repeats = (50, 1) if args.quick else (args.steps, args.repeats)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for repeat in range(repeats):
        order = MODES[repeat % len(MODES) :] + MODES[: repeat % len(MODES)]
        for mode in order:
            found = run_mode(mode, steps)
            if mode == "off" and found["otel_imported"]:
                raise SystemExit("telemetry off imported OpenTelemetry")
            times[mode].append(float(found["us_per_step"]))
    print(f"autodurable telemetry benchmark: {steps} steps per run, {repeats} repeat(s)")
    print(f"Python {sys.version.split()[0]}; SQLite synchronous=normal; medians, µs per step")
    off = statistics.median(times["off"])
    print(f"{'mode':>8}  {'µs/step':>8}  {'vs off':>7}")
    for mode in MODES:
        median = statistics.median(times[mode])
        print(f"{mode:>8}  {median:8.2f}  {median / off:6.2f}x")
    print("off imported no OpenTelemetry module (checked in every run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
