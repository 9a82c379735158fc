"""Standard results without the standard modules' start-up cost.

``hashlib`` loads OpenSSL's library (2 to 3 ms per process) and ``uuid``
imports ``platform`` (another 2 to 3 ms); every ``autodurable run`` needs a few
digests and random ids, and little else from them.

Invariants: `sha256` returns what ``hashlib.sha256`` returns for the same
bytes (the interpreter's own implementation for short inputs, else hashlib's); `uuid4_hex`
returns text of the form of ``uuid.uuid4().hex`` (version 4, RFC 4122 variant,
from ``os.urandom``). Importing this module imports nothing but ``os``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from hashlib import _Hash

try:  # the interpreter's built-in SHA-256: no library to load
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]  # Python 3.11
except ImportError:  # pragma: no cover - other versions and builds
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found]  # 3.12 on
    except ImportError:
        from hashlib import sha256 as _sha256


# Past this size OpenSSL's hash (several times faster on long inputs) is worth loading.
_LONG = 1 << 20


def sha256(data: bytes = b"") -> _Hash:
    """A SHA-256 hash object of `data` (``update``, ``digest``, ``hexdigest``)."""
    if len(data) > _LONG:
        import hashlib

        return hashlib.sha256(data)
    return cast("_Hash", _sha256(data))


def uuid4_hex() -> str:
    """32 hex digits of a random version 4 UUID, as ``uuid.uuid4().hex``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return raw.hex()
