"""Large values stored out of line: the protocol, and its two backends.

A value whose encoded text is above the runtime's threshold (step results,
workflow inputs and outputs, messages, events, stream values) is not written
into its row: the codec writes the text here under its SHA-256 digest and
records a small reference in its place (`autodurable._core._large`). The
steps and workflows tables stay small, and reading a list of workflows never
reads a large value.

Invariants:
- Content-addressed: a value is stored under the digest of its text, so
  writing it again (a retried step, a replay check) changes nothing, and a
  value read back is checked against its digest.
- Durable before its reference: `put_large` returns once the value is on
  disk (SQLite: a file written whole, flushed and renamed into place, and the
  folder flushed) or committed (PostgreSQL), and the codec writes the
  reference only after it returns.
- SQLite keeps the values as files in a folder next to the database
  (``state.db-values/``); an in-memory database keeps them in memory.
  PostgreSQL keeps them in the ``large_values`` table, in chunks of at most
  `CHUNK` characters (one row per chunk).
- An object store (S3, GCS ...) plugs in through the same two methods.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from psycopg import Cursor

CHUNK = 8 * 1024 * 1024  # characters per PostgreSQL row: each row stays well below 1 GB


def text_digest(text: str) -> str:
    """The SHA-256 digest of an encoded value (surrogates kept, as the codec writes them)."""
    import hashlib  # OpenSSL's, fast on large values; loaded by the first one

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class LargeValueStore(Protocol):
    """Where values too large for their rows are kept, by the digest of their text."""

    def put_large(self, digest: str, text: str) -> None:
        """Store `text` under `digest`, durably; nothing happens if it is there already."""
        ...

    def get_large(self, digest: str) -> str | None:
        """The text stored under `digest`, or None if there is none."""
        ...


class SQLiteLargeValues:
    """Large values as files next to the SQLite database (a mixin of its store)."""

    if TYPE_CHECKING:
        path: str

    _memory: dict[str, str] | None = None
    _memory_lock = threading.Lock()

    def _values_folder(self) -> Path | None:
        return None if self.path == ":memory:" else Path(self.path + "-values")

    def put_large(self, digest: str, text: str) -> None:
        """Write the value's file whole (a temporary file, flushed, renamed into place)."""
        folder = self._values_folder()
        if folder is None:
            with self._memory_lock:
                if self._memory is None:
                    self._memory = {}
                self._memory[digest] = text
            return
        target = folder / digest
        if target.exists():
            return
        folder.mkdir(exist_ok=True)
        import tempfile  # loaded by the first large value

        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", errors="surrogatepass") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_folder(folder)

    def get_large(self, digest: str) -> str | None:
        """The value's text, or None if its file is missing."""
        folder = self._values_folder()
        if folder is None:
            with self._memory_lock:
                return None if self._memory is None else self._memory.get(digest)
        try:
            return (folder / digest).read_text(encoding="utf-8", errors="surrogatepass")
        except FileNotFoundError:
            return None


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX: flush the folder's entry list)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform that cannot open folders: the rename is what it offers
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class PostgresLargeValues:
    """Large values in the ``large_values`` table, in chunks (a mixin of its store)."""

    if TYPE_CHECKING:
        schema: str

        def _run(self, action: str, work: Callable[[Cursor[Any]], Any]) -> Any: ...

        def _fetch(
            self, action: str, statement: str, params: Sequence[Any] | dict[str, Any]
        ) -> list[tuple[Any, ...]]: ...

    def put_large(self, digest: str, text: str) -> None:
        """Insert the value's chunks in one transaction (committed when this returns)."""
        table = f'"{self.schema}".large_values'
        chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]

        def work(cursor: Cursor[Any]) -> None:
            with cursor.connection.transaction():
                for part, chunk in enumerate(chunks):
                    cursor.execute(
                        f"INSERT INTO {table} (digest, part, parts, data) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (digest, part) DO NOTHING",
                        (digest, part, len(chunks), chunk),
                    )

        self._run("store a large value in", work)

    def get_large(self, digest: str) -> str | None:
        """The value's text from its chunks, or None if they are not all there."""
        rows = self._fetch(
            "read a large value from",
            f'SELECT part, parts, data FROM "{self.schema}".large_values '
            "WHERE digest = %s ORDER BY part",
            (digest,),
        )
        if not rows or len(rows) != rows[0][1] or [r[0] for r in rows] != list(range(len(rows))):
            return None
        return "".join(row[2] for row in rows)
