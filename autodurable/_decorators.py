"""The `workflow` and `step` decorators: one wrapper contract for every kind of callable.

Invariants:
- The same wrapper serves functions, methods, classmethods, staticmethods and
  ``async def`` functions (wrapt tells the wrapper the bound instance). The
  wrapped object keeps ``__name__``, ``__qualname__``, ``__module__``,
  ``__doc__``, its signature and ``inspect.iscoroutinefunction``; it pickles by
  reference like the function it wraps.
- Option layers that do not change per call (defaults, pyproject, decorator)
  are merged once per runtime configuration, not per call.
- A workflow records its instance as its first input when it is an instance
  method (so recovery can call it again), nothing for classmethods (the class
  is part of its name) and staticmethods.
- Generator functions are refused: their results cannot be recorded.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from types import FunctionType
from typing import Any, TypeVar, overload

import wrapt

from ._context import workflow_code
from ._errors import ConfigError
from ._names import qualified_name
from ._options import Options, current_call_options, make_options
from ._runtime import get_runtime
from ._steps import call_step, call_step_async
from ._workflows import call_workflow, call_workflow_async

F = TypeVar("F", bound=Callable[..., Any])

# Workflows whose name was set explicitly, so recovery can find them by it.
registry: dict[str, Callable[..., Any]] = {}


class DurableFunction(wrapt.FunctionWrapper):  # type: ignore[misc]
    """A function wrapped as a step or a workflow.

    What a wrapper is (its kind) is a class attribute, and a workflow's name
    and timeout are instance attributes only when options set them: a wrapper
    made at import costs little more than the proxy itself.
    """

    _self_autodurable_kind = ""
    _self_autodurable_name: str | None = None  # None: the function's qualified name
    _self_autodurable_timeout: float | None = None

    def __reduce_ex__(self, protocol: object) -> str:
        # Pickle by reference, as plain module-level functions do.
        return str(self.__qualname__)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "__wrapped__":
            # ``functools.wraps``/``update_wrapper`` declaring what the decorated
            # function wraps. On the proxy this would replace the function itself (so
            # a decorator's own body stopped running); a plain function just gets the
            # attribute, and so does the function we wrap.
            setattr(self.__wrapped__, name, value)
            return
        super().__setattr__(name, value)

    def __set_name__(self, owner: type, name: str) -> None:
        # Called for every wrapped method when its class is made. A plain function
        # has nothing to be told; asking it (as wrapt does) fails with an
        # AttributeError, which made a class of two durable methods import several
        # times slower than the plain one.
        wrapped = self.__wrapped__
        if type(wrapped) is not FunctionType:
            forward = getattr(wrapped, "__set_name__", None)
            if forward is not None:
                forward(owner, name)


class DurableStep(DurableFunction):  # type: ignore[misc]
    """A function wrapped as a step."""

    _self_autodurable_kind = "step"


class DurableWorkflow(DurableFunction):  # type: ignore[misc]
    """A function wrapped as a workflow."""

    _self_autodurable_kind = "workflow"


_bind = types.MethodType


class InferredStep(DurableStep):  # type: ignore[misc]
    """A step the analyser inferred: outside workflow code, the original function.

    Made with ``enabled=workflow_code``, so wrapt calls the original from C when
    the call is not in workflow code. Looking a method up on an instance there
    gives the plain bound method: wrapt's bound wrapper costs about 2 us to make.
    """

    def __get__(
        self, instance: Any, owner: Any = None, _bind: Any = _bind, _code: Any = workflow_code
    ) -> Any:
        # (The defaults make the two lookups local: this runs on every method call.)
        if instance is not None and not _code():
            return _bind(self.__wrapped__, instance)
        return super().__get__(instance, owner)


class _StepOptionsCache:
    """The decorator's options merged over the runtime defaults, per configuration."""

    __slots__ = ("decorator", "generation", "merged")

    def __init__(self, decorator: Options) -> None:
        self.decorator = decorator
        self.generation = -1
        self.merged = decorator

    def resolve(self) -> Options:
        runtime = get_runtime()
        if runtime.generation != self.generation:
            self.merged = runtime.step_defaults.merged(self.decorator)
            self.generation = runtime.generation
        call = current_call_options()
        return self.merged if call is None else self.merged.merged(call)


def _target(fn: Any) -> Any:
    """The plain function inside classmethod/staticmethod objects."""
    return fn.__func__ if isinstance(fn, classmethod | staticmethod) else fn


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def _is_async(target: Any) -> bool:
    """`inspect.iscoroutinefunction`, read straight from the code flags when there are some."""
    code = getattr(target, "__code__", None)
    if code is not None and type(target).__name__ == "function":
        return bool(code.co_flags & inspect.CO_COROUTINE)
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


def _make_step(fn: Any, opts: Options) -> DurableFunction:
    target = _checked_target(fn, "step")
    name = target.__qualname__  # unless an options layer names the step
    cache = _StepOptionsCache(opts)
    if _is_async(target):

        def wrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            opts = cache.resolve()
            return call_step_async(wrapped, args, kwargs, opts.name or name, opts)

    else:

        def wrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            opts = cache.resolve()
            return call_step(wrapped, args, kwargs, opts.name or name, opts)

    return DurableStep(fn, wrapper)


