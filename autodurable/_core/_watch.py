"""Watched functions: steps confirmed at run time.

The analyser *watches* a function that calls something it could not type
(``client.send(...)`` on an untyped parameter). Called in workflow code, a
watched function runs with a `Watch` in its context; the I/O chokepoints
(`_sentinel`) call `_context.note_io`, which marks the watch. When the call returns:
- it did I/O (outside the steps it called): its result is recorded as a step;
- it did none: nothing is written.

Identity on replay: a watched call takes a position when it is called, as a
step does, so the n-th watched call of a replay is the n-th of the first run
whichever of them did I/O; a call that wrote nothing leaves its position
unused, and its replay finds nothing there and runs it again (it did no I/O).
The record holds ``{"value": result, "end": last position used inside,
"arguments": digest}``: a replayed call skips the positions its nested steps
took, and a call made with other arguments than recorded is a
`NondeterminismError` instead of being handed another call's result.

Invariants:
- Outside workflow code a watched function is the original function (its
  wrapper is disabled there, like an inferred step's): nothing here runs.
- In a process forked from workflow code (its run's `Run.pid` is not this
  process's) a watched call runs plainly, outside any run, taking no position
  and writing nothing; a warning says so once per name and process.
- One write per watched call that did I/O, none otherwise; replay reads the
  history already in memory.
- The digest reads arguments structurally (no ``repr`` of arbitrary objects,
  no code of theirs runs): scalars by value, containers by their items, other
  objects by their type's qualified name.
"""

from __future__ import annotations

import contextvars
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import EncodeError, NondeterminismError
from . import _context
from ._context import (
    RUN_VAR,
    WATCH_VAR,
    Watch,
    forked_call,
    forked_call_async,
    warn_forked,
)
from ._report import warn_unrecordable

if TYPE_CHECKING:
    from ._context import Run

# The store's status names (``autodurable._store``), here without importing the
# store, which watched functions do not need until they record.
SUCCEEDED, FAILED, UNRECORDED = "succeeded", "failed", "unrecorded"


_sentinel: Any = None  # the module, imported on the first watched call


def _ensure_chokepoints() -> None:
    """Install the I/O chokepoints if nothing did (code made durable by the codemod
    runs without the launcher): in mode "off", they only serve watched calls."""
    global _sentinel
    if _sentinel is None:
        from . import _sentinel as module

        _sentinel = module
    if _sentinel.installed_mode() is None:
        _sentinel.install("off")


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


def arguments_shape(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What the digest of a call's arguments is made of, taken before the call (it
    may change its arguments); cheap: scalar arguments are kept as they are."""
    for arg in args:
        if type(arg) not in _SCALARS:
            break
    else:
        if not kwargs:
            return args
    return (_shape(args, 0), _shape(kwargs, 0))


def digest(shape: Any, _crc32: Callable[[bytes], int] = zlib.crc32) -> str:
    """The digest of an `arguments_shape` (see the module docstring for what it reads):
    the crc32 of its repr, in 8 lowercase hex digits. Taken for every step recorded,
    so written for speed: a local crc32, and its 4 bytes in hex, the text that
    ``f"{crc:08x}"`` gives at half its cost."""
    return _crc32(repr(shape).encode("utf-8", "backslashreplace")).to_bytes(4, "big").hex()


def _shape(value: Any, depth: int) -> Any:
    """`value` with every object that is not a scalar or a container replaced by the
    name of its type: what `repr` then shows runs no code of the program's."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth < 4 and (kind is tuple or kind is list):
        return (kind.__name__, *[_shape(item, depth + 1) for item in value])
    if depth < 4 and kind is dict:
        return ("dict", *[(_shape(k, depth + 1), _shape(v, depth + 1)) for k, v in value.items()])
    if depth < 4 and (kind is set or kind is frozenset):
        return (kind.__name__, *sorted(repr(_shape(item, depth + 1)) for item in value))
    return f"{kind.__module__}.{kind.__qualname__}"


