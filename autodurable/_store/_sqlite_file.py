"""The SQLite state file: refusing files that are not whole, ours and known, and
migrating the ones that are.

Invariants:
- A database file is never modified before it is known to be whole, ours and
  of a schema this version understands: a file cut short (its size against
  its pages), damaged (``PRAGMA quick_check``: at every open up to
  `QUICK_CHECK_UP_TO` bytes, and before any migration), foreign (its tables
  are not those its ``user_version`` says, or it has tables and no version)
  or newer is refused before any pragma that writes, and its bytes stay as
  they were.
- Migrations run in one ``BEGIN IMMEDIATE`` transaction, after looking at the
  version again under the lock (another process may have migrated meanwhile).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from .._errors import StoreError
from . import _sqlite_schema as _schema
from ._migrations import load_migrations
from ._sqlite_driver import sqlite3

# Files up to this size are checked (PRAGMA quick_check) at every open; larger
# ones only before they are migrated, since the check reads the whole file.
QUICK_CHECK_UP_TO = 64 * 1024 * 1024
RESTORE = (
    "Restore the file from a copy (with its -wal file if the copy has one); or, to start "
    "afresh without its workflows, move it and its -wal and -shm files away."
)


def check_and_migrate(conn: sqlite3.Connection, path: str, synchronous: str) -> None:
    """Refuse a file that is cut short, damaged, foreign or newer; then migrate it to the
    latest schema (raises `StoreError`, or `sqlite3.Error` for the store to translate)."""
    migrations = load_migrations("sqlite")
    latest = len(migrations)
    # Nothing below writes until the file is known to be whole and ours.
    size = _check_size(path)
    # The version and the tables are read in one read transaction: another process
    # migrating between the two reads would make a new file look foreign.
    conn.execute("BEGIN")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _recognise(conn, path, version, latest)
    finally:
        conn.execute("COMMIT")
    if size and (size <= QUICK_CHECK_UP_TO or version < latest):
        _quick_check(conn, path)
    conn.execute("PRAGMA busy_timeout = 30000")
    if version < latest or conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    if version < latest:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            _recognise(conn, path, version, latest)
            for number, sql in migrations[version:]:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _check_size(path: str) -> int:
    """The file's size; refuses a file cut short (its size is not whole pages).

    Reads the header with plain file reads: SQLite itself would first read
    a cut file as if whole. The page count in the header is compared only
    when no journal or write-ahead log is waiting (either may hold pages the
    file lacks yet). A finding is confirmed a moment later, so that a file
    another process is extending right now is not mistaken for a cut one.
    """
    if path == ":memory:":
        return 0
    size, problem = _size_problem(Path(path))
    for _ in range(3):
        if problem is None:
            return size
        time.sleep(0.05)
        size, problem = _size_problem(Path(path))
    if problem is None:
        return size
    raise StoreError(
        f"the state database {path} is truncated: {problem}, so its last pages are "
        f"missing (a copy cut short, or a full disk). {RESTORE} Nothing was changed."
    )


def _quick_check(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a damaged file (``PRAGMA quick_check``, which only reads)."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise StoreError(
            f"the state database {path} is damaged; SQLite's check reports: "
            f"{'; '.join(problems)}. {RESTORE} Nothing was changed."
        )


def _recognise(conn: sqlite3.Connection, path: str, version: int, latest: int) -> None:
    """Refuse, before anything is written, a file that is not ours or is newer.

    Ours is an empty database (new), or one whose tables are those that
    migrations 1..N create, N being its ``user_version``, with their columns.
    """
    found = _tables(conn)
    if version == 0 and not found:
        return
    if version > latest:
        if "workflows" in found:
            raise StoreError(
                f"the state database {path} has schema version {version}, written "
                f"by a newer autodurable; this version knows schemas up to {latest}. "
                "Upgrade autodurable (nothing was changed in the file)."
            )
        wrong = "it has none of autodurable's tables"
    elif version == 0:
        wrong = "it has no autodurable schema version"
    else:
        expected = _schema.TABLES if version == _schema.VERSION else schema_at(version)
        missing = sorted(set(expected) - set(found))
        differing = sorted(
            name for name in expected if name in found and found[name] != expected[name]
        )
        if not missing and not differing:
            return
        wrong = (
            f"its user_version is {version}, but "
            + (f"it lacks the tables {', '.join(missing)}" if missing else "")
            + (" and " if missing and differing else "")
            + (f"the tables {', '.join(differing)} differ" if differing else "")
            + f" from autodurable schema {version}"
        )
    tables = sorted(found)
    has = f"it has {', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}; "
    raise StoreError(
        f"{path} is not an autodurable state database but an SQLite database of "
        f"another application ({has if tables else ''}{wrong}); autodurable will not "
        "write into it. Point database_url at a new file (nothing was changed)."
    )


def _nonempty(path: Path) -> bool:
    """Whether `path` exists with something in it (one look: another process may
    delete a -wal file at any moment, as its last connection closes)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _size_problem(path: Path) -> tuple[int, str | None]:
    """The file's size, and what is wrong with it against its header (None: nothing)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            header = file.read(100)
    except OSError:
        return 0, None  # SQLite reports it when it opens the file
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return size, None  # empty (a new file), or not SQLite: SQLite says which
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counted = pages and header[24:28] == header[92:96]  # else the header's count is stale
    waiting = any(_nonempty(Path(f"{path}{suffix}")) for suffix in ("-wal", "-journal"))
    if page_size < 512 or size % page_size:
        return size, f"its size ({size} bytes) is not a whole number of its {page_size}-byte pages"
    if counted and not waiting and pages * page_size > size:
        return size, (
            f"its header counts {pages} pages of {page_size} bytes "
            f"({pages * page_size} bytes) but the file holds {size} bytes"
        )
    return size, None


def _tables(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """The tables of a database (SQLite's own left out), each with its column names."""
    names = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    others = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('view', 'trigger')"
    ).fetchall()
    found = {
        name: tuple(sorted(row[1] for row in conn.execute(f"PRAGMA table_info({_quoted(name)})")))
        for (name,) in names
    }
    found.update({name: () for (name,) in others})
    return found


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def schema_at(version: int) -> dict[str, tuple[str, ...]]:
    """The tables (with their columns) that SQLite migrations 1..`version` create."""
    conn = sqlite3.connect(":memory:")
    try:
        for _, sql in load_migrations("sqlite")[:version]:
            conn.executescript(sql)
        return _tables(conn)
    finally:
        conn.close()


def _split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements, as SQLite parses them."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements
