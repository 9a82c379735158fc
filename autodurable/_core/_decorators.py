"""The `workflow` and `step` decorators: one wrapper contract for every kind of callable.

Invariants:
- The same wrapper serves functions, methods, classmethods, staticmethods and
  ``async def`` functions (wrapt tells the wrapper the bound instance). The
  wrapped object keeps ``__name__``, ``__qualname__``, ``__module__``,
  ``__doc__``, its signature and ``inspect.iscoroutinefunction``; it pickles by
  reference like the function it wraps.
- Option layers that do not change per call (defaults, pyproject, decorator)
  are merged once per runtime configuration, not per call.
- Outside workflow code, a step whose options neither retry nor time it out is
  the function itself: wrapt calls it directly (`_StepOptionsCache.needed`).
- A workflow records its instance as its first input when it is an instance
  method (so recovery can call it again), nothing for classmethods (the class
  is part of its name) and staticmethods.
- Generator functions are refused: their results cannot be recorded.
- Decorating is light: the options the codemod writes (none, or only
  ``unrecordable``), which are valid by construction, are turned into `CallOptions`
  on the first call, and the runtime is imported then; so importing a module of
  decorated functions loads neither pydantic nor the runtime. Any other option
  is validated at once, so a bad one fails at import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from .._errors import ConfigError
from . import _wrappers
from ._context import workflow_code
from ._names import qualified_name
from ._wrappers import DurableFunction, DurableStep, DurableWorkflow, kind_of, workflow_name

if TYPE_CHECKING:
    from ._options import CallOptions, Retry, UnrecordablePolicy

# The runtime's entry points, imported on the first call of a decorated function
# (`_load`): a module of decorated functions can be imported without them.
call_step: Any = None
call_step_async: Any = None
call_workflow: Any = None
call_workflow_async: Any = None
get_runtime: Any = None
# The runtime module (its current runtime is `_runtimes._runtime`) and the per-call
# options' variable, read directly on every step call: two Python calls fewer.
_runtimes: Any = None
_call_options: Any = None


def _load() -> None:
    global call_step, call_step_async, call_workflow, call_workflow_async
    global get_runtime, _runtimes, _call_options
    from . import _options, _runtime, _steps, _workflows

    call_step, call_step_async = _steps.call_step, _steps.call_step_async
    call_workflow, call_workflow_async = _workflows.call_workflow, _workflows.call_workflow_async
    get_runtime, _runtimes, _call_options = _runtime.get_runtime, _runtime, _options._call_options


# Options valid by construction (what the codemod writes), kept as a dict until
# the first call: {} or {"unrecordable": "rerun" | "error"}.
Deferred = dict[str, str]


def _options_for(where: str, options: dict[str, Any]) -> CallOptions | Deferred:
    """The decorator's options: validated now, or deferred when valid by construction."""
    if not options or (
        options.keys() == {"unrecordable"} and options["unrecordable"] in ("rerun", "error")
    ):
        return dict(options)
    from ._options import make_options

    return make_options(where, **options)


def _field(opts: CallOptions | Deferred, name: str) -> Any:
    return opts.get(name) if isinstance(opts, dict) else getattr(opts, name)


F = TypeVar("F", bound=Callable[..., Any])

# Workflows whose name was set explicitly, so recovery can find them by it.
registry: dict[str, Callable[..., Any]] = {}


class _StepOptionsCache:
    """The decorator's options merged over the runtime defaults, per configuration.

    `named` is the step's name under them (`default` unless an options layer
    names it), kept with them: a call with no per-call layer reads both at once.
    """

    __slots__ = ("decorator", "default", "generation", "merged", "named")

    def __init__(self, decorator: CallOptions | Deferred, default: str = "") -> None:
        self.decorator = decorator
        self.default = default
        self.generation = -1
        self.merged: CallOptions | None = None
        self.named = default

    def resolve(self) -> CallOptions:
        return self.current()[0]

    def current(self) -> tuple[CallOptions, str]:
        """The options of a call now, and the step's name under them (`default` if none)."""
        runtime = _runtimes._runtime if _runtimes is not None else None
        if runtime is None or runtime.generation != self.generation:
            self._merge()
        merged = self.merged
        assert merged is not None
        call = _call_options.get()
        if call is None:
            return merged, self.named
        opts = merged.merged(call)
        return opts, opts.name or self.default

    def _merge(self) -> None:
        """Merge the decorator's options over the current runtime's step defaults."""
        if get_runtime is None:
            _load()
        if isinstance(self.decorator, dict):
            from ._options import CallOptions

            # Valid by construction (see `_options_for`): nothing to check.
            self.decorator = CallOptions.trusted(self.decorator, self.decorator)
        runtime = get_runtime()
        if runtime.generation != self.generation:
            self.merged = merged = runtime.step_defaults.merged(self.decorator)
            self.named = merged.name or self.default
            self.generation = runtime.generation

    def needed(self) -> bool:
        """wrapt's ``enabled`` test, before each call: whether the wrapper has work.

        It has in workflow code, and wherever the step's options retry it or time
        it out; anywhere else the function is called directly, from C, with no
        frame of ours on the stack (this test has returned by then).
        """
        if workflow_code() is not None:
            return True
        if isinstance(self.decorator, dict) and _nothing_configured():
            return False  # no retries nor timeout anywhere: no need to load the runtime
        opts = self.resolve()
        return opts.timeout is not None or opts.retry_policy.max_attempts > 1


