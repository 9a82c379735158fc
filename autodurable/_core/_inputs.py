"""Checks of a workflow's inputs: the same ones when an id is continued, and which
one the codec refuses.

Invariants:
- A workflow id names one run: continuing it with inputs that neither encode
  nor decode to the recorded ones is an `AutodurableError` naming both.
- Finding the refused input encodes each argument alone and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import AutodurableError, EncodeError

if TYPE_CHECKING:
    from .._store import WorkflowRecord
    from ._runtime import Runtime


def unrecordable_input(
    runtime: Runtime, fn: Callable[..., Any], values: dict[str, Any]
) -> tuple[str | None, str]:
    """The parameter of `fn` whose argument in `values` (``{"args", "kwargs"}``) the
    codec refuses (None if unknown), and its type."""
    import inspect  # loaded when inputs cannot be recorded, not at every start

    code = getattr(inspect.unwrap(getattr(fn, "__func__", fn)), "__code__", None)
    names = list(code.co_varnames[: code.co_argcount]) if code is not None else []
    args = values["args"]
    if names and hasattr(fn, "__self__") and not (args and args[0] is fn.__self__):
        names = names[1:]  # a classmethod's class is not among the recorded arguments
    positional = [(names[i] if i < len(names) else None, value) for i, value in enumerate(args)]
    given = [*positional, *values["kwargs"].items()]
    for parameter, value in given:
        try:
            runtime.codec.encode(value, "an input")
        except EncodeError:
            kind = type(value)
            return parameter, f"{kind.__module__}.{kind.__qualname__}"
    return None, "value"


def check_same_inputs(
    runtime: Runtime, record: WorkflowRecord, inputs: str, values: dict[str, Any]
) -> None:
    """Refuse to continue a workflow id with other inputs than it was started with."""
    if record.inputs == inputs:
        return
    try:
        if runtime.codec.decode(record.inputs) == values:
            return  # equal values, encoded differently (set order, say)
    except Exception:  # undecodable or uncomparable: the encodings decide
        pass
    raise AutodurableError(
        f"workflow id {record.workflow_id!r} was started with other inputs "
        f"({_short(record.inputs)}) than this call ({_short(inputs)}). A workflow id names "
        "one run: use a new id for new inputs."
    )


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
