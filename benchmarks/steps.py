"""Per-step cost of autodurable, against plain calls and a hand-written SQLite write.

Run ``python benchmarks/steps.py [--sizes 10,100,1000] [--repeats 7]
[--synchronous normal|full]`` (``--quick``: N=5, one repeat, for the smoke test).

For each workflow size N it measures, with ``time.perf_counter``:

- plain: N calls of the undecorated step function ``trivial(i) -> i``;
- autodurable: a ``@workflow`` calling the same function as a ``@step`` N times.
  The clock runs around the step loop *inside* the workflow body, so this is the
  marginal cost of a step (call, encode, one store write); the workflow's own
  start and finish records are reported separately, in the second table;
- raw: N rows written by hand, one ``INSERT`` + ``commit()`` each, with Python's
  default transaction handling, into a table shaped like autodurable's steps
  table, in another database file of the same temp folder with the same
  ``journal_mode=WAL`` and ``synchronous`` setting: the least a program that
  records each step durably must pay;
- replay: a workflow of N steps is interrupted after its last step by a
  ``BaseException`` (so it stays pending, released), then called again with the
  same workflow id, untimed the first time and timed the second. The timed call
  claims the workflow and loads its history in one transaction, replays the N
  steps from it without running them, and records the outcome; the whole call
  is divided by N. The part outside its step loop is in the second table too
  (it grows with N: loading the history is part of it).

The variants alternate within each repeat (in a rotating order) so that the
machine's noise is spread over all of them; every number is the median over
the repeats. Times are µs per call, step or row.

How to read the ratios: "overhead" is autodurable minus plain, what the library
adds to each step. "overhead/raw" compares it with the hand-written INSERT +
COMMIT per row: 1.0x means a step costs what writing its row by hand costs; the
target is <= 2.0x. At small N, and on a noisy machine, absolute times vary a
lot; ratios measured in the same run are more stable. Replay should cost far
less per step than the first run (no write per step).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import autodurable

TARGET = 2.0
VARIANTS = ("plain", "durable", "raw", "replay")  # alternated, in a rotating order
HEADER = (
    f"{'N':>6}  {'plain µs/call':>13}  {'autodurable µs/step':>19}  "
    f"{'raw INSERT+COMMIT µs/row':>24}  {'overhead µs/step':>16}  "
    f"{'overhead/raw':>12}  {'replay µs/step':>14}"
)
RAW_INSERT = (
    "INSERT INTO steps (workflow_id, position, name, status, output) VALUES (?, ?, ?, ?, ?)"
)


class Interrupt(BaseException):
    """Stops a workflow after its last step: it stays pending, not failed."""


def trivial(i: int) -> int:
    return i


durable_trivial = autodurable.step(trivial)
_body = {"interrupt": False, "loop": 0.0}  # set by the caller / the workflow body


@autodurable.workflow
def run_steps(n: int) -> int:
    start = time.perf_counter()
    for i in range(n):
        durable_trivial(i)
    _body["loop"] = time.perf_counter() - start
    if _body["interrupt"]:
        raise Interrupt
    return n


def time_plain(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        trivial(i)
    return time.perf_counter() - start


def time_workflow(n: int, resume: bool = False) -> tuple[float, float]:
    """(step loop, whole call) of a new workflow of n steps, or of resuming one."""
    call = autodurable.options(run_steps, workflow_id=uuid.uuid4().hex)
    if resume:  # run it once untimed, interrupted after its last step: it stays pending
        _body["interrupt"] = True
        with contextlib.suppress(Interrupt):
            call(n)
        _body["interrupt"] = False
    start = time.perf_counter()
    call(n)
    whole = time.perf_counter() - start
    return _body["loop"], whole


def time_raw(conn: sqlite3.Connection, n: int) -> float:
    workflow_id = uuid.uuid4().hex
    start = time.perf_counter()
    for i in range(n):
        conn.execute(RAW_INSERT, (workflow_id, i + 1, "trivial", "succeeded", json.dumps(i)))
        conn.commit()
    return time.perf_counter() - start


def open_raw(path: Path, synchronous: str) -> tuple[sqlite3.Connection, str]:
    conn = sqlite3.connect(path)  # default (implicit BEGIN) transaction handling
    journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute(
        "CREATE TABLE steps (workflow_id TEXT NOT NULL, position INTEGER NOT NULL, "
        "name TEXT NOT NULL, status TEXT NOT NULL, output TEXT, "
        "PRIMARY KEY (workflow_id, position)) WITHOUT ROWID"
    )
    conn.commit()
    return conn, journal


def run_variant(
    variant: str, n: int, got: dict[str, list[float]], conn: sqlite3.Connection
) -> None:
    """Time one variant once and append its samples."""
    if variant == "plain":
        got["plain"].append(time_plain(n) / n)
    elif variant == "durable":
        loop, whole = time_workflow(n)
        got["durable"].append(loop / n)
        got["run_fixed"].append(whole - loop)
    elif variant == "raw":
        got["raw"].append(time_raw(conn, n) / n)
    else:
        loop, whole = time_workflow(n, resume=True)
        got["replay"].append(whole / n)
        got["resume_fixed"].append(whole - loop)


def measure(
    sizes: list[int], repeats: int, conn: sqlite3.Connection
) -> dict[int, dict[str, list[float]]]:
    """Samples in seconds (per step, or per workflow outside the step loop) by size and kind."""
    kinds = ("plain", "durable", "raw", "replay", "run_fixed", "resume_fixed")
    samples = {n: {kind: [] for kind in kinds} for n in sizes}
    for variant in VARIANTS:  # warm up: open the store, register the executor, fill caches
        run_variant(variant, 10, {kind: [] for kind in kinds}, conn)
    for r in range(repeats):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for n in sizes:
            for variant in order:
                run_variant(variant, n, samples[n], conn)
    return samples


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be integers >= 1: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[10, 100, 1000],
        help="workflow sizes N, comma-separated (default 10,100,1000)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    parser.add_argument(
        "--synchronous",
        choices=["normal", "full"],
        default="normal",
        help="SQLite synchronous setting of both databases (default normal)",
    )
    parser.add_argument("--quick", action="store_true", help="N=5, one repeat (smoke test)")
    args = parser.parse_args(argv)
    sizes, repeats = ([5], 1) if args.quick else (args.sizes, max(1, args.repeats))

    with tempfile.TemporaryDirectory(prefix="autodurable-bench-") as folder:
        url = f"sqlite:///{Path(folder, 'autodurable.db')}?synchronous={args.synchronous}"
        autodurable.configure(database_url=url)
        conn, journal = open_raw(Path(folder, "raw.db"), args.synchronous)
        print(f"autodurable {autodurable.__version__} step benchmark")
        print(
            f"Python {platform.python_version()} ({platform.python_implementation()}) "
            f"on {platform.platform()}"
        )
        print(f"SQLite {sqlite3.sqlite_version}")
        print(
            f"settings: sizes={','.join(map(str, sizes))} repeats={repeats} "
            f"synchronous={args.synchronous} journal_mode={journal} (both databases)"
        )
        print(f"databases: {url}  and  {Path(folder, 'raw.db')} (temporary)")
        print()
        try:
            samples = measure(sizes, repeats, conn)
        finally:
            conn.close()
            # Retire this process's executor and close the store before the folder goes.
            autodurable.configure(database_url=f"sqlite:///{Path(folder, 'unused.db')}")

    def med(values: list[float]) -> float:
        return statistics.median(values) * 1e6

    print(f"Medians over {repeats} repeat(s), µs. Target: overhead/raw <= {TARGET:.1f}x.")
    print(HEADER)
    over = False
    fixed = []
    for n in sizes:
        got = samples[n]
        plain, durable, raw = med(got["plain"]), med(got["durable"]), med(got["raw"])
        overhead = durable - plain
        ratio = overhead / raw if raw > 0 else float("inf")
        over = over or ratio > TARGET
        mark = " *" if ratio > TARGET else "  "
        print(
            f"{n:>6}  {plain:>13.3f}  {durable:>19.2f}  {raw:>24.2f}  {overhead:>16.2f}  "
            f"{ratio:>10.2f}x{mark}  {med(got['replay']):>14.2f}"
        )
        fixed.append((n, med(got["run_fixed"]), med(got["resume_fixed"])))
    if over:
        print(f"* above the {TARGET:.1f}x target")
    print()
    print("Outside the step loop, µs per workflow call (whole call minus its step loop):")
    print(f"{'N':>6}  {'run: start + finish':>19}  {'resume: claim + load + finish':>29}")
    for n, run_fixed, resume_fixed in fixed:
        print(f"{n:>6}  {run_fixed:>19.1f}  {resume_fixed:>29.1f}")
    print("(the replay column includes the resume's claim + load + finish, spread over N)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
