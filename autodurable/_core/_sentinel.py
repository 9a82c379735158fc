"""The runtime sentinel: notices I/O that workflow code does outside any step.

Workflow code runs again when a workflow resumes; only steps are recorded. The
sentinel wraps the low-level I/O entry points (open, sockets, subprocesses,
sqlite3, os.system) and reports a call made by workflow code outside a step.

Invariants:
- Outside workflows and inside steps a wrapped call costs two ContextVar reads
  and is then the original call; "off" skips every check without unpatching.
- A call is reported only if the code that made it is the user's: the first
  frame outwards from the call that is not in the standard library, in
  site-packages/dist-packages or in wrapt. If that frame is autodurable's own
  (its store opening, say), or an import is in progress on the stack
  (module-level code is not workflow I/O), nothing is reported.
- "warn" (the default) reports once per (file, line) per process through the
  ``autodurable`` logger (`_report`), never through ``warnings``, so a program
  that turns warnings into errors behaves the same; "warnings" reports through
  ``warnings.warn`` (`UnrecordedIOWarning`, pointing at the user's line) for
  those who ask for it; "error" raises `UnrecordedIOError` before the I/O
  happens, an `AutodurableError`, so the workflow stays pending and resumable.
- Each attribute holds at most one sentinel wrapper (install is idempotent);
  `builtins.open` and `io.open` share one, so they stay the same object and a
  call is reported once. `uninstall()` puts back the original objects. A
  wrapper pickles by reference, like the function it wraps.
- References taken before `install()` (``from sqlite3 import connect``) are not
  wrapped. Modules imported later are patched by a post-import hook.
- Threads, pool work and asyncio tasks that workflow code starts run in its
  context (`_concurrency`), so their I/O outside steps is reported too. An
  asyncio event loop waking itself (its own socket pair) is never reported.
- Global mutable state: the mode (None when not installed), guarded by a lock;
  the reported lines are `_report`'s.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._errors import AutodurableError, ConfigError
from . import _report, _wrapt
from ._context import WATCH_VAR, note_io, recording
from ._names import PACKAGE_DIR
from ._post_import import when_imported

MODES = ("warn", "warnings", "error", "off")

# Per module whose import triggers the patching: (module, attribute path, what to call it).
_TARGETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "builtins": (("builtins", "open", "open"), ("io", "open", "open")),
    "os": (("os", "system", "os.system"),),
    "socket": (
        ("socket", "socket.connect", "socket.connect"),
        ("socket", "socket.connect_ex", "socket.connect_ex"),
        ("socket", "create_connection", "socket.create_connection"),
        # A client connected before (a pool, a session) only sends and receives.
        ("socket", "socket.send", "socket.send"),
        ("socket", "socket.sendall", "socket.sendall"),
        ("socket", "socket.sendto", "socket.sendto"),
        ("socket", "socket.recv", "socket.recv"),
        ("socket", "socket.recv_into", "socket.recv_into"),
        ("socket", "socket.recvfrom", "socket.recvfrom"),
    ),
    "ssl": (
        ("ssl", "SSLSocket.send", "ssl.SSLSocket.send"),
        ("ssl", "SSLSocket.sendall", "ssl.SSLSocket.sendall"),
        ("ssl", "SSLSocket.recv", "ssl.SSLSocket.recv"),
        ("ssl", "SSLSocket.recv_into", "ssl.SSLSocket.recv_into"),
    ),
    "subprocess": (("subprocess", "Popen.__init__", "subprocess.Popen"),),
    "sqlite3": (
        ("sqlite3", "connect", "sqlite3.connect"),
        ("sqlite3.dbapi2", "connect", "sqlite3.connect"),
    ),
    # Drivers whose network I/O happens in C: their Python entry points.
    "psycopg": (
        ("psycopg", "Cursor.execute", "psycopg.Cursor.execute"),
        ("psycopg", "Cursor.executemany", "psycopg.Cursor.executemany"),
        ("psycopg", "Connection.execute", "psycopg.Connection.execute"),
        ("psycopg", "Connection.commit", "psycopg.Connection.commit"),
        ("psycopg", "AsyncCursor.execute", "psycopg.AsyncCursor.execute"),
        ("psycopg", "AsyncConnection.execute", "psycopg.AsyncConnection.execute"),
    ),
    "psycopg2": (("psycopg2", "connect", "psycopg2.connect"),),
}
# File operations of ``os`` (shutil and pathlib go through them).
_TARGETS["os"] += tuple(
    ("os", name, f"os.{name}")
    for name in ("remove", "unlink", "rename", "replace", "mkdir", "rmdir", "listdir", "scandir")
)

_IMPORTING = frozenset({"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"})


@functools.cache
def _libraries() -> tuple[str, ...]:
    """The folders of the standard library and installed packages (asked on first use:
    `sysconfig` costs a millisecond at start-up, and most runs never ask)."""
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(
        {
            *(
                os.path.join(paths[key], "")
                for key in ("stdlib", "platstdlib", "purelib", "platlib")
            ),
            os.path.join(os.path.abspath(_wrapt.PACKAGE_DIR), ""),
            "<frozen ",
        }
    )


_LIBRARY_PARTS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")

_mode: str | None = None
_lock = threading.RLock()


class UnrecordedIOWarning(RuntimeWarning):
    """Workflow code did I/O outside any step: it runs again when the workflow resumes."""


class UnrecordedIOError(AutodurableError):
    """Workflow code did I/O outside any step, and the sentinel is set to "error"."""


if TYPE_CHECKING:
    import wrapt

    _FunctionWrapper = wrapt.FunctionWrapper[..., Any]
else:  # wrapt's C type takes no type arguments at run time
    _FunctionWrapper = _wrapt.FunctionWrapper


class _SentinelWrapper(_FunctionWrapper):
    """A FunctionWrapper of ours: install and uninstall know it; pickled by name."""

    if TYPE_CHECKING:
        _self_target: tuple[str, str]  # (module, attribute path), set by `_patch_module`

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return _resolve, self._self_target


def _resolve(module: str, path: str) -> Any:
    """What `module`.`path` is now (a wrapper is unpickled as that)."""
    return _wrapt.resolve_path(module, path)[2]


def installed_mode() -> str | None:
    """The mode the sentinel was installed with, or None when it is not installed."""
    return _mode


def install(mode: str) -> None:
    """Wrap the I/O entry points (once) and set the mode: "warn", "error" or "off"."""
    global _mode
    if mode not in MODES:
        raise ConfigError(f"sentinel mode must be one of {', '.join(MODES)}, not {mode!r}")
    with _lock:
        first = _mode is None
        _mode = mode
        if first:  # a hook runs at once for a module already imported
            for name in _TARGETS:
                when_imported(name, _patch_module)


def uninstall() -> None:
    """Put the original functions back and forget what was reported (for tests)."""
    global _mode
    with _lock:
        _mode = None  # a post-import hook still pending does nothing now
        _report.forget()
        for targets in _TARGETS.values():
            for module_name, path, _label in targets:
                module = sys.modules.get(module_name)
                if module is None:
                    continue
                parent, attribute, current = _wrapt.resolve_path(module, path)
                if isinstance(current, _SentinelWrapper):
                    _restore(parent, attribute, current.__wrapped__)


def _patch_module(module: Any) -> None:
    """Post-import hook: wrap the targets that `module`'s import makes available."""
    with _lock:
        if _mode is None:
            return
        shared: dict[int, _SentinelWrapper] = {}  # original -> wrapper, within this module
        for module_name, path, label in _TARGETS[module.__name__]:
            target = sys.modules.get(module_name)
            if target is None:
                continue
            parent, attribute, original = _wrapt.resolve_path(target, path)
            if isinstance(original, _SentinelWrapper):
                continue
            wrapper = shared.get(id(original))
            if wrapper is None:
                wrapper = _SentinelWrapper(original, _make_wrapper(label), _active)
                wrapper._self_target = (module_name, path)
                shared[id(original)] = wrapper
            setattr(parent, attribute, wrapper)


