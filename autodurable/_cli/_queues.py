"""``autodurable worker`` (serve queues from the shell) and ``autodurable queues``
(how they stand).

Invariants are those of the CLI (`_main`), and:
- A worker imports the modules it is told to (``--import``, which is also
  how the queues they declare are stored), serves the queues named with
  ``--queue`` (all when none is), prints one status line, and runs until
  SIGTERM or Ctrl-C; the workflows it was running stay pending for another
  worker, as after any exit.
- ``queues list|show`` read only: they never create a database.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from ._format import emit, table, when
from ._workflows_act import import_modules


def add_parsers(commands: Any) -> None:
    """The ``worker`` and ``queues`` commands."""
    worker = commands.add_parser(
        "worker",
        help="serve queues: run their workflows within their limits until stopped",
        description="Serve queues from the shell: start their workflows within each "
        "queue's limits as this process has room, and adopt workflows that dead "
        "executors left. Runs until SIGTERM or Ctrl-C.",
    )
    worker.add_argument(
        "--queue", action="append", metavar="NAME", help="serve this queue (repeat; default: all)"
    )
    worker.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        default=[],
        help="import this module first: the one defining the workflows and queues (repeat)",
    )
    queues = commands.add_parser(
        "queues",
        help="the queues: depth, running, limits, oldest waiting",
        description="The queues recorded in the state database and how they stand.",
    )
    actions = queues.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every queue, one line each")
    show = actions.add_parser("show", help="one queue in detail")
    show.add_argument("name", metavar="NAME", help="the queue's name")
    for action in (listing, show):
        action.add_argument("--json", action="store_true", help="one JSON document on stdout")


def main_worker(args: argparse.Namespace) -> int:
    """``autodurable worker``: serve queues until stopped."""
    from .._control._recovery import recover
    from .._core._runtime import get_runtime

    import_modules(args.imports)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runtime = get_runtime()
    report = recover(watch=True, queues=args.queue)
    known = {spec.name for spec in runtime.store.queue_specs()}
    for name in sorted(set(args.queue or ()) - known):
        listed = ", ".join(sorted(known)) or "none yet"
        print(
            f"autodurable: no queue named {name!r} is declared (queues: {listed}); this worker "
            "serves it once one is (a typo? check --queue)",
            file=sys.stderr,
        )
    served = ", ".join(args.queue) if args.queue else "every queue"
    print(
        f"autodurable: worker serving {served} (state in {runtime.location}); "
        f"resumed {len(report.resumed)} workflow(s) at start",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    return 0


def main_queues(args: argparse.Namespace) -> int:
    """``autodurable queues list|show``."""
    from .._core._runtime import get_runtime

    runtime = get_runtime()
    if not runtime.state_exists():
        print(f"autodurable: no state database at {runtime.location}", file=sys.stderr)
        return 1
    store = runtime.store
    specs = {spec.name: spec for spec in store.queue_specs()}
    if args.action == "show" and args.name not in specs:
        known = ", ".join(specs) or "none"
        print(f"autodurable: no queue named {args.name!r} (queues: {known})", file=sys.stderr)
        return 2
    names = [args.name] if args.action == "show" else list(specs)
    rows: list[dict[str, Any]] = []
    for name in names:
        spec, stats = specs[name], store.queue_stats(name)
        rows.append(
            {
                "name": name,
                "enqueued": stats.enqueued,
                "delayed": stats.delayed,
                "running": stats.running,
                "finished": stats.finished,
                "oldest_waiting": stats.oldest_waiting,
                "concurrency": spec.concurrency,
                "worker_concurrency": spec.worker_concurrency,
                "rate": _rate(spec.rate_limit, spec.rate_period),
                "partitioned": spec.partitioned,
            }
        )
    headers = ["QUEUE", "ENQUEUED", "DELAYED", "RUNNING", "FINISHED", "OLDEST WAITING"]
    headers += ["CONCURRENCY", "PER WORKER", "RATE", "PARTITIONED"]
    text = table(
        headers,
        [
            [
                r["name"],
                str(r["enqueued"]),
                str(r["delayed"]),
                str(r["running"]),
                str(r["finished"]),
                when(r["oldest_waiting"]),
                str(r["concurrency"] or "-"),
                str(r["worker_concurrency"] or "-"),
                r["rate"] or "-",
                "yes" if r["partitioned"] else "no",
            ]
            for r in rows
        ],
    )
    emit(args, {"queues": rows} if args.action == "list" else rows[0], text)
    return 0


def _rate(limit: int | None, period: float | None) -> str | None:
    if limit is None or period is None:
        return None
    return f"{limit}/{period:g}s"
