"""autodurable: crash-proof Python programs.

Decorate functions that talk to the outside world with `step` and the functions
that call them with `workflow`; kill the process at any point, run it again, and
it resumes where it was: finished steps are replayed from the record, not re-run.

    import autodurable

    @autodurable.step(retries=3)
    def charge(order_id, amount, key): ...

    @autodurable.workflow
    def checkout(order_id, amount):
        return charge(order_id, amount, autodurable.idempotency_key())

    autodurable.options(checkout, workflow_id="order-42")("order-42", 990)

Operate them from code (``autodurable.list_workflows()``,
``autodurable.get_workflow(id).cancel()`` / ``.resume()`` / ``.fork(step)``) or
from the command line (``autodurable workflows --help``), and let them wait for
people and webhooks with ``send`` / ``recv`` and ``set_event`` / ``get_event``, and
stream their progress to readers anywhere with ``write_stream`` / ``read_stream``.

The public API is exactly `__all__`; everything else is private.
"""

import importlib
import warnings
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from . import _wiring

if _TYPE_CHECKING:
    from ._control._handle import WorkflowHandle, get_workflow, start
    from ._control._info import StepInfo, WorkflowInfo
    from ._control._operations import delete_workflows, list_workflows
    from ._control._queues import DuplicateWorkflow, Queue, debounce
    from ._control._queues import map_workflows as map
    from ._control._recovery import recover
    from ._control._recovery_report import RecoveryReport, Unrecoverable
    from ._control._schedules import schedule
    from ._core._clocks import idempotency_key, now, random, sleep, sleep_async, uuid4, workflow_id
    from ._core._decorators import step, watched, workflow
    from ._core._messages import get_event, get_event_async, recv, recv_async, send, set_event
    from ._core._options import CallOptions, Retry, options
    from ._core._patches import deprecate_patch, patched
    from ._core._proxy import proxy
    from ._core._runtime import configure
    from ._core._streams import close_stream, read_stream, read_stream_async, write_stream
    from ._errors import (
        AutodurableError,
        ConfigError,
        EncodeError,
        NondeterminismError,
        StepError,
        StepTimeoutError,
        StoreError,
        WorkflowCancelled,
        WorkflowNotFound,
    )
    from ._store import WorkflowStatus

    Options = CallOptions  # deprecated: the old name of CallOptions

__version__ = "0.1.0"

__all__ = [
    "AutodurableError",
    "CallOptions",
    "ConfigError",
    "DuplicateWorkflow",
    "EncodeError",
    "NondeterminismError",
    "Queue",
    "RecoveryReport",
    "Retry",
    "StepError",
    "StepInfo",
    "StepTimeoutError",
    "StoreError",
    "Unrecoverable",
    "WorkflowCancelled",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowNotFound",
    "WorkflowStatus",
    "close_stream",
    "configure",
    "debounce",
    "delete_workflows",
    "deprecate_patch",
    "get_event",
    "get_event_async",
    "get_workflow",
    "idempotency_key",
    "list_workflows",
    "map",
    "now",
    "options",
    "patched",
    "proxy",
    "random",
    "read_stream",
    "read_stream_async",
    "recover",
    "recv",
    "recv_async",
    "schedule",
    "send",
    "set_event",
    "sleep",
    "sleep_async",
    "start",
    "step",
    "uuid4",
    "watched",
    "workflow",
    "workflow_id",
    "write_stream",
]

# Where each public name lives. Names are imported on first use (PEP 562), so
# `import autodurable` (which code rewritten by the codemod does) costs next to
# nothing until the program uses durability; the first use loads the runtime.
_HOME = {
    "step": "_core._decorators",
    "watched": "_core._decorators",
    "workflow": "_core._decorators",
    **dict.fromkeys(
        ("idempotency_key", "now", "random", "sleep", "sleep_async", "uuid4", "workflow_id"),
        "_core._clocks",
    ),
    **dict.fromkeys(
        (
            "AutodurableError",
            "ConfigError",
            "EncodeError",
            "NondeterminismError",
            "StepError",
            "StepTimeoutError",
            "StoreError",
            "WorkflowCancelled",
            "WorkflowNotFound",
        ),
        "_errors",
    ),
    **dict.fromkeys(("WorkflowHandle", "get_workflow", "start"), "_control._handle"),
    **dict.fromkeys(
        ("get_event", "get_event_async", "recv", "recv_async", "send", "set_event"),
        "_core._messages",
    ),
    **dict.fromkeys(("StepInfo", "WorkflowInfo"), "_control._info"),
    **dict.fromkeys(("delete_workflows", "list_workflows"), "_control._operations"),
    **dict.fromkeys(("CallOptions", "Retry", "options"), "_core._options"),
    "proxy": "_core._proxy",
    **dict.fromkeys(("deprecate_patch", "patched"), "_core._patches"),
    **dict.fromkeys(("DuplicateWorkflow", "Queue", "debounce"), "_control._queues"),
    "map": "_control._queues:map_workflows",  # not shadowing the builtin where defined
    **dict.fromkeys(("RecoveryReport", "Unrecoverable"), "_control._recovery_report"),
    "recover": "_control._recovery",
    "schedule": "_control._schedules",
    "WorkflowStatus": "_store",
    "configure": "_core._runtime",
    **dict.fromkeys(
        ("close_stream", "read_stream", "read_stream_async", "write_stream"), "_core._streams"
    ),
}


# Former public names: still importable, with a DeprecationWarning naming the new one.
_DEPRECATED = {"Options": "CallOptions"}


def __getattr__(name: str) -> _Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"autodurable.{name} is deprecated; use autodurable.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f"{__name__}.{_HOME[new]}"), new)
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = home.partition(":")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute or name)
    globals()[name] = value  # later uses find it directly
    return value


def _analysed_step_apis(module: str, qualname: str, step_name: str) -> tuple[str, ...]:
    """Which APIs a step calls, from one analysis of the project (see `_wiring`)."""
    apis = importlib.import_module(f"{__name__}._analysis._apis")  # loaded when first asked
    found: tuple[str, ...] = apis.project_step_apis(module, qualname, step_name)
    return found


def _unmatched_limit_keys(keys: list[str]) -> list[str]:
    """Warnings for limit keys that match no API (see `_wiring`)."""
    apis = importlib.import_module(f"{__name__}._analysis._apis")
    found: list[str] = apis.configured_unmatched_keys(keys)
    return found


# The runtime asks the analyser through these (it may not import it); the import
# hook replaces the first with its own plan's answers.
if _wiring.step_apis is None:
    _wiring.step_apis = _analysed_step_apis
    _wiring.unmatched_limit_keys = _unmatched_limit_keys


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