_no_step_defaults: bool | None = None  # [tool.autodurable.steps] absent (read once)


def _nothing_configured() -> bool:
    """Whether no step option can come from anywhere but the decorator: the runtime
    and per-call options were never loaded here, and pyproject.toml sets no
    ``[tool.autodurable.steps]``."""
    global _no_step_defaults
    if "autodurable._core._options" in sys.modules:
        return False
    if _no_step_defaults is None:
        from .._project import find_pyproject, read_pyproject_section

        try:
            _no_step_defaults = "steps" not in read_pyproject_section(find_pyproject())
        except ConfigError:
            _no_step_defaults = False  # the runtime reports it
    return _no_step_defaults


def _target(fn: Any) -> Any:
    """The plain function inside classmethod/staticmethod objects."""
    return fn.__func__ if isinstance(fn, classmethod | staticmethod) else fn


# inspect.CO_GENERATOR, CO_ASYNC_GENERATOR and CO_COROUTINE (fixed by the interpreter):
# `inspect` costs milliseconds to import.
_GENERATOR_FLAGS = 0x20 | 0x200
_COROUTINE_FLAG = 0x80


def _is_async(target: Any) -> bool:
    """`inspect.iscoroutinefunction`, read straight from the code flags when there are some."""
    code = getattr(target, "__code__", None)
    if code is not None and type(target).__name__ == "function":
        return bool(code.co_flags & _COROUTINE_FLAG)
    import inspect

    return inspect.iscoroutinefunction(target)


def _checked_target(fn: Any, kind: str) -> Any:
    """The function to wrap; refuses generators and non-callables (checked at import)."""
    target = _target(fn)
    code = getattr(target, "__code__", None)
    flags = code.co_flags if code is not None else 0
    if flags & _GENERATOR_FLAGS:
        raise TypeError(
            f"{qualified_name(target)} is a generator function and cannot be a {kind}: "
            "its items are produced lazily and cannot be recorded. Return a list instead."
        )
    if not callable(target):
        raise TypeError(f"@{kind} decorates functions and methods, not {type(fn).__name__}")
    return target


def _make_step(fn: Any, opts: CallOptions | Deferred) -> DurableFunction:
    target = _checked_target(fn, "step")
    # The step's name is its qualified name, unless an options layer names it.
    cache = _StepOptionsCache(opts, target.__qualname__)
    current = cache.current
    if _is_async(target):

        def wrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            opts, name = current()
            return call_step_async(wrapped, args, kwargs, name, opts)

    else:

        def wrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            # `cache.current()` inline for its common case (the options merged for this
            # runtime, no per-call layer): this runs for every step call.
            runtime = _runtimes._runtime if _runtimes is not None else None
            if (
                runtime is not None
                and runtime.generation == cache.generation
                and _call_options.get() is None
            ):
                return call_step(wrapped, args, kwargs, cache.named, cache.merged)
            opts, name = current()
            return call_step(wrapped, args, kwargs, name, opts)

    return DurableStep(fn, wrapper, enabled=cache.needed)


def _make_workflow(fn: Any, opts: CallOptions | Deferred) -> DurableFunction:
    target = _checked_target(fn, "workflow")
    name = _field(opts, "name") or qualified_name(target)
    is_async = _is_async(target)
    rerun = _field(opts, "unrecordable") == "rerun"
    timeout = _field(opts, "workflow_timeout")

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if call_workflow is None:
            _load()
        run = call_workflow_async if is_async else call_workflow
        recorded = args
        if instance is not None and not isinstance(instance, type):
            recorded = (instance, *args)  # instance method: the instance is an input
        return run(wrapped, args, kwargs, name, recorded, rerun, timeout)

    durable = DurableWorkflow(fn, wrapper)
    durable._self_autodurable_name = name
    if _field(opts, "name"):
        registry[name] = durable
    if timeout is not None:
        durable._self_autodurable_timeout = timeout
    return durable


