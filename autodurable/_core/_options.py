"""Step and workflow options: checked records (`_fields`) and their layering.

Invariants:
- Options (`CallOptions`) are immutable. Layers are merged by *explicitly set* fields only: a
  higher layer overrides exactly the fields it names. The order, lowest first:
  defaults, ``[tool.autodurable.steps]`` in pyproject.toml, the decorator, a
  proxy, and a per-call `options(...)` block or wrapper.
- Invalid values given to `options()`, the decorators and `proxy()` fail at
  once with a `ConfigError` naming the field and the expected value (records
  made directly raise `InvalidFields`, a ValueError).
- The hot path never validates: decorators pre-merge their layers once, and a
  per-call layer is merged only when one is active.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from .._errors import ConfigError
from ._fields import (
    Check,
    Invalid,
    InvalidFields,
    Record,
    a_function,
    exception_type,
    field,
    flag,
    integer,
    items,
    number,
    one_of,
    optional,
    record,
    text,
)

if TYPE_CHECKING:
    import random


class Retry(Record):
    """A retry policy for steps: exponential backoff with jitter.

    ``max_attempts`` counts the first attempt: 1 means no retries. The delay
    before attempt ``n + 1`` is ``initial_interval * backoff ** (n - 1)``, capped
    at ``max_interval``, then spread by ``jitter`` (a fraction, 0.1 = +/-10%).
    Exceptions of a ``non_retryable`` type, or for which ``retry_if`` returns
    False, fail the step at once.
    """

    max_attempts: int = field(default=3, check=integer(ge=1))
    initial_interval: float = field(default=1.0, check=number(ge=0))
    backoff: float = field(default=2.0, check=number(ge=1))
    max_interval: float = field(default=60.0, check=number(ge=0))
    jitter: float = field(default=0.1, check=number(ge=0, le=1))
    non_retryable: tuple[type[BaseException], ...] = field(
        default=(), check=items(exception_type(), "exception classes")
    )
    retry_if: Callable[[BaseException], bool] | None = field(
        default=None, check=optional(a_function())
    )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        try:
            base = min(self.initial_interval * self.backoff ** (attempt - 1), self.max_interval)
        except OverflowError:  # a very late attempt: the cap applies
            base = self.max_interval
        spread = base * self.jitter
        if rng is None:
            import random  # loaded by the first retry, not by every run

            return max(0.0, base + random.uniform(-spread, spread))
        return max(0.0, base + rng.uniform(-spread, spread))

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether failed attempt number `attempt` with `exc` gets another attempt."""
        if attempt >= self.max_attempts or isinstance(exc, self.non_retryable):
            return False
        return self.retry_if is None or bool(self.retry_if(exc))


NO_RETRY = Retry(max_attempts=1)


def _retries(value: Any) -> Retry:
    """A number of retries after the first attempt, a `Retry`, or a table of its fields."""
    if isinstance(value, bool):
        raise Invalid("takes a number of retries or a Retry policy, not a bool")
    if isinstance(value, int):
        if value < 0:
            raise Invalid("must be >= 0")
        return Retry(max_attempts=value + 1)
    policy: Retry = record(Retry)(value)
    return policy


_RETRIES = Check(_retries)


class CallOptions(Record):
    """Options of a step or workflow call.

    ``retries`` takes a `Retry` policy or an int (the number of retries after the
    first attempt, with the default backoff). ``timeout`` is in seconds, per
    attempt. ``name`` names the step in the history. ``workflow_id`` sets the id
    of the next workflow started in its scope, and ``workflow_timeout`` (seconds)
    its deadline: a workflow that has not ended by then is cancelled.
    ``overlap=True`` lets the retry of a sync step that timed out start while the
    abandoned attempt still runs (by default it waits for that attempt to end).
    """

    retries: Retry | None = field(default=None, check=optional(_RETRIES))
    timeout: float | None = field(default=None, check=optional(number(gt=0)))
    name: str | None = field(default=None, check=optional(text(min_length=1)))
    workflow_id: str | None = field(
        default=None, check=optional(text(min_length=1, max_length=512))
    )
    workflow_timeout: float | None = field(default=None, check=optional(number(gt=0)))
    unrecordable: Literal["error", "rerun"] | None = field(
        default=None, check=optional(one_of("error", "rerun"))
    )
    # With a timeout on a sync step: whether a retry may start while the attempt
    # that timed out still runs (by default it waits for that attempt to end).
    overlap: bool | None = field(default=None, check=optional(flag()))

    def merged(self, over: CallOptions | None) -> CallOptions:
        """Return these options overridden by the fields `over` sets explicitly."""
        if over is None or not over.fields_set:
            return self
        if not self.fields_set:
            return over
        values = {name: getattr(self, name) for name in self.fields_set}
        values.update({name: getattr(over, name) for name in over.fields_set})
        return CallOptions.trusted(values, values)

    @property
    def retry_policy(self) -> Retry:
        """The effective retry policy (no retries when unset)."""
        return self.retries or NO_RETRY


