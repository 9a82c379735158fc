"""Work that workflow code runs concurrently: threads, thread pools and asyncio tasks.

Steps must get positions that do not depend on which concurrent work finishes
(or calls its steps) first, and the workflow's context must travel with the
work: a new thread starts with an empty context, and a pool's worker thread
runs whatever it is given in its own. So the primitives that start work are
patched, and decide where the work is *submitted*, in workflow code:

- A callable that is a step (a durable step wrapper, explicit or inferred, or
  a method of one) gets its position there, from the submitting code's
  counter: ``pool.map(download, urls)`` records the downloads at the positions
  of `urls`' order, however the pool schedules them. It then runs in the
  pool's thread with the workflow's context copied and that position taken
  (`Run.reserve`).
- Any other callable, and every coroutine that becomes a task, is workflow
  code that may call several steps: a *branch*. The submission takes one
  position P of the submitting code (`Run.fork`); the branch's steps are
  numbered 1, 2, 3 ... within it and recorded with the branch's path ("P",
  or "Q.P" for a branch of branch Q). The submitting code goes on counting
  past P, so its own positions stay the same whether its branches are still
  running or not. A step is identified by (branch, position) in the store (a
  migration added the ``branch`` column to the key); its place, "P.1", makes
  its idempotency key. One write per step and one query for the whole
  history still hold.

What is patched (each after the first workflow of the process runs, once, or,
for thread pools, asyncio and process pools, when their modules are imported
after that: a program that never imports them does not pay for them;
`uninstall` undoes it):

- ``ThreadPoolExecutor.submit`` (so ``map``, ``loop.run_in_executor`` on the
  default executor and ``asyncio.to_thread`` too; a ``to_thread`` call's own
  context copy is looked through, so a step passed to it gets its position).
- ``ProcessPoolExecutor.submit``: from workflow code, a one-time warning that
  the work is not recorded (it runs in another process, without the workflow).
- ``threading.Thread.start``: the thread's target (a ``Timer``'s function, or
  an overridden ``run``) runs in the workflow's context, as a step or a branch. Threads whose code
  is a library's (a pool's workers, a listener) start as before: their work
  is not workflow code, and giving it the workflow's context would number
  steps in whatever order their workers pick them.
- ``BaseEventLoop.create_task`` (so ``asyncio.create_task``, ``ensure_future``,
  ``gather``, ``TaskGroup``, ``wait_for``): a task created by workflow code on
  a running loop is a branch, numbered in the creating task. A coroutine of a
  step call is not (it took its position when called, see `_steps`), nor a
  task given an explicit context (``asyncio.run``'s main task, which the
  caller waits for, continues the caller's sequence).
- ``asyncio.as_completed``: it makes tasks of the coroutines it is given in
  set order (by address); from workflow code they are made in the order given.

Invariants:
- Outside workflow code every patched method is the original: the class
  attribute is a descriptor that, when ``CODE_VAR.get()`` (one C call) is
  None, returns the original function bound as usual, so the call runs no
  code of ours, allocates nothing more and leaves no frame; the same test is
  repeated in the replacement for a method looked up in workflow code and
  called elsewhere. ``as_completed`` is a wrapt wrapper that calls the
  original from C when disabled.
- In workflow code the work runs through ``functools.partial(context.run,
  fn)``: C calls, so the work sees the same chain of frames as without the
  patches. The original primitive itself runs outside workflow code, so the
  threads a pool starts for its own use are never branches.
- autodurable's own callables (waits it runs in threads, the workflows
  `start` hands to the runtime's pool) are submitted as they are.
- Not covered: references taken before the patches (``from asyncio import
  as_completed``), event loops that do not inherit ``BaseEventLoop.create_task``
  (uvloop), ``multiprocessing`` pools. Work started there is not recorded, as
  before, and runs again when the workflow resumes.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from types import CodeType
from typing import Any, cast

from . import _wrapt
from ._context import CODE_VAR, Run, enter_run
from ._names import PACKAGE_DIR
from ._post_import import when_imported
from ._report import warn_once
from ._sentinel import _is_library
from ._steps import _run_async_step

PROCESS_POOL_WARNING = (
    "autodurable: workflow code submitted work to a process pool (ProcessPoolExecutor); "
    "work in another process is not recorded and runs again when the workflow resumes. "
    "Use a thread pool, or make the function that submits the work and collects its "
    "results a step."
)

installed = False  # read by the workflows before they run (no call when it is True)
_lock = threading.Lock()
_saved: list[tuple[Any, str, Any]] = []  # (owner, attribute, original) of each patch
_STEP_CODE = _run_async_step.__code__  # the coroutine of an async step call
_code = CODE_VAR.get


class _Switch:
    """A method that is the original outside workflow code and `replacement` in it."""

    __slots__ = ("original", "replacement")

    def __init__(self, original: Any, replacement: Callable[..., Any]) -> None:
        self.original = original
        self.replacement = replacement

    def __get__(self, instance: Any, owner: Any = None, _code: Any = _code) -> Any:
        if instance is None or _code() is None:
            return self.original.__get__(instance, owner)
        return self.replacement.__get__(instance, owner)


# -- what runs where ----------------------------------------------------------------------


def _is_step(fn: Any) -> bool:
    """Whether calling `fn` calls a durable step (a wrapper, a method of one, a partial)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, _wrapt.BoundFunctionWrapper):
        fn = fn._self_parent
    return getattr(fn, "_self_autodurable_kind", None) == "step"


