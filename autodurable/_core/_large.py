"""Large values out of line: what the codec writes instead of a value too large for
its row, and how it reads it back.

Invariants:
- A value whose encoded text is longer than `threshold` characters is stored
  by its store (`_store._large`) under the SHA-256 digest of its text, and the
  codec returns a reference in its place: ``{"~": "large", "digest": D,
  "size": N}``. Everything that reads rows without the codec (the CLI, the
  dashboard, SQL) sees that small object, never the value.
- The value is durable before the reference is returned, so no record ever
  refers to a value that a crash lost.
- Decoding a reference reads the value and checks its digest: a value that is
  missing or changed is a `DecodeError` naming the digest, the file or table
  it was looked for in, and the fix; the workflow stays pending.
- A value above `limit` characters is refused at record time with an
  `EncodeError` naming its size, the limit and the setting to change.
- Off (no threshold) the codec pays one attribute test per value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .._errors import DecodeError, EncodeError
from .._store._large import LargeValueStore, text_digest
from ._codec_values import TAG

LARGE = "large"
THRESHOLD = 256 * 1024  # characters of encoded text; above it a value goes out of line
LIMIT = 1024 * 1024 * 1024  # the largest value recorded at all: 1 Gi characters


class OutOfLine:
    """Writes and reads the values of one runtime that are too large for their rows."""

    def __init__(
        self, store: Callable[[], LargeValueStore], threshold: int = THRESHOLD, limit: int = LIMIT
    ) -> None:
        self._store = store  # called when first needed: the store opens lazily
        self.threshold = threshold
        self.limit = limit

    def spill(self, text: str, what: str) -> str:
        """Store `text` out of line (durably); the reference to record in its place."""
        if len(text) > self.limit:
            raise EncodeError(
                f"cannot record {what}: its encoded form is {len(text):,} characters, above "
                f"the limit of {self.limit:,}; return a smaller value (a path, an id of where "
                "the data lives), or raise large_value_limit in [tool.autodurable]"
            )
        digest = text_digest(text)
        self._store().put_large(digest, text)
        return json.dumps({TAG: LARGE, "digest": digest, "size": len(text)}, separators=(",", ":"))

    def fetch(self, reference: dict[str, Any]) -> str:
        """The text a reference stands for, checked against its digest."""
        digest, size = reference.get("digest"), reference.get("size")
        if type(digest) is not str or len(digest) != 64 or type(size) is not int:
            raise DecodeError(f"malformed reference to a large value: {reference!r}")
        store = self._store()
        text = store.get_large(digest)
        if text is None or len(text) != size or text_digest(text) != digest:
            where = getattr(store, "path", None)
            place = f"{where}-values/{digest}" if where else f"large_values, digest {digest}"
            problem = "is missing" if text is None else "does not match its digest"
            raise DecodeError(
                f"the large value {digest[:12]}... ({size:,} characters) {problem} "
                f"(looked for in {place}); restore it from a copy of the state folder, "
                "taken with the database"
            )
        return text