EMPTY = CallOptions()


def make_options(where: str, **values: Any) -> CallOptions:
    """Build checked `CallOptions`, raising `ConfigError` that says where they came from."""
    try:
        return CallOptions(**values)
    except InvalidFields as exc:
        raise ConfigError(exc.describe(where)) from None


# The per-call layer: set by `options(...)`, read by every step and workflow call.
_call_options: contextvars.ContextVar[CallOptions | None] = contextvars.ContextVar(
    "autodurable_call_options", default=None
)


def current_call_options() -> CallOptions | None:
    """The per-call options active in this context, if any."""
    return _call_options.get()


@contextlib.contextmanager
def call_options_scope(opts: CallOptions | None) -> Iterator[None]:
    """Make `opts` the per-call layer for the duration of the block."""
    token = _call_options.set(opts)
    try:
        yield
    finally:
        _call_options.reset(token)


class _OptionsScope:
    """What `options(...)` returns: a context manager, or a wrapper of one callable."""

    def __init__(self, fn: Callable[..., Any] | None, opts: CallOptions) -> None:
        self._fn = fn
        self._opts = opts
        # Tokens per thread: one scope object may be entered from several threads.
        self._tokens = threading.local()

    def _layered(self) -> CallOptions:
        outer = _call_options.get()
        return outer.merged(self._opts) if outer else self._opts

    def __enter__(self) -> CallOptions:
        stack = self._tokens.__dict__.setdefault("stack", [])
        stack.append(_call_options.set(self._layered()))
        return self._opts

    def __exit__(self, *exc_info: object) -> None:
        _call_options.reset(self._tokens.stack.pop())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._fn is None:
            raise TypeError(
                "options(...) without a function is a context manager: use "
                "'with autodurable.options(...):' or 'autodurable.options(fn, ...)(args)'"
            )
        # Decorated steps and workflows resolve their options when called, before
        # an async body starts, so the scope can end as soon as the call returns.
        with call_options_scope(self._layered()):
            return self._fn(*args, **kwargs)

    @property
    def __wrapped__(self) -> Callable[..., Any] | None:
        return self._fn


F = TypeVar("F", bound=Callable[..., Any])
UnrecordablePolicy = Literal["error", "rerun"]


@overload
def options(
    fn: F,
    /,
    *,
    retries: int | Retry | None = ...,
    timeout: float | None = ...,
    name: str | None = ...,
    workflow_id: str | None = ...,
    workflow_timeout: float | None = ...,
    unrecordable: UnrecordablePolicy | None = ...,
    overlap: bool | None = ...,
) -> F: ...
@overload
def options(
    fn: None = None,
    /,
    *,
    retries: int | Retry | None = ...,
    timeout: float | None = ...,
    name: str | None = ...,
    workflow_id: str | None = ...,
    workflow_timeout: float | None = ...,
    unrecordable: UnrecordablePolicy | None = ...,
    overlap: bool | None = ...,
) -> contextlib.AbstractContextManager[None]: ...
def options(fn: Callable[..., Any] | None = None, /, **values: Any) -> Any:
    """Per-call options, the highest-priority layer.

    As a context manager, for every step and workflow called in the block::

        with autodurable.options(retries=5, timeout=10):
            charge(order)

    As a wrapper of one call::

        autodurable.options(charge, retries=5, timeout=10)(order)
        autodurable.options(checkout, workflow_id="order-42")(cart)
    """
    opts = make_options("options", **values)
    if fn is not None and not callable(fn):
        raise TypeError(f"options() takes a function to wrap, not {type(fn).__name__}")
    return _OptionsScope(fn, opts)
