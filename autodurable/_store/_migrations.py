"""Numbered schema migrations shipped as SQL files, one folder per dialect.

Invariants: files are named ``NNNN_description.sql`` and numbered 1, 2, 3 ...
without gaps; schema version N means migrations 1..N have been applied.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@functools.cache
def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The (number, SQL) pairs of a dialect, in order."""
    folder = resources.files("autodurable._store").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..N: {numbers}")
    return found
