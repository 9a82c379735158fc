"""`proxy(obj, **options)`: every method call on a client object becomes a step.

Invariants:
- The proxy is a wrapt ``ObjectProxy``: ``isinstance``, attribute reads, ``repr``
  and equality behave as on the wrapped object. Its own state lives in
  ``_self_``-prefixed attributes, never on the wrapped object.
- Public callable attributes become steps named ``Type.method`` (nested clients
  too: ``client.charges.create`` is the step ``Client.charges.create``) carrying
  the proxy's options, which rank above decorator options and below per-call ones.
- Private attributes (leading underscore), classes and plain data pass through
  unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import uuid
from typing import TYPE_CHECKING, Any

import wrapt

from ._options import CallOptions, current_call_options, make_options
from ._runtime import get_runtime
from ._steps import call_step, call_step_async

_PLAIN = (
    str,
    bytes,
    bytearray,
    int,
    float,
    complex,
    bool,
    type(None),
    list,
    tuple,
    dict,
    set,
    frozenset,
    dt.date,
    dt.time,
    dt.timedelta,
    decimal.Decimal,
    uuid.UUID,
)


if TYPE_CHECKING:  # wrapt's C class cannot be subscripted at run time
    _ObjectProxy = wrapt.ObjectProxy[Any]
else:
    _ObjectProxy = wrapt.ObjectProxy


class DurableProxy(_ObjectProxy):
    """A client whose method calls are recorded steps."""

    def __init__(self, wrapped: Any, options: CallOptions, path: str) -> None:
        super().__init__(wrapped)
        self._self_options = options
        self._self_path = path

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        if name.startswith("_") or isinstance(value, (type, _PLAIN)):
            return value
        path = f"{self._self_path}.{name}"
        if callable(value):
            return _step_caller(value, path, self._self_options)
        return DurableProxy(value, self._self_options, path)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _step_caller(self.__wrapped__, self._self_path, self._self_options)(*args, **kwargs)

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError("a durable proxy cannot be pickled; pickle the wrapped object instead")


def _step_caller(method: Any, name: str, opts: CallOptions) -> Any:
    is_async = inspect.iscoroutinefunction(method)

    def call(*args: Any, **kwargs: Any) -> Any:
        merged = get_runtime().step_defaults.merged(opts).merged(current_call_options())
        step_name = merged.name or name
        if is_async:
            return call_step_async(method, args, kwargs, step_name, merged)
        return call_step(method, args, kwargs, step_name, merged)

    call.__name__ = name.rpartition(".")[2]
    call.__qualname__ = name
    call.__doc__ = getattr(method, "__doc__", None)
    return call


def proxy(obj: Any, /, **options: Any) -> Any:
    """Wrap a client so that each method call on it is a step with these options.

    ``payments = autodurable.proxy(PaymentClient(url), retries=3, timeout=5)``;
    then ``payments.charge(...)`` in a workflow is recorded as the step
    ``PaymentClient.charge`` and retried and timed out as configured.
    """
    opts = make_options("proxy options", **options)
    path = opts.name or type(obj).__name__
    # The name is the prefix of the step names, not the name of every step.
    return DurableProxy(obj, opts.replace(name=None), path)