def _code_of(fn: Any) -> CodeType | None:
    """The code object that calling `fn` runs, looking through partials, methods, wrappers."""
    for _ in range(10):
        if isinstance(fn, functools.partial):
            fn = fn.func
            continue
        code = getattr(fn, "__code__", None)
        if isinstance(code, CodeType):
            return code
        inner = getattr(fn, "__func__", None) or getattr(fn, "__wrapped__", None)
        if inner is None:
            call = next(
                (vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)), None
            )
            code = getattr(call, "__code__", None)
            return code if isinstance(code, CodeType) else None
        fn = inner
    return None


def _is_ours(fn: Any) -> bool:
    """Whether `fn` is autodurable's own code (not a step wrapper)."""
    code = _code_of(fn)
    return code is not None and code.co_filename.startswith(PACKAGE_DIR) and not _is_step(fn)


def _is_users(fn: Any) -> bool:
    """Whether `fn` is a step, or code of the program's (not a library's, not ours)."""
    if _is_step(fn):
        return True
    code = _code_of(fn)
    if code is None:
        return False
    filename = code.co_filename
    return not filename.startswith(PACKAGE_DIR) and not _is_library(filename)


def context_for(run: Run, fn: Any) -> contextvars.Context:
    """A copy of the current context in which `fn` runs as concurrent work of `run`.

    A step keeps the position taken now; anything else is a branch.
    """
    work = run.reserve() if _is_step(fn) else run.fork()
    context = contextvars.copy_context()
    context.run(enter_run, work)
    return context


