"""Wake-ups between the threads of one process, for stores that cannot notify.

SQLite has no notifications between processes: a waiter there polls. Within
one process, though, the thread that cancels a workflow, sends it a message
or finishes it can wake the threads waiting on it at once; this module does
that, per database file (every store object on the same file shares one hub).

Invariants:
- A subscription is registered before its owner looks at the state, so a
  change made by this process after that look wakes it (`wait` returns True).
- Changes made by other processes wake nobody: waiters keep a bounded wait
  and look again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

_hubs: dict[str, Hub] = {}
_hubs_lock = threading.Lock()


class LocalSubscription:
    """Wake-ups for one workflow id (or, for None, for any released workflow).

    Registered with a `Hub` (one per SQLite database in this process, or one
    per PostgreSQL store's listening connection), which `close` tells to forget it.
    """

    def __init__(self, owner: Hub, key: str | None) -> None:
        self._owner = owner
        self.key = key
        self._event = threading.Event()
        self._released = False
        # An async waiter: (its loop, a callback there that ends its wait).
        self._async_waiter: tuple[Any, Callable[[], None]] | None = None

    def wake(self, released: bool = True) -> None:
        """Wake the waiter (`released`: for a release, not only an enqueue)."""
        if released:
            self._released = True
        self._event.set()
        waiter = self._async_waiter
        if waiter is not None:  # set before the event is looked at again: never missed
            loop, end_wait = waiter
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(end_wait)

    def took_release(self) -> bool:
        """Whether a release woke it since the last call (an enqueue alone does not count)."""
        released, self._released = self._released, False
        return released

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when woken, False on timeout."""
        woke = self._event.wait(max(0.0, timeout))
        if woke:
            self._event.clear()
        return woke

    async def wait_async(self, timeout: float) -> bool:
        """`wait` for async code: waits on the running event loop, holding no thread."""
        import asyncio  # only async waiters need it (see _core._boundary's note)

        if not self._event.is_set():
            loop = asyncio.get_running_loop()
            woken = loop.create_future()

            def end_wait() -> None:
                if not woken.done():
                    woken.set_result(None)

            self._async_waiter = (loop, end_wait)
            try:
                if not self._event.is_set():  # a wake before the waiter was set
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken, max(0.0, timeout))
            finally:
                self._async_waiter = None
        woke = self._event.is_set()
        if woke:
            self._event.clear()
        return woke

    def close(self) -> None:
        """Stop receiving wake-ups."""
        self._owner.remove(self)

    def __enter__(self) -> LocalSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hub:
    """The subscriptions of one database in this process (or of one listening connection)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str | None, set[LocalSubscription]] = {}

    def subscribe(self, key: str | None) -> LocalSubscription:
        """A subscription for `key` (a workflow id, or None for releases of any)."""
        subscription = LocalSubscription(self, key)
        with self._lock:
            self._subscribers.setdefault(key, set()).add(subscription)
        return subscription

    def remove(self, subscription: LocalSubscription) -> None:
        """Forget a subscription."""
        with self._lock:
            subscribers = self._subscribers.get(subscription.key)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[subscription.key]

    def wake(self, workflow_id: str, released: bool = False, enqueued: bool = False) -> None:
        """Wake the subscribers of `workflow_id`, and those of None when it was released
        (for adoption) or enqueued (for queue workers)."""
        if not self._subscribers:  # nobody waits: the common case costs one look
            return
        with self._lock:
            targets = list(self._subscribers.get(workflow_id, ()))
            anyone = list(self._subscribers.get(None, ())) if released or enqueued else []
        for subscription in targets:
            subscription.wake()
        for subscription in anyone:
            subscription.wake(released)

    def wake_all(self) -> None:
        """Wake every subscriber (what changed is not known)."""
        with self._lock:
            targets = [s for subscribers in self._subscribers.values() for s in subscribers]
        for subscription in targets:
            subscription.wake()


def hub_for(database: str) -> Hub:
    """The hub of a database file (a fresh one for an in-memory database)."""
    if database == ":memory:":
        return Hub()
    with _hubs_lock:
        hub = _hubs.get(database)
        if hub is None:
            hub = _hubs[database] = Hub()
        return hub
