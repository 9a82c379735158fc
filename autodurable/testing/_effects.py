"""Effects on the outside world, as a test sees them (`effect`).

A test's fakes (a payment service, a mailer) call `effect` where the real
service would act; the crash sweep compares what the world saw with and
without a crash. An effect given an idempotency key is applied once per key,
as a service that honours keys would; one without a key is applied every
time, so a step that re-runs it after a crash is caught.

Invariants:
- Thread-safe; the ledger is this process's. A program run in a child process
  by the sweep writes its effects to the file named by
  ``AUTODURABLE_EFFECT_LOG`` (set by the sweep), one line each.
- `effect` never touches the workflow state: calling it outside a sweep only
  counts.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable

ENV_EFFECT_LOG = "AUTODURABLE_EFFECT_LOG"


class Ledger:
    """The effects applied so far, by name; the keys seen, by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.applied: Counter[str] = Counter()
        self._keys: set[tuple[str, str]] = set()

    def apply(self, name: str, idempotency_key: str | None) -> bool:
        """Apply one effect; False when its key was applied already."""
        with self._lock:
            if idempotency_key is not None:
                if (name, idempotency_key) in self._keys:
                    return False
                self._keys.add((name, idempotency_key))
            self.applied[name] += 1
            return True

    def clear(self) -> None:
        """Forget everything (a fresh outside world)."""
        with self._lock:
            self.applied.clear()
            self._keys.clear()

    def counts(self) -> dict[str, int]:
        """How many times each effect was applied."""
        with self._lock:
            return dict(self.applied)

    def replay_lines(self, lines: Iterable[str]) -> None:
        """Apply the effects a child process logged (``name<TAB>key`` lines)."""
        for line in lines:
            name, _, key = line.rstrip("\n").partition("\t")
            if name:
                self.apply(name, key or None)


ledger = Ledger()


def effect(name: str, idempotency_key: str | None = None) -> bool:
    """Record that the outside world was changed (``"charge"``, ``"email"``).

    With `idempotency_key`, the change happens once per key, as a service that
    honours keys would do it; without, every call changes the world again.
    Returns whether this call changed it. Inside a crash sweep, every change
    must happen as often as in the run without a crash.
    """
    log = os.environ.get(ENV_EFFECT_LOG)
    if log:  # a program the sweep runs in a child process: the sweep counts
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{name}\t{idempotency_key or ''}\n")
    return ledger.apply(name, idempotency_key)
