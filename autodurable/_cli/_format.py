"""Parsing and formatting for the ``autodurable workflows`` commands.

Invariants: durations and moments are parsed strictly (a clear message names
the forms accepted); tables and values are rendered on one line each, cut
to a width, never wrapped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``2h``, ``3d`` or ``1w``."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a number and a unit, such as 30s, 15m, 2h, 7d or 2w"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_when(text: str) -> float:
    """A moment: a duration ago (``2h``) or a date and time (``2024-05-01T12:00``, local time)."""
    if _DURATION.match(text):
        return time.time() - parse_duration(text)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration ago (such as 2h or 7d) nor a date and time "
            "(such as 2024-05-01 or 2024-05-01T12:00, local time unless it ends in +00:00)"
        ) from None
    return moment.timestamp()


def when(seconds: float | None) -> str:
    """A moment in local time, for tables."""
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def span(seconds: float | None) -> str:
    """A duration for people: 12ms, 1.5s, 3m 4s, 2h 5m, 3d 4h."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def preview(value: Any, width: int = 60) -> str:
    """Recorded JSON on one line, cut at `width` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def json_text(document: Any) -> str:
    """The one JSON shape of every ``--json`` output: indented, UTF-8 as it is."""
    return json.dumps(document, ensure_ascii=False, indent=2)


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print `document` as JSON with ``--json``, else the text for people (if any)."""
    if args.json:
        print(json_text(document))
    elif text:
        print(text)


def step_number(text: str) -> int:
    """An argparse type: a step number (1, 2, ...), as ``workflows steps`` shows them."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"step numbers start at 1, not {number}")
    return number