def _make_workflow(fn: Any, opts: Options) -> DurableFunction:
    target = _checked_target(fn, "workflow")
    name = opts.name or qualified_name(target)
    run = call_workflow_async if _is_async(target) else call_workflow
    rerun = opts.unrecordable == "rerun"
    timeout = opts.workflow_timeout

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        recorded = args
        if instance is not None and not isinstance(instance, type):
            recorded = (instance, *args)  # instance method: the instance is an input
        return run(wrapped, args, kwargs, name, recorded, rerun, timeout)

    durable = DurableWorkflow(fn, wrapper)
    durable._self_autodurable_name = name
    if opts.name:
        registry[name] = durable
    if timeout is not None:
        durable._self_autodurable_timeout = timeout
    return durable


# Steps and workflows inferred by the analyser: options that never differ (so one
# options cache serves all of them) and plain functions (the import hook adds its
# decorator innermost and never to a generator). Wrapping one is then a proxy and
# nothing else: a project's import makes thousands of them.
INFERRED = Options(unrecordable="rerun")
_inferred_options = _StepOptionsCache(INFERRED)


def _inferred_step_call(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    opts = _inferred_options.resolve()
    return call_step(wrapped, args, kwargs, opts.name or wrapped.__qualname__, opts)


def _inferred_step_call_async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    opts = _inferred_options.resolve()
    return call_step_async(wrapped, args, kwargs, opts.name or wrapped.__qualname__, opts)


def _root_call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    recorded = args if instance is None or isinstance(instance, type) else (instance, *args)
    return call_workflow(wrapped, args, kwargs, qualified_name(wrapped), recorded, True, None)


def _root_call_async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    recorded = args if instance is None or isinstance(instance, type) else (instance, *args)
    return call_workflow_async(wrapped, args, kwargs, qualified_name(wrapped), recorded, True, None)


# What the import hook's decorators are. They are applied to plain functions only
# (the hook's decorator is the innermost, and it never decorates a generator), an
# ``async def`` getting the "a" version: wrapping is then the proxy alone, made
# without a Python frame.
#
# An inferred step is enabled only in workflow code (`workflow_code`): anywhere else
# wrapt calls the original function itself, from C, so the call has no frame of
# ours, no log record and no options to merge, and behaves as the original does
# (a caller-inspecting function or ``warnings.warn(stacklevel=2)`` sees its real
# caller). Inferred workflows get no decorator at all: called from workflow code
# they run inline, and from anywhere else they are plain code (only roots start
# workflows). A workflow configured in ``[tool.autodurable.roles]`` is a root.
inferred_step = functools.partial(
    InferredStep, wrapper=_inferred_step_call, enabled=workflow_code
)
inferred_astep = functools.partial(
    InferredStep, wrapper=_inferred_step_call_async, enabled=workflow_code
)
configured_root = functools.partial(DurableWorkflow, wrapper=_root_call)
configured_aroot = functools.partial(DurableWorkflow, wrapper=_root_call_async)


@overload
def step(fn: F, /) -> F: ...
@overload
def step(fn: None = None, /, **options: Any) -> Callable[[F], F]: ...
def step(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a step: its result is recorded and replayed, never re-run.

    Usable bare (``@step``) or with options (``@step(retries=3, timeout=10,
    name="charge")``), on functions, methods, classmethods, staticmethods and
    ``async def`` functions.
    """
    opts = make_options("step options", **options)
    if fn is None:
        return lambda f: _make_step(f, opts)
    return _make_step(fn, opts)


@overload
def workflow(fn: F, /) -> F: ...
@overload
def workflow(fn: None = None, /, **options: Any) -> Callable[[F], F]: ...
def workflow(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a workflow: its inputs, steps and outcome are recorded.

    Calling it runs it (or resumes it, or returns its recorded result when a
    workflow with the same id finished). Set the id per call with
    ``autodurable.options(fn, workflow_id="...")``. ``name=`` registers it
    under a stable name instead of its import path. ``workflow_timeout=``
    (seconds) gives every run a deadline, after which it is cancelled (a
    per-call ``options(fn, workflow_timeout=...)`` overrides it).
    """
    opts = make_options("workflow options", **options)
    extra = opts.model_fields_set - {"name", "unrecordable", "workflow_timeout"}
    if extra:
        raise ConfigError(
            f"@workflow takes only name=, unrecordable= and workflow_timeout=; {sorted(extra)} "
            "apply to steps: set them on @step, on a proxy, or per call with "
            "autodurable.options(...)"
        )
    if fn is None:
        return lambda f: _make_workflow(f, opts)
    return _make_workflow(fn, opts)


def kind_of(fn: Any) -> str | None:
    """ "step", "workflow", or None for a callable autodurable did not wrap."""
    return getattr(fn, "_self_autodurable_kind", None) or None


def workflow_name(fn: Any) -> str:
    """The name a workflow wrapper records its runs under."""
    name: str | None = fn._self_autodurable_name
    return name or qualified_name(fn.__wrapped__)
