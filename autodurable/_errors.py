"""Exceptions raised by autodurable.

Invariants:
- Every error that comes from bad input says what is wrong and how to fix it.
- Control-flow signals (`NondeterminismError`, `OwnershipLost`,
  `WorkflowCancelled`) derive from `BaseException`, so user code that catches
  `Exception` cannot swallow them and a workflow interrupted by one stays
  resumable.
- Errors that are ours (`AutodurableError`) never mark a workflow as failed:
  they are bugs or environment problems to fix, after which the workflow resumes.
"""

from __future__ import annotations


class AutodurableError(Exception):
    """Base class of the errors autodurable raises for bad input or environment."""


class ConfigError(AutodurableError):
    """Invalid configuration or option values."""


class EncodeError(AutodurableError):
    """A value cannot be recorded by the codec."""


class DecodeError(AutodurableError):
    """A recorded value cannot be decoded (or decoding it would be unsafe)."""


class StoreError(AutodurableError):
    """The state database cannot be opened, read or written."""


class WorkflowNotFound(AutodurableError):
    """No workflow with the given id exists in the store."""


class StepTimeoutError(TimeoutError):
    """A step attempt exceeded its timeout.

    An outcome of the step like any exception it raises (so not an
    `AutodurableError`): retried per the step's policy, with the same
    idempotency key, and recorded when final.
    """


class StepError(Exception):
    """A recorded step or workflow exception whose type could not be re-created.

    Raised on replay when the original exception class no longer imports; it
    carries the original type name and message.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


class NondeterminismError(BaseException):
    """The workflow code no longer calls the steps its recorded history says.

    Either another step is recorded at this place, or a step of the same name from
    another module (`module` then names the current one's), or the same step
    called with other arguments (`arguments` then holds the recorded digest and
    the current one): its recorded result belongs to another call.

    Derives from BaseException on purpose: `except Exception` in workflow code
    must not hide it, and the workflow is left unfinished so that it can be
    resumed by the code that started it. `position` is the step's place: its
    position in the workflow's own code, or ``"P.k"`` in work the workflow runs
    concurrently (step k of the branch started at its position P).
    """

    def __init__(
        self,
        workflow_id: str,
        position: int | str,
        recorded: str,
        current: str,
        *,
        arguments: tuple[str, str] | None = None,
        module: str | None = None,
    ) -> None:
        if module is not None:
            message = (
                f"workflow {workflow_id!r}, step {position}: step {current!r} here was "
                f"recorded from a function of that name in another module than {module!r}, "
                "whose step the code calls now, so its recorded result is not this call's. "
                "The workflow's code changed since it started; finish it with the old code, "
                "or start it again under a new workflow id."
            )
        elif arguments is None:
            message = (
                f"workflow {workflow_id!r}, step {position}: the recorded history has step "
                f"{recorded!r} here but the code now calls {current!r}. The workflow's code "
                "changed since it started; finish it with the old code, or start it again "
                "under a new workflow id."
            )
        else:
            message = (
                f"workflow {workflow_id!r}, step {position}: step {current!r} was recorded "
                "here called with other arguments than the code now calls it with (argument "
                f"digest {arguments[0]} recorded, {arguments[1]} now), so its recorded result "
                "is not this call's. The workflow's code or what it computes its arguments "
                "from changed since it started; finish it with the old code and inputs, or "
                "start it again under a new workflow id."
            )
        super().__init__(message)
        self.workflow_id = workflow_id
        self.position = position
        self.recorded = recorded
        self.current = current
        # (recorded digest, current digest) when the step is the same but its
        # arguments differ; None when the recorded step is another one.
        self.arguments = arguments
        # The current step's module when the recorded one, of the same name, was
        # another module's.
        self.module = module


class OwnershipLost(BaseException):
    """Another executor adopted this workflow; this executor must stop running it."""


class Interrupted(BaseException):
    """The process is exiting while the workflow waits (in `recv` or `sleep`).

    The workflow stops waiting and is released, pending: another executor, or
    this program started again, resumes it and waits for the rest of the time.
    """


class WorkflowCancelled(BaseException):
    """The workflow was cancelled: by an operator, or because its deadline passed.

    Raised inside the workflow at its next step boundary (a step finishing, a
    `recv` or `sleep` waiting), so that it stops there with its finished steps
    recorded, and to every caller waiting for its result. A BaseException on
    purpose: `except Exception` in workflow code must not keep a cancelled
    workflow running. The workflow stays cancelled until it is resumed
    (``autodurable.get_workflow(id).resume()`` or ``autodurable workflows resume``).
    """

    def __init__(self, workflow_id: str, reason: str = "cancelled") -> None:
        super().__init__(workflow_id, reason)
        self.workflow_id = workflow_id
        self.reason = reason

    def __str__(self) -> str:
        return f"workflow {self.workflow_id!r} was cancelled: {self.reason}"