# What the import hook's wrappers (`_wrappers`) call in workflow code. Inferred
# steps have options that never differ, so one options cache serves all of them.
_inferred_options = _StepOptionsCache({"unrecordable": "rerun"})


def inferred_options() -> CallOptions:
    """The options of inferred steps (``unrecordable="rerun"``), without the runtime's."""
    _inferred_options.resolve()
    decorator = _inferred_options.decorator
    assert not isinstance(decorator, dict)
    return decorator


def inferred_step_call(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    opts = _inferred_options.resolve()
    return call_step(wrapped, args, kwargs, opts.name or wrapped.__qualname__, opts)


def inferred_step_call_async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    opts = _inferred_options.resolve()
    return call_step_async(wrapped, args, kwargs, opts.name or wrapped.__qualname__, opts)


def watched(fn: F, /) -> F:
    """Confirm a function at run time: in workflow code, a call of it that does I/O
    (sockets, files, subprocesses, database drivers) is recorded as a step; one
    that does none records nothing. Elsewhere it is the function itself.

    What the analyser and the codemod use for a function whose I/O cannot be
    told statically (a method of an untyped client); name it a step when you know.
    """
    target = _checked_target(fn, "watched")
    if _is_async(target):
        return cast(F, _wrappers.inferred_awatched(fn))  # a wrapper that is called as `fn`
    return cast(F, _wrappers.inferred_watched(fn))


def root_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if call_workflow is None:
        _load()
    recorded = args if instance is None or isinstance(instance, type) else (instance, *args)
    return call_workflow(wrapped, args, kwargs, qualified_name(wrapped), recorded, True, None)


def root_call_async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if call_workflow is None:
        _load()
    recorded = args if instance is None or isinstance(instance, type) else (instance, *args)
    return call_workflow_async(wrapped, args, kwargs, qualified_name(wrapped), recorded, True, None)


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    fn: None = None,
    /,
    *,
    retries: int | Retry | None = ...,
    timeout: float | None = ...,
    name: str | None = ...,
    unrecordable: UnrecordablePolicy | None = ...,
    overlap: bool | None = ...,
) -> Callable[[F], F]: ...
def step(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a step: its result is recorded and replayed, never re-run.

    Usable bare (``@step``) or with options (``@step(retries=3, timeout=10,
    name="charge")``), on functions, methods, classmethods, staticmethods and
    ``async def`` functions.
    """
    opts = _options_for("step options", options)
    if fn is None:
        return lambda f: _make_step(f, opts)
    return _make_step(fn, opts)


@overload
def workflow(fn: F, /) -> F: ...
@overload
def workflow(
    fn: None = None,
    /,
    *,
    name: str | None = ...,
    unrecordable: UnrecordablePolicy | None = ...,
    workflow_timeout: float | None = ...,
) -> Callable[[F], F]: ...
def workflow(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a workflow: its inputs, steps and outcome are recorded.

    Calling it runs it (or resumes it, or returns its recorded result when a
    workflow with the same id finished). Set the id per call with
    ``autodurable.options(fn, workflow_id="...")``. ``name=`` registers it
    under a stable name instead of its import path. ``workflow_timeout=``
    (seconds) gives every run a deadline, after which it is cancelled (a
    per-call ``options(fn, workflow_timeout=...)`` overrides it).
    """
    opts = _options_for("workflow options", options)
    given = set(opts) if isinstance(opts, dict) else opts.fields_set
    extra = given - {"name", "unrecordable", "workflow_timeout"}
    if extra:
        raise ConfigError(
            f"@workflow takes only name=, unrecordable= and workflow_timeout=; {sorted(extra)} "
            "apply to steps: set them on @step, on a proxy, or per call with "
            "autodurable.options(...)"
        )
    if fn is None:
        return lambda f: _make_workflow(f, opts)
    return _make_workflow(fn, opts)


__all__ = [
    "DurableFunction",
    "DurableStep",
    "DurableWorkflow",
    "inferred_options",
    "inferred_step_call",
    "inferred_step_call_async",
    "kind_of",
    "registry",
    "root_call",
    "root_call_async",
    "step",
    "watched",
    "workflow",
    "workflow_name",
]
