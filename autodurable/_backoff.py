"""The one rule for waiting between looks: exponential backoff with a ceiling.

Used by every loop that looks at something until it changes (a workflow run
elsewhere, a cancellation, a message, a store that is down, a lost listening
connection), so that they all wait the same way.

Invariants: the first wait is `first`; each later one doubles, up to
`longest`; `reset` starts again from `first`. Pure arithmetic: no clock, no
sleeping (the caller waits in its own way: an event, a sleep, an await).
"""

from __future__ import annotations


class Backoff:
    """The successive waits between looks: `first`, doubling, at most `longest` (seconds)."""

    __slots__ = ("_delay", "first", "longest")

    def __init__(self, first: float, longest: float) -> None:
        self.first = first
        self.longest = max(first, longest)
        self._delay = first

    def next(self) -> float:
        """The wait before the next look (and the one after it grows)."""
        delay = self._delay
        self._delay = min(delay * 2, self.longest)
        return delay

    def reset(self) -> None:
        """Start again from the first wait (after a success)."""
        self._delay = self.first

    @property
    def grown(self) -> bool:
        """Whether the waits have grown past the first (something failed in between)."""
        return self._delay > self.first
