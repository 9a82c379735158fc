"""``autodurable workflows stream ID KEY``: print the values of a workflow's stream.

Invariants:
- It only reads. Without ``--follow`` it prints the values stored now and
  exits; with it, it waits for new values (woken by the store, or looking
  again on a backoff) until the stream is closed (`close_stream`, or the
  workflow ended).
- Values are never decoded here (that would need the application's classes):
  ``--json`` prints one JSON document per line and value, ``{"workflow_id",
  "key", "offset", "value"}`` with the recorded JSON as value; for people, a
  string value is printed as it is (a token, a line of progress), any other
  value as its recorded JSON on one line. Notes go to stderr.
- Exit codes: 0 done (the stream ended, or without ``--follow`` its values so
  far printed); 2 bad input (an unknown id, a negative offset); 130 when
  interrupted (Ctrl-C) while following.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_stream_parser(sub: Any, common: Any) -> None:
    """Add ``workflows stream`` to the ``workflows`` subcommands (`common`: the shared
    ``--json`` and ``--database-url`` options)."""
    parser = sub.add_parser(
        "stream",
        help="print the values a workflow wrote to one of its streams (write_stream)",
        description="Print the values workflow ID wrote to its stream KEY with "
        "autodurable.write_stream, in order: a string as it is, any other value as JSON on "
        "one line. With --follow, wait for new values until the stream is closed (by "
        "close_stream, or when the workflow ends). --json prints one JSON document per line "
        'and value: {"workflow_id", "key", "offset", "value"}.',
    )
    parser.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    parser.add_argument("key", metavar="KEY", help="the stream's key, as given to write_stream")
    parser.add_argument(
        "--offset",
        type=_offset,
        default=0,
        metavar="N",
        help="start at the value of offset N (the first value is 0; default 0)",
    )
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="wait for new values until the stream is closed or the workflow ends",
    )
    common(parser)


def _offset(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"offsets start at 0, not {number}")
    return number


def stream_command(args: argparse.Namespace) -> int:
    """Run ``autodurable workflows stream``; returns the exit code."""
    # Here, not at the top: `add_stream_parser` builds the parser of every
    # ``workflows`` command, which must not pay for the runtime.
    from .._core._streams import stream_items

    printed = 0
    try:
        for item in stream_items(args.workflow_id, args.key, args.offset, follow=args.follow):
            value = json.loads(item.value or "null")
            if args.json:
                document = {
                    "workflow_id": args.workflow_id,
                    "key": args.key,
                    "offset": item.offset,
                    "value": value,
                }
                text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
            elif isinstance(value, str):
                text = value
            else:
                text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
            print(text, flush=True)  # a reader downstream sees each value as it comes
            printed += 1
    except KeyboardInterrupt:
        return 130
    if not printed and not args.json:
        print(f"autodurable: {_nothing(args)}", file=sys.stderr)
    return 0


def _nothing(args: argparse.Namespace) -> str:
    """Why nothing was printed: which streams the workflow has instead."""
    from .._core._runtime import get_runtime

    keys = get_runtime().store.list_streams(args.workflow_id)
    where = f"from offset {args.offset} " if args.offset else ""
    if args.key in keys:
        return f"stream {args.key!r} of {args.workflow_id} has no values {where}(yet)"
    others = ", ".join(repr(key) for key in keys) or "none"
    return f"workflow {args.workflow_id} wrote no stream {args.key!r} (its streams: {others})"
