"""What every page of one dashboard shares: its options, redaction, CSRF token, reads.

Invariants:
- The store is the runtime's (`get_runtime().store`), the one the operations
  API acts on, so a page shows what an action just changed.
- Reads beyond the operations API go through `DashboardReads`, built once per
  store object.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .._core._runtime import get_runtime
from .._store._dashboard import DashboardReads
from ._html import Redactor
from ._options import UiOptions


@dataclass
class Ui:
    """One dashboard's shared state (immutable but for the cached reads)."""

    options: UiOptions
    csrf: str
    redactor: Redactor = field(init=False)
    _reads: tuple[Any, DashboardReads] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.redactor = Redactor(self.options.redact)

    def reads(self) -> DashboardReads:
        """The dashboard's reads on the runtime's current store."""
        store = get_runtime().store
        with self._lock:
            if self._reads is None or self._reads[0] is not store:
                self._reads = (store, DashboardReads(store))
            return self._reads[1]

    def store(self) -> Any:
        """The runtime's store (for the protocol's reads: messages, events, queues)."""
        return get_runtime().store
