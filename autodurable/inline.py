"""What code rewritten by the import hook or the codemod calls.

The hook imports this module as ``__autodurable__``; the codemod writes
``autodurable.inline.<helper>``. The helpers:

- `step`, `astep`: the wrappers of functions the analyser made steps (sync and
  ``async def``); `watched`, `awatched`: of functions it watches; `root`,
  `aroot`: of functions set as workflows in ``[tool.autodurable.roles]``.
- `run_step`, `run_astep`: one I/O expression of workflow code recorded as a
  step; `run_iterate`: the iterable of a ``for`` that does I/O, recorded as a
  list.
- `recorded`, `shuffle`: a clock read or a random draw recorded, so that a
  replay sees the same value.
- `workflow_code()`: the current run when the caller is workflow code, else
  None (the test each recorded expression is guarded by); `recording()`: the
  same, as a bool.
- `bound`: the values a block moved into a function of its own hands back;
  `not_durable`: the one-line report, at import, of the functions that could
  not be made durable safely.

Invariants:
- Every helper behaves exactly like the code it replaces outside workflows and
  inside steps; only in workflow code does it record. The hook's rewrite does
  not even call them there: each recorded expression is guarded by
  `workflow_code()` and the original expression runs when it is false, so plain
  callers see no frame of ours. The codemod's explicit form calls them always.
- Steps and workflows inferred by the analyser use ``unrecordable="rerun"``: a
  value the codec cannot record is not an error, the step runs again on
  resume instead (and a warning says so once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._core._context import recording, workflow_code
from ._core._wrappers import configured_aroot as aroot
from ._core._wrappers import configured_root as root
from ._core._wrappers import inferred_astep as astep
from ._core._wrappers import inferred_awatched as awatched
from ._core._wrappers import inferred_step as step
from ._core._wrappers import inferred_watched as watched

__all__ = [
    "aroot",
    "astep",
    "awatched",
    "bound",
    "not_durable",
    "recorded",
    "recording",
    "root",
    "run_astep",
    "run_iterate",
    "run_step",
    "shuffle",
    "step",
    "watched",
    "workflow_code",
]


def run_step(name: str, thunk: Callable[[], Any], discard: bool = False) -> Any:
    """Evaluate an I/O expression as a recorded step (its value, or None if discarded)."""
    if not recording():
        value = thunk()
        return None if discard else value
    if discard:
        return _call_step(_discarding(thunk), (), {}, name)
    return _call_step(thunk, (), {}, name)


def run_iterate(name: str, thunk: Callable[[], Any]) -> Any:
    """The iterable of a ``for`` that does I/O: recorded as a list in workflow code.

    Elsewhere the iterable is returned as it is, so it is consumed lazily, as
    the original loop would.
    """
    if not recording():
        return thunk()
    return _call_step(lambda: list(thunk()), (), {}, name)


async def run_astep(name: str, thunk: Callable[[], Awaitable[Any]], discard: bool = False) -> Any:
    """`run_step` for an awaited I/O expression."""
    if not recording():
        value = await thunk()
        return None if discard else value

    async def attempt() -> Any:
        value = await thunk()
        return None if discard else value

    return await _call_step(attempt, (), {}, name, is_async=True)


def recorded(name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call a clock or randomness function; recorded in workflow code."""
    if not recording():
        return fn(*args, **kwargs)
    return _call_step(fn, args, kwargs, name)


def shuffle(items: list[Any], *args: Any) -> None:
    """`random.shuffle` whose permutation is recorded in workflow code."""
    if not recording() or args:
        import random  # here: imported by the code that calls this; not by every import

        random.shuffle(items, *args)
        return
    order = _call_step(_permutation, (len(items),), {}, "random.shuffle")
    items[:] = [items[i] for i in order]


def _permutation(size: int) -> list[int]:
    import random

    order = list(range(size))
    random.shuffle(order)
    return order


def bound(scope: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The values of `names` that are bound in `scope` (a block's locals)."""
    return {name: scope[name] for name in names if name in scope}


# Set by the launcher for the program it runs (not for `run -- CMD`, whose
# processes print nothing of ours): whether `not_durable` reports.
report_not_durable = False
_reported: set[tuple[str, str]] = set()


def not_durable(filename: str, entries: tuple[tuple[str, int, str], ...]) -> None:
    """Called by a rewritten module as it is imported: name, once per function, what
    the plan could not make durable safely ((qualname, line, why) entries)."""
    if not report_not_durable:
        return
    import sys

    for qualname, line, why in entries:
        if (filename, qualname) not in _reported:
            _reported.add((filename, qualname))
            print(
                f"autodurable: not durable: {qualname} ({filename}:{line}): {why}",
                file=sys.stderr,
            )


def _discarding(thunk: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        thunk()

    return run


def _call_step(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    is_async: bool = False,
) -> Any:
    """A step with the inferred options, in workflow code (where the runtime is loaded).

    Imported here, not at the top, so that importing a rewritten module loads
    neither the runtime nor its dependencies.
    """
    from ._core._decorators import inferred_options
    from ._core._steps import call_step, call_step_async

    return (call_step_async if is_async else call_step)(fn, args, kwargs, name, inferred_options())


def __getattr__(name: str) -> Any:
    # ``sleep`` and ``sleep_async``: the durable sleeps, which rewritten code calls
    # in workflow code only (so `_durable` is imported then).
    if name in ("sleep", "sleep_async"):
        from ._core import _clocks as _durable

        return getattr(_durable, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
