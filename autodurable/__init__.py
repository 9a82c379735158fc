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
people and webhooks with ``send`` / ``recv`` and ``set_event`` / ``get_event``.

The public API is exactly `__all__`; everything else is private.
"""

from ._decorators import step, workflow
from ._durable import idempotency_key, now, random, sleep, sleep_async, uuid4, workflow_id
from ._errors import (
    AutodurableError,
    ConfigError,
    EncodeError,
    NondeterminismError,
    StepTimeoutError,
    StoreError,
    WorkflowCancelled,
    WorkflowNotFound,
)
from ._handle import WorkflowHandle, get_workflow, start
from ._messages import get_event, recv, recv_async, send, set_event
from ._operations import StepInfo, WorkflowInfo, delete_workflows, list_workflows
from ._options import Options, Retry, options
from ._proxy import proxy
from ._recovery import RecoveryReport, recover
from ._runtime import configure

__version__ = "0.1.0"

__all__ = [
    "AutodurableError",
    "ConfigError",
    "EncodeError",
    "NondeterminismError",
    "Options",
    "RecoveryReport",
    "Retry",
    "StepInfo",
    "StepTimeoutError",
    "StoreError",
    "WorkflowCancelled",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowNotFound",
    "configure",
    "delete_workflows",
    "get_event",
    "get_workflow",
    "idempotency_key",
    "list_workflows",
    "now",
    "options",
    "proxy",
    "random",
    "recover",
    "recv",
    "recv_async",
    "send",
    "set_event",
    "sleep",
    "sleep_async",
    "start",
    "step",
    "uuid4",
    "workflow",
    "workflow_id",
]
