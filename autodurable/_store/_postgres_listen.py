"""LISTEN/NOTIFY wake-ups for the PostgreSQL store.

The store notifies on a channel named like its schema, with payloads
``finished <workflow_id>``, ``released <workflow_id>`` and ``enqueued
<workflow_id>``, in the same statement or transaction that finishes, releases or
enqueues the workflow (so a notification is sent only when that change is
committed).

Invariants:
- One listening connection per store, outside the pool, opened on the first
  subscription (a process that never waits never holds it), owned by one
  background thread.
- `subscribe` returns once LISTEN is in effect (or after a short wait when the
  server cannot be reached), so a caller that subscribes and then checks the
  state cannot miss a change made after its check.
- When the connection fails it is reopened with backoff; every subscriber is
  woken when it comes back, because notifications sent in between are lost.
  Waiters therefore always re-check the state after a wake-up, and keep a
  bounded wait so that they also notice what no notification announces.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from .._backoff import Backoff
from ._local import Hub, LocalSubscription

log = logging.getLogger("autodurable")
_POLL = 0.5  # how often the listening thread looks at its stop flag
_ARMED_WAIT = 2.0  # longest a new subscription waits for LISTEN to be in effect


class Listener:
    """The listening connection of one store and the subscriptions it wakes."""

    def __init__(self, conninfo: str, kwargs: dict[str, Any], channel: str, describe: str) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._channel = channel
        self._describe = describe
        self._lock = threading.Lock()  # guards the start of the thread
        self._hub = Hub()  # the subscriptions, woken by the notifications
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._stopping = threading.Event()

    def subscribe(self, key: str | None) -> LocalSubscription:
        """A subscription for `key`; LISTEN is in effect when this returns (if reachable)."""
        subscription = self._hub.subscribe(key)
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(
                    target=self._listen, name="autodurable-listen", daemon=True
                )
                self._thread.start()
        self._listening.wait(_ARMED_WAIT)
        return subscription

    def close(self) -> None:
        """Stop the listening thread (it closes its connection)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_POLL * 4)

    def _dispatch(self, payload: str) -> None:
        event, _, workflow_id = payload.partition(" ")
        self._hub.wake(workflow_id, released=event == "released", enqueued=event == "enqueued")

    def _listen(self) -> None:
        backoff = Backoff(0.1, 5.0)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, **self._kwargs) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    if backoff.grown:
                        log.info("autodurable: listening to %s again", self._describe)
                    backoff.reset()
                    self._hub.wake_all()  # anything may have changed while we were not listening
                    self._listening.set()
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=_POLL):
                            self._dispatch(note.payload)
            except psycopg.Error as exc:
                self._listening.clear()
                self._hub.wake_all()
                if self._stopping.is_set():
                    break
                log.debug("autodurable: listening to %s failed (%s); retrying", self._describe, exc)
                self._stopping.wait(backoff.next())
        self._listening.clear()
