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
    WorkflowNotFound,
)
from ._handle import WorkflowHandle, get_workflow, start
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
    "StepTimeoutError",
    "StoreError",
    "WorkflowHandle",
    "WorkflowNotFound",
    "configure",
    "get_workflow",
    "idempotency_key",
    "now",
    "options",
    "proxy",
    "random",
    "recover",
    "sleep",
    "sleep_async",
    "start",
    "step",
    "uuid4",
    "workflow",
    "workflow_id",
]
