"""Bounded results for the MCP tools: pages of a list of modules, and capped texts.

A tool result lands whole in an agent's context, so none may grow with the
project: `explain` over a folder returns one page of at most ``max_chars``
characters of JSON and a ``next`` cursor to ask for the rest; a diff longer
than the bound is cut at a line and says how to see it whole.

Invariants:
- Every page holds at least one item, so paging always ends; a page is never
  larger than the bound plus one item (an item is one function, or one place
  the analyser could not decide: a few hundred characters).
- A cursor is ``"<module>:<item>"``, indexes into the list a call computes
  afresh from the files; a cursor this module did not make is refused with a
  message that says to start again without one.
- Pure: pages values, reads and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_CHARS = 20_000  # about 5,000 tokens
MIN_MAX_CHARS, MAX_MAX_CHARS = 2_000, 200_000
_ITEMS = ("functions", "undecided")


class CursorError(ValueError):
    """A cursor that is not one `page` returned."""


def bounded(max_chars: int | None) -> int:
    """`max_chars` within the allowed range (the default when None)."""
    if max_chars is None:
        return DEFAULT_MAX_CHARS
    return max(MIN_MAX_CHARS, min(MAX_MAX_CHARS, int(max_chars)))


def parse_cursor(cursor: str | None, modules: int) -> tuple[int, int]:
    """(module index, item index) of a cursor; (0, 0) for None."""
    if cursor is None or cursor == "":
        return 0, 0
    module, colon, item = cursor.partition(":")
    if not (colon and module.isdigit() and item.isdigit()) or int(module) >= max(modules, 1):
        raise CursorError(
            f"cursor {cursor!r} is not one this tool returned for these paths; call it again "
            "without a cursor to start from the first page"
        )
    return int(module), int(item)


def page(
    modules: list[dict[str, Any]], cursor: str | None, max_chars: int | None
) -> dict[str, Any]:
    """One page of `modules` (each with lists ``functions`` and ``undecided``) from `cursor`.

    Returns ``{"modules": [...], "next": cursor or None, "modules_total": n}``; a module
    split over pages carries ``"continued": true`` on the later ones and ``"truncated":
    true`` where it stops.
    """
    limit = bounded(max_chars)
    first, skip = parse_cursor(cursor, len(modules))
    out: list[dict[str, Any]] = []
    used = 0
    for index in range(first, len(modules)):
        module = modules[index]
        items = [(kind, item) for kind in _ITEMS for item in module.get(kind, [])]
        start = skip if index == first else 0
        head = {k: v for k, v in module.items() if k not in _ITEMS}
        entry: dict[str, Any] = {**head, "functions": [], "undecided": []}
        if start:
            entry["continued"] = True
        size = _size(entry)
        if out and used + size > limit:
            return _result(out, f"{index}:0", len(modules))
        used += size
        out.append(entry)
        for position in range(start, len(items)):
            kind, item = items[position]
            size = _size(item) + 2
            if used + size > limit and (position > start or len(out) > 1):
                if position == start:  # nothing of this module fits: it starts the next page
                    out.pop()
                else:
                    entry["truncated"] = True
                return _result(out, f"{index}:{position}", len(modules))
            entry[kind].append(item)
            used += size
    return _result(out, None, len(modules))


def _result(modules: list[dict[str, Any]], following: str | None, total: int) -> dict[str, Any]:
    return {"modules": modules, "next": following, "modules_total": total}


def _size(value: Any) -> int:
    return len(json.dumps(value))


def capped(text: str, max_chars: int | None, whole: str) -> tuple[str, str | None]:
    """`text`, or its first lines within the bound and a note saying how to see it `whole`."""
    limit = bounded(max_chars)
    if len(text) <= limit:
        return text, None
    cut = text.rfind("\n", 0, limit) + 1 or limit
    rest = text[cut:].count("\n") + (not text.endswith("\n"))
    return text[:cut], f"cut after {limit} characters ({rest} more lines); {whole}"