def _looked_through(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``asyncio.to_thread``'s ``partial(context.run, func, *args, **kwargs)``, opened up."""
    if type(fn) is functools.partial and fn.args:
        runner = fn.func
        if isinstance(getattr(runner, "__self__", None), contextvars.Context):
            return fn.args[0], (*fn.args[1:], *args), {**fn.keywords, **kwargs}
    return fn, args, kwargs


# -- the replacements -----------------------------------------------------------------------


def _thread_pool_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        run = _code()
        if run is None:
            return original(self, fn, *args, **kwargs)
        work, work_args, work_kwargs = _looked_through(fn, args, kwargs)
        if not _is_ours(work):
            fn, args, kwargs = (
                functools.partial(context_for(run, work).run, work),
                work_args,
                work_kwargs,
            )
        token = CODE_VAR.set(None)  # the pool's own threads start outside workflow code
        try:
            return original(self, fn, *args, **kwargs)
        finally:
            CODE_VAR.reset(token)

    return submit


def _process_pool_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if _code() is None:
            return original(self, fn, *args, **kwargs)
        warn_once(("autodurable", "process pool"), PROCESS_POOL_WARNING)
        token = CODE_VAR.set(None)
        try:
            return original(self, fn, *args, **kwargs)
        finally:
            CODE_VAR.reset(token)

    return submit


def _thread_start(original: Callable[..., Any]) -> Callable[..., Any]:
    plain_run, timer_run = threading.Thread.run, threading.Timer.run

    def start(self: threading.Thread) -> None:
        run = _code()
        if run is not None and "run" not in vars(self):
            method = type(self).run
            if method is plain_run:
                target = getattr(self, "_target", None)
            elif method is timer_run:
                target = getattr(self, "function", None)
            else:
                target = self.run
            if target is not None and _is_users(target):
                self.run = functools.partial(context_for(run, target).run, self.run)  # type: ignore[method-assign]
        return original(self)  # type: ignore[no-any-return]

    return start


def _create_task(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_task(self: Any, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        run = _code()
        if (
            run is None
            or context is not None
            or not self.is_running()
            or getattr(coro, "cr_code", None) is _STEP_CODE
        ):
            return original(self, coro, name=name, context=context)
        # The task copies the context it is created in: the branch's (this also
        # suits task factories that take no context).
        return context_for(run, coro).run(original, self, coro, name=name)

    return create_task


def _as_completed(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if args:
        fs, args = args[0], args[1:]
    else:
        fs = kwargs.pop("fs")
    import asyncio  # imported: this patches it

    if not (asyncio.isfuture(fs) or asyncio.iscoroutine(fs)):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # tasks made in the order given, not in the order of a set
            fs = [asyncio.ensure_future(f) for f in dict.fromkeys(fs)]
    return wrapped(fs, *args, **kwargs)


# -- installing -----------------------------------------------------------------------------


def _patch(owner: Any, attribute: str, make: Callable[[Any], Callable[..., Any]]) -> None:
    original = vars(owner)[attribute]
    if not isinstance(original, _Switch):
        setattr(owner, attribute, _Switch(original, make(original)))
        _saved.append((owner, attribute, original))


def _patch_thread_pools(module: Any) -> None:
    """Post-import hook: thread pools are patched when their module is imported."""
    with _lock:
        if installed:
            _patch(module.ThreadPoolExecutor, "submit", _thread_pool_submit)


def _patch_process_pools(module: Any) -> None:
    """Post-import hook: process pools are patched when their module is imported."""
    with _lock:
        if installed:
            _patch(module.ProcessPoolExecutor, "submit", _process_pool_submit)


def install() -> None:
    """Patch the primitives (once per process; called when a workflow runs)."""
    global installed
    with _lock:
        if installed:
            return
        _patch(threading.Thread, "start", _thread_start)
        installed = True
    # Not imported here: thread pools (with logging), multiprocessing and asyncio cost
    # a sync program that never uses them 5 to 20 ms and more. A hook runs at once for
    # a module imported already (and takes the lock itself).
    when_imported("concurrent.futures.thread", _patch_thread_pools)
    when_imported("asyncio", _patch_asyncio)
    when_imported("concurrent.futures.process", _patch_process_pools)


def _patch_asyncio(asyncio: Any) -> None:
    """Post-import hook: tasks and ``as_completed`` are patched when asyncio is imported."""
    with _lock:
        if not installed:
            return
        _patch(asyncio.base_events.BaseEventLoop, "create_task", _create_task)
        original = asyncio.tasks.as_completed
        if not isinstance(original, _wrapt.FunctionWrapper):
            # wrapt only tests the truth of what ``enabled()`` returns (a run or None).
            enabled = cast("Callable[[], bool]", _code)
            patched = _wrapt.FunctionWrapper(original, _as_completed, enabled)
            for module in (asyncio, asyncio.tasks):  # as_completed is set on both
                if getattr(module, "as_completed", None) is original:
                    module.as_completed = patched
                    _saved.append((module, "as_completed", original))


def uninstall() -> None:
    """Put the original primitives back (for tests); a later workflow installs them again."""
    global installed
    with _lock:
        while _saved:
            owner, attribute, original = _saved.pop()
            setattr(owner, attribute, original)
        installed = False
