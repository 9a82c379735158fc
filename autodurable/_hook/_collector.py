"""The cyclic garbage collector while the ``autodurable`` command starts.

Before a program's first line, ``autodurable run`` imports about 160 modules and
opens its store: some 13,000 objects the collector tracks (modules, classes,
functions, the runtime), nearly all of which live as long as the process. With
the collector running, its generations fill about sixty times along the way and
it scans what they hold each time: 8 to 10 ms of a warm run's start-up.

So the console command (`pause`, from ``autodurable._cli.console_main``) starts
with the collector paused, and `resume` restarts it: the launcher just before
the program's first line, every other command when it is dispatched, and a miss
of the hook's caches before the analysis or a rewrite (an analysis freezes what
it leaves alive in turn: `_cache.collector_paused`). What start-up made then goes to the permanent
generation (`gc.freeze`, the interpreter's own tool for long-lived objects, as
forking servers use it): the collector no longer scans it, reference counting
still frees it, and ``gc.unfreeze()`` gives it back. A collection at that point
finds nothing to free (measured on the launcher: 0 unreachable objects), so
nothing is kept that the collector would have freed.

Invariants: `resume` does something only after `pause` did, once; a program whose
process had the collector off keeps it off; an in-process call of
``autodurable._cli.main`` (tests, embedding) never touches the collector.
"""

from __future__ import annotations

import gc

_paused = False
_ours = False  # the process is the command's: `pause` stopped the collector at its start


def pause() -> None:
    """Stop the cyclic collector for the command's start-up (if it runs)."""
    global _paused, _ours
    if gc.isenabled():
        gc.disable()
        _paused = _ours = True


def ours() -> bool:
    """Whether this process is the command's, whose collector `pause` stopped at its
    start (not a program calling ``autodurable._cli.main`` in-process)."""
    return _ours


def resume() -> None:
    """Put what start-up made in the permanent generation and restart the collector,
    if `pause` stopped it (else nothing)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
