"""Sync step attempts abandoned by their timeout, and what happens to them at exit.

A sync step's attempt runs on a helper thread so that its timeout can be
enforced; a thread cannot be killed, so a timed-out attempt is abandoned and
may still be in the middle of its effect. The interpreter kills daemon threads
when it exits, which would cut such an effect off half done.

Invariants:
- At exit, before the interpreter joins its threads, the process waits for
  every abandoned attempt still running, each for at most its step's timeout
  (at least `_LEAST`, at most `_MOST` seconds in all), and says so on stderr
  in one line per step; one that is still running after that is cut off, and
  a second line says what that means (its effect may be half done; it was
  recorded as timed out; a retry runs under the same idempotency key).
- Nothing here records anything: an abandoned attempt's result never is.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

_LEAST, _MOST = 1.0, 60.0  # seconds: the wait for one attempt, and for all of them

_lock = threading.Lock()
_running: dict[threading.Event, tuple[str, float]] = {}  # finished -> (step name, timeout)
_hooked = False


def abandon(finished: threading.Event, name: str, timeout: float) -> None:
    """Remember an attempt of step `name` that timed out; `finished` is set when it ends."""
    global _hooked
    with _lock:
        for ended in [event for event in _running if event.is_set()]:
            del _running[ended]
        _running[finished] = (name, timeout)
        if not _hooked:
            # Runs when the interpreter starts to exit, before it joins threads
            # (daemon threads are killed after that); plain atexit is too late
            # to matter for the order, and is the fallback.
            register = getattr(threading, "_register_atexit", None)
            if register is not None:
                register(wait_at_exit)
            else:  # pragma: no cover - every CPython since 3.9 has it
                import atexit

                atexit.register(wait_at_exit)
            _hooked = True


def wait_at_exit() -> None:
    """Give abandoned attempts that still run the time to end (see the invariants)."""
    with _lock:
        running = [(ev, *what) for ev, what in _running.items() if not ev.is_set()]
        _running.clear()
    deadline = time.monotonic() + _MOST
    for finished, name, timeout in running:
        if finished.is_set():
            continue
        wait = min(max(timeout, _LEAST), max(deadline - time.monotonic(), 0.0))
        _say(
            f"autodurable: waiting up to {wait:.3g}s for the abandoned attempt of step "
            f"{name!r} (it timed out and still runs) to end before exiting"
        )
        if not finished.wait(wait):
            _say(
                f"autodurable: the abandoned attempt of step {name!r} is cut off at exit, its "
                "effect perhaps half done; it was recorded as timed out, and any retry of the "
                "step runs under the same idempotency key"
            )


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing to say it on
        print(line, file=sys.stderr, flush=True)