def _replayed(run: Run, position: int, name: str, shape: Any) -> tuple[bool, Any]:
    """(True, value) when the call at `position` is recorded; raises a recorded failure."""
    recorded = run.recorded(position, name)
    if recorded is None or recorded.status == UNRECORDED:
        return False, None
    codec = run.runtime.codec
    if recorded.status == FAILED:
        run.replayed += 1
        raise codec.decode_error(recorded.error or "{}")
    if recorded.status != SUCCEEDED:
        return False, None
    entry = codec.decode(recorded.output or "null")
    arguments = digest(shape)
    if entry["arguments"] != arguments:
        raise NondeterminismError(
            run.workflow_id,
            run.place(position),
            f"{name} called with arguments {entry['arguments']}",
            f"{name} called with arguments {arguments}",
        )
    run.replayed += 1
    with run._lock:
        run.position = max(run.position, entry["end"])
    return True, entry["value"]


def _record(
    run: Run,
    position: int,
    name: str,
    shape: Any,
    started: float,
    result: Any = None,
    error: BaseException | None = None,
) -> None:
    """Write the outcome of a watched call that did I/O (its result, or its failure)."""
    codec = run.runtime.codec
    status, output, encoded_error = SUCCEEDED, None, None
    if error is not None:
        status, encoded_error = FAILED, codec.encode_error(error)
    else:
        entry = {"value": result, "end": run.position, "arguments": digest(shape)}
        try:
            output = codec.encode(entry, f"the result of watched step {name!r}")
        except EncodeError as exc:
            status = UNRECORDED
            warn_unrecordable(name, exc)
    from .._store import StepRecord

    run.runtime.store.record_step(
        run.workflow_id,
        run.executor_id,
        StepRecord(
            position,
            name,
            status,
            output,
            encoded_error,
            1,
            started,
            time.time(),
            branch=run.branch,
        ),
    )


def watched_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The wrapper function of a watched function (wrapt's signature)."""
    return call_watched(wrapped, args, kwargs, wrapped.__qualname__)


def watched_call_async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper function of an async watched function (wrapt's signature)."""
    return call_watched_async(wrapped, args, kwargs, wrapped.__qualname__)


class _Call:
    """One watched call in workflow code: its place, its arguments, its watch."""

    __slots__ = ("name", "position", "run", "shape", "started", "token", "watch")

    def __init__(self, run: Run, position: int, name: str, shape: Any) -> None:
        self.run, self.position, self.name, self.shape = run, position, name, shape
        self.watch = Watch()
        self.started = 0.0
        self.token: contextvars.Token[Watch | None] | None = None

    def replayed(self) -> tuple[bool, Any]:
        """(True, value) when the call is recorded; raises a recorded failure."""
        if not self.run.history:
            return False, None  # a fresh run has nothing to replay
        return _replayed(self.run, self.position, self.name, self.shape)

    def enter(self) -> None:
        """From here on, I/O in this context is the call's."""
        self.token = WATCH_VAR.set(self.watch)
        self.started = time.time()

    def leave(self) -> None:
        assert self.token is not None
        WATCH_VAR.reset(self.token)

    def finished(self, result: Any = None, error: BaseException | None = None) -> None:
        """Record the outcome if the call did I/O; nothing otherwise."""
        if self.watch.io is not None:
            _record(self.run, self.position, self.name, self.shape, self.started, result, error)


def call_watched(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Any:
    """Call a watched function in workflow code (see the module docstring)."""
    run = RUN_VAR.get()
    if run is None:
        return fn(*args, **kwargs)
    if run.pid != _context.pid:  # a forked child's: not ours to record
        warn_forked("watched call", name, run)
        return forked_call(fn, args, kwargs)
    _ensure_chokepoints()
    call = _Call(run, run.take_position(), name, arguments_shape(args, kwargs))
    done, value = call.replayed()
    if done:
        return value
    call.enter()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        call.finished(error=exc)
        raise
    finally:
        call.leave()
    call.finished(result)
    return result


def call_watched_async(
    fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Awaitable[Any]:
    """Call an async watched function: the position is taken now, the body runs when awaited."""
    run = RUN_VAR.get()
    if run is None:
        return fn(*args, **kwargs)
    if run.pid != _context.pid:  # a forked child's: not ours to record
        warn_forked("watched call", name, run)
        return forked_call_async(fn, args, kwargs)
    _ensure_chokepoints()
    call = _Call(run, run.take_position(), name, arguments_shape(args, kwargs))
    return _watched_async(call, fn, args, kwargs)


async def _watched_async(
    call: _Call, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    done, value = call.replayed()
    if done:
        return value
    call.enter()
    try:
        result = await fn(*args, **kwargs)
    except Exception as exc:
        call.finished(error=exc)
        raise
    finally:
        call.leave()
    call.finished(result)
    return result