def _restore(parent: Any, attribute: str, original: Any) -> None:
    """Undo a patch; a method that was inherited is deleted again rather than set."""
    if isinstance(parent, type):
        bases = (vars(cls) for cls in parent.__mro__[1:])
        inherited = next((names[attribute] for names in bases if attribute in names), None)
        if inherited is original:
            delattr(parent, attribute)
            return
    setattr(parent, attribute, original)


def _active() -> bool:
    """wrapt's `enabled` test, on every call: False calls the original at once.

    In workflow code: always when reporting, and inside a watched call (`_watch`)
    whatever the mode, since the call's I/O decides whether it is recorded.
    """
    return recording() and (_mode != "off" or WATCH_VAR.get() is not None)


def _make_wrapper(label: str) -> Callable[..., Any]:
    def sentinel(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        _check(label)  # only called when _active()
        return wrapped(*args, **kwargs)

    return sentinel


# An asyncio event loop wakes itself through a socket pair of its own; those reads and
# writes are no one's I/O (they would be reported at the line of `asyncio.run`).
_LOOP_SELF_PIPE = frozenset({"_read_from_self", "_write_to_self"})


def _check(label: str) -> None:
    """Report the I/O call `label` if the user's workflow code made it (see the invariants)."""
    # The caller of the wrapper; 0 is here, 1 the wrapper.
    frame: FrameType | None = sys._getframe(2)
    if (
        frame is not None
        and frame.f_code.co_name in _LOOP_SELF_PIPE
        and frame.f_globals.get("__name__") == "asyncio.selector_events"
    ):
        return
    level = 3  # warnings.warn's stacklevel of `frame`, as seen from here
    user = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename in _IMPORTING:
            return  # module-level code of a module being imported
        if user is None:
            if filename.startswith(PACKAGE_DIR):
                return  # autodurable's own I/O (opening its store, say)
            if not _is_library(filename):
                user, user_level = frame, level
        frame = frame.f_back
        level += 1
    if user is None or note_io(label) or _mode == "off":
        return  # not the user's I/O; taken by a watched call (recorded); or not reported
    filename, line = user.f_code.co_filename, user.f_lineno
    message = (
        f"autodurable: workflow code did I/O outside any step: {label}() in "
        f"{user.f_code.co_qualname} ({filename}:{line}). It is not recorded and runs again "
        "when the workflow resumes; make the function that does it a step (@autodurable.step), "
        "or let `autodurable run` infer it."
    )
    if _mode == "error":
        raise UnrecordedIOError(message)
    if not _report.first_time(("sentinel", filename, line)):
        return
    if _mode == "warnings":
        warnings.warn(message, UnrecordedIOWarning, stacklevel=user_level)
    else:
        _report.warn(message)


def _is_library(filename: str) -> bool:
    return filename.startswith(_libraries()) or any(part in filename for part in _LIBRARY_PARTS)
