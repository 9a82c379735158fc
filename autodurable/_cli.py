"""The ``autodurable`` command line.

Invariants: every command exits 0 on success, 1 when the thing asked about is
not as asked (for example a failed workflow), 2 on bad input; errors are one
readable line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence

from . import __version__
from ._errors import AutodurableError
from ._runtime import configure, get_runtime


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autodurable",
        description="Crash-proof Python programs: durable workflows and steps.",
    )
    parser.add_argument("--version", action="version", version=f"autodurable {__version__}")
    parser.add_argument(
        "--database-url",
        help="state database (default: AUTODURABLE_DATABASE_URL, [tool.autodurable] in "
        "pyproject.toml, or sqlite:///.autodurable/state.db)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("info", help="where the state lives and how many workflows it holds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.database_url:
            configure(database_url=args.database_url)
        return _info()
    except AutodurableError as exc:
        print(f"autodurable: {exc}", file=sys.stderr)
        return 2


def _info() -> int:
    runtime = get_runtime()
    store = runtime.store
    counts = Counter(record.status for record in store.list_workflows(limit=1_000_000))
    print(f"database: {runtime.settings.database_url}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    print(f"workflows: {summary}")
    return 0
