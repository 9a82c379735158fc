"""Numbered schema migrations shipped as SQL files, one folder per dialect.

Invariants: files are named ``NNNN_description.sql`` and numbered 1, 2, 3 ...
without gaps; schema version N means migrations 1..N have been applied.
"""

from __future__ import annotations

import functools
import os
import re

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@functools.cache
def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The (number, SQL) pairs of a dialect, in order."""
    found = sorted(
        (int(match.group(1)), text)
        for name, text in _files(dialect)
        if (match := _NAME.match(name)) is not None
    )
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..N: {numbers}")
    return found


def _files(dialect: str) -> list[tuple[str, str]]:
    """The (name, text) of the files in the dialect's folder."""
    folder = os.path.join(os.path.dirname(__file__), "migrations", dialect)
    if os.path.isdir(folder):  # installed as files: no need for importlib.resources (2 ms)
        found = []
        for name in os.listdir(folder):
            if not _NAME.match(name):
                continue
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                found.append((name, fh.read()))
        return found
    from importlib import resources  # a package imported from a zip file

    tree = resources.files(__package__ or "autodurable._store").joinpath("migrations", dialect)
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in tree.iterdir()]
