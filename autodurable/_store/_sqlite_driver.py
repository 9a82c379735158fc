"""The SQLite driver: the C module behind the standard ``sqlite3`` package.

The ``sqlite3`` package adds nothing the SQLite stores use to its C module: its
import loads ``datetime`` and registers the default adapters for dates and
times (deprecated since Python 3.12), about 2 ms of every start-up, and
autodurable stores times as numbers. Every name the stores use (``connect``,
``Connection``, ``Cursor``, the exceptions) is the C module's own, the very
objects ``sqlite3`` re-exports, so a program that imports ``sqlite3`` itself
sees the same classes.

Invariant: the SQLite stores reach the driver through this module only.
"""

import _sqlite3 as sqlite3

__all__ = ["sqlite3"]
