"""What the operations return: a workflow's and a step's record, readable without
the application's code.

Invariants:
- Reads never decode the application's values: inputs, outputs and step
  results are the recorded JSON, parsed (values the codec tags, such as
  tuples or datetimes, appear as their tagged objects), and exceptions are
  their type, message and traceback. So they work in the CLI, where the code
  is not importable.
- ``to_json`` gives the documented shape (docs/operating.md); keys are only
  ever added.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .._core._codec_values import decode_text
from .._errors import DecodeError
from .._store import FINISHED_STATUSES, StepRecord, WorkflowRecord
from ._registry import is_program_run

# The stored type name of a cancellation (rows keep it; `autodurable._errors` stays put).
CANCELLED_TYPE = "autodurable._errors:WorkflowCancelled"


def parse_recorded(text: str | None) -> Any:
    """Recorded JSON text, parsed (None stays None; damaged text is returned as it is)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_parts(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(type, message, traceback) of a recorded exception."""
    if not text:
        return None, None, None
    raw = parse_recorded(text)
    if not isinstance(raw, dict):
        return "unknown", str(raw), None
    kind, message = str(raw.get("c", "unknown")), _text(raw.get("m", ""))
    attributes = raw.get("d")
    if kind == CANCELLED_TYPE and isinstance(attributes, dict) and "reason" in attributes:
        message = _text(attributes["reason"])  # the reason alone: the id is known
    trace = raw.get("tb")
    return kind, message, _text(trace) if trace else None


def _text(raw: Any) -> str:
    """A recorded text field as a str (the codec tags one that holds a surrogate pair)."""
    with contextlib.suppress(DecodeError):
        raw = decode_text(raw)
    return str(raw)


def _error_json(kind: str | None, message: str | None, trace: str | None) -> Any:
    """The ``error`` of the ``--json`` forms: None, or its type, message and traceback."""
    if kind is None:
        return None
    return {"type": kind, "message": message, "traceback": trace}


@dataclass(frozen=True)
class WorkflowInfo:
    """What the store holds about one workflow (``autodurable workflows show``).

    ``inputs`` is ``{"args": [...], "kwargs": {...}}`` and ``output`` the return
    value, both the recorded JSON parsed (values the codec tags, such as
    tuples or datetimes, are their tagged objects). ``error_type`` is the
    exception's ``"module:qualname"``; a cancelled workflow has
    ``autodurable._errors:WorkflowCancelled`` and the reason as its message.
    Times are seconds since the epoch.
    """

    workflow_id: str
    name: str
    status: str
    inputs: Any
    output: Any
    error_type: str | None
    error_message: str | None
    traceback: str | None
    executor_id: str | None
    app_version: str | None
    created_at: float
    updated_at: float
    deadline: float | None
    forked_from: str | None
    forked_at_step: int | None

    @classmethod
    def from_record(cls, record: WorkflowRecord) -> WorkflowInfo:
        """The info of a store row."""
        error_type, message, trace = _error_parts(record.error)
        return cls(
            workflow_id=record.workflow_id,
            name=record.name,
            status=record.status,
            inputs=parse_recorded(record.inputs),
            output=parse_recorded(record.output),
            error_type=error_type,
            error_message=message,
            traceback=trace,
            executor_id=record.executor_id,
            app_version=record.app_version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            deadline=record.deadline,
            forked_from=record.forked_from,
            forked_at_step=record.forked_at_step,
        )

    @property
    def ended_at(self) -> float | None:
        """When it succeeded, failed or was cancelled; None while pending."""
        return self.updated_at if self.status in FINISHED_STATUSES else None

    @property
    def duration(self) -> float:
        """Seconds from its start to its end (to now, while pending)."""
        end = self.ended_at if self.ended_at is not None else time.time()
        return max(0.0, end - self.created_at)

    @property
    def is_program_run(self) -> bool:
        """Whether it is a program run by ``autodurable run`` (resumed by its command)."""
        return is_program_run(self.name)

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` form (see docs/operating.md)."""
        error = _error_json(self.error_type, self.error_message, self.traceback)
        return {
            "workflow_id": self.workflow_id,
            "name": self.name,
            "status": self.status,
            "app_version": self.app_version,
            "executor_id": self.executor_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "ended_at": self.ended_at,
            "duration": round(self.duration, 6),
            "deadline": self.deadline,
            "forked_from": self.forked_from,
            "forked_at_step": self.forked_at_step,
            "inputs": self.inputs,
            "output": self.output,
            "error": error,
        }


@dataclass(frozen=True)
class StepInfo:
    """One recorded step of a workflow (``autodurable workflows steps``).

    ``status`` is succeeded, failed, retrying (attempts failed so far, more
    follow), unrecorded (ran, result not recordable), waiting (a `recv`
    waiting; ``output`` is its deadline) or timed_out (a `recv` that got no
    message). ``output`` is the recorded JSON, parsed.

    ``branch`` is ``""`` for a step of the workflow's own code, else the path
    of the work the workflow ran concurrently that called it (``"3"``: the work
    started at its position 3; ``"3.2"``: the work that one started at its
    position 2); ``position`` counts within the branch. ``place`` says both:
    ``"5"``, or ``"3.1"`` for the first step of branch ``"3"`` (the step's
    idempotency key is ``"<workflow id>:<place>"``).
    """

    position: int
    name: str
    status: str
    attempts: int
    started_at: float
    finished_at: float | None
    output: Any
    error_type: str | None
    error_message: str | None
    traceback: str | None
    executor_id: str | None
    branch: str

    @classmethod
    def from_record(cls, record: StepRecord) -> StepInfo:
        """The info of a store row."""
        error_type, message, trace = _error_parts(record.error)
        return cls(
            position=record.position,
            name=record.name,
            status=record.status,
            attempts=record.attempts,
            started_at=record.started_at,
            finished_at=record.finished_at,
            output=parse_recorded(record.output),
            error_type=error_type,
            error_message=message,
            traceback=trace,
            executor_id=record.executor_id,
            branch=record.branch,
        )

    @property
    def place(self) -> str:
        """Where it was called: ``"5"``, or ``"3.1"`` in branch ``"3"``."""
        return f"{self.branch}.{self.position}" if self.branch else str(self.position)

    @property
    def duration(self) -> float | None:
        """Seconds its last attempt took (None while a `recv` waits)."""
        if self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` form."""
        error = _error_json(self.error_type, self.error_message, self.traceback)
        duration = self.duration
        return {
            "position": self.position,
            "branch": self.branch,
            "place": self.place,
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": None if duration is None else round(duration, 6),
            "output": self.output,
            "error": error,
            "executor_id": self.executor_id,
        }
