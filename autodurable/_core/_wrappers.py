"""The wrappers autodurable puts around functions, and the import hook's decorators.

Kept apart from the decorators and the runtime so that code rewritten by the
import hook imports only this (and wrapt's C extension, through `_wrapt`): a
process that merely imports a rewritten module, and never runs workflow code,
loads neither pydantic nor asyncio nor the store nor the wrapt package.

Invariants:
- One wrapper contract (a wrapt ``FunctionWrapper``) for steps and workflows;
  its kind is a class attribute (``_self_autodurable_kind``), and a workflow's
  name and timeout are instance attributes only when options set them.
- A wrapper keeps ``__name__``, ``__qualname__``, ``__module__``, ``__doc__``,
  the signature and ``inspect.iscoroutinefunction`` of what it wraps, pickles by
  reference, and ``functools.wraps`` applied to it sets ``__wrapped__`` on the
  wrapped function (as on a plain function) instead of replacing it.
- An inferred step is the original function outside workflow code: wrapt calls
  it from C (no frame of ours), and a method looked up on an instance is the
  plain bound method. What runs in workflow code is imported on first use.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from types import FunctionType
from typing import TYPE_CHECKING, Any, cast

from . import _wrapt
from ._context import workflow_code
from ._names import qualified_name

if TYPE_CHECKING:
    import wrapt

    _FunctionWrapper = wrapt.FunctionWrapper[..., Any]
else:  # wrapt's C type takes no type arguments at run time
    _FunctionWrapper = _wrapt.FunctionWrapper


class DurableFunction(_FunctionWrapper):
    """A function wrapped as a step or a workflow.

    What a wrapper is (its kind) is a class attribute, and a workflow's name
    and timeout are instance attributes only when options set them: a wrapper
    made at import costs little more than the proxy itself.
    """

    _self_autodurable_kind = ""
    _self_autodurable_name: str | None = None  # None: the function's qualified name
    _self_autodurable_timeout: float | None = None
    if TYPE_CHECKING:
        __qualname__: str  # the proxy's: the wrapped function's

    # A class body with annotations gets an `__annotations__` dict of its own, which
    # would be found before the proxy forwards the name: code reading the wrapped
    # function's annotations (typing.get_type_hints, pydantic, FastAPI, agent
    # frameworks building tool schemas) would see the class's instead.
    @property
    def __annotations__(self) -> dict[str, Any]:
        return self.__wrapped__.__annotations__

    @__annotations__.setter
    def __annotations__(self, value: dict[str, Any]) -> None:
        self.__wrapped__.__annotations__ = value

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each subclass gets the forwarding property in its own namespace: Python gives
        # a class without one an empty `__annotations__` dict the first time anything
        # asks the class for it (wrapt does, on assignment), and that would hide ours.
        type.__setattr__(cls, "__annotations__", vars(DurableFunction)["__annotations__"])

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


class DurableStep(DurableFunction):
    """A function wrapped as a step."""

    _self_autodurable_kind = "step"


class DurableWorkflow(DurableFunction):
    """A function wrapped as a workflow."""

    _self_autodurable_kind = "workflow"


_bind = types.MethodType


class InferredStep(DurableStep):
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


class WatchedFunction(InferredStep):
    """A function confirmed at run time (`_watch`): in workflow code, recorded as a
    step only when a call of it does I/O; elsewhere, the original function."""

    _self_autodurable_kind = "watched"


def kind_of(fn: Any) -> str | None:
    """ "step", "workflow", "watched", or None for a callable autodurable did not wrap
    (a method looked up on an instance is wrapt's bound wrapper: its parent says)."""
    found = getattr(fn, "_self_autodurable_kind", None)
    if found is None:
        parent = getattr(fn, "_self_parent", None)
        found = getattr(parent, "_self_autodurable_kind", None) if parent is not None else None
    return found or None


def workflow_name(fn: Any) -> str:
    """The name a workflow wrapper records its runs under."""
    name: str | None = fn._self_autodurable_name
    return name or qualified_name(fn.__wrapped__)


def _late(name: str, module: str = "_decorators") -> Callable[..., Any]:
    """A wrapper function that calls `module`'s `name`, imported on its first call.

    Wrappers only call it in workflow code (or for a root), when the runtime is
    loaded anyway; until then importing a rewritten module stays light.
    """
    target: Callable[..., Any] | None = None

    def call(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        nonlocal target
        if target is None:
            target = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        return target(wrapped, instance, args, kwargs)

    call.__name__ = call.__qualname__ = name
    return call


# What the import hook's decorators are. They are applied to plain functions only
# (the hook's decorator is the innermost, and it never decorates a generator), an
# ``async def`` getting the "a" version: wrapping is then the proxy alone, its
# arguments passed by position (a project's import makes thousands of them).
#
# An inferred step is enabled only in workflow code (`workflow_code`): anywhere
# else wrapt calls the original function itself, from C, so the call has no frame
# of ours, no log record and no options to merge, and behaves as the original does
# (a caller-inspecting function or ``warnings.warn(stacklevel=2)`` sees its real
# caller). Inferred workflows get no decorator at all: called from workflow code
# they run inline, and from anywhere else they are plain code (only roots start
# workflows). A workflow configured in ``[tool.autodurable.roles]`` is a root.
#
# (wrapt only tests the truth of what ``enabled()`` returns: the current run or None.)
_enabled = cast("Callable[[], bool]", workflow_code)


def _maker(cls: type[DurableFunction], wrapper: Any, enabled: Any = None) -> Callable[[Any], Any]:
    """The decorator making `cls` wrappers with `wrapper` (and `enabled`).

    Arguments passed by position: the proxy's constructor parses keywords at
    about twice the cost, paid once per function a project's import wraps.
    """

    def make(fn: Any, _cls: Any = cls, _wrapper: Any = wrapper, _enabled: Any = enabled) -> Any:
        return _cls(fn, _wrapper, _enabled)

    return make


inferred_step = _maker(InferredStep, _late("inferred_step_call"), _enabled)
inferred_astep = _maker(InferredStep, _late("inferred_step_call_async"), _enabled)
configured_root = _maker(DurableWorkflow, _late("root_call"))
configured_aroot = _maker(DurableWorkflow, _late("root_call_async"))
inferred_watched = _maker(WatchedFunction, _late("watched_call", "_watch"), _enabled)
inferred_awatched = _maker(WatchedFunction, _late("watched_call_async", "_watch"), _enabled)
