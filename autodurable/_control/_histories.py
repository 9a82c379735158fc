"""A workflow's recorded history as a JSON document: exported from a store, read back.

    {"autodurable_history": 1,
     "workflow": {"workflow_id": ..., "name": ..., "status": ..., "inputs": "<JSON>", ...},
     "steps": [{"position": 1, "branch": "", "name": ..., "status": ..., "output": ...}, ...]}

Invariants:
- Reading a history decodes JSON and checks its shape; it imports and runs
  nothing (the values inside stay encoded text until a replay decodes them
  with the runtime's codec, under its usual rules).
- Anything that is not a history of this format is a `HistoryError` that names
  the file, what is wrong, and how to make one (``autodurable workflows export``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._core._runtime import get_runtime
from .._errors import AutodurableError, WorkflowNotFound
from .._store import StepRecord, WorkflowRecord

FORMAT = 1
_WORKFLOW_FIELDS = ("workflow_id", "name", "status", "inputs", "output", "error", "app_version")
_STEP_FIELDS = (
    "position", "name", "status", "output", "error", "attempts", "started_at", "finished_at",
)  # fmt: skip


class HistoryError(AutodurableError):
    """A file or document that is not a workflow history autodurable can replay."""


@dataclass(frozen=True)
class History:
    """One workflow's record: its row and its steps (in the order they were recorded)."""

    workflow: WorkflowRecord
    steps: tuple[StepRecord, ...]
    source: str = "<history>"  # the file it was read from, for messages

    @property
    def workflow_id(self) -> str:
        """The recorded workflow's id."""
        return self.workflow.workflow_id

    def to_json(self) -> dict[str, Any]:
        """The history as a JSON-ready document."""
        workflow = {name: getattr(self.workflow, name) for name in _WORKFLOW_FIELDS}
        workflow["created_at"] = self.workflow.created_at
        steps = [
            {
                **{name: getattr(step, name) for name in _STEP_FIELDS},
                "branch": step.branch,
                "arguments": step.arguments,
            }
            for step in self.steps
        ]
        return {"autodurable_history": FORMAT, "workflow": workflow, "steps": steps}


def export_history(workflow_id: str) -> History:
    """The recorded history of `workflow_id` in the configured store."""
    store = get_runtime().store
    record = store.get_workflow(workflow_id)
    if record is None:
        raise WorkflowNotFound(workflow_id)
    return History(record, tuple(store.list_steps(workflow_id)), f"workflow {workflow_id}")


def read_history(source: str | os.PathLike[str] | dict[str, Any]) -> History:
    """A history from a file written by ``autodurable workflows export`` (or its document)."""
    where = "the document" if isinstance(source, dict) else str(source)
    if isinstance(source, dict):
        document: Any = source
    else:
        try:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise HistoryError(f"{where}: cannot read it ({exc.strerror})") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise HistoryError(f"{where}: not JSON ({exc}); {_HOW}") from None
    if not isinstance(document, dict) or document.get("autodurable_history") != FORMAT:
        raise HistoryError(
            f"{where}: not an autodurable history (a JSON object with "
            f'"autodurable_history": {FORMAT}); {_HOW}'
        )
    try:
        return History(_workflow(document["workflow"]), _steps(document["steps"]), where)
    except (KeyError, TypeError, ValueError) as exc:
        raise HistoryError(f"{where}: a damaged history ({_said(exc)}); {_HOW}") from None


_HOW = "write one with `autodurable workflows export ID --output FILE`"


def _said(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


def _workflow(found: Any) -> WorkflowRecord:
    if not isinstance(found, dict):
        raise TypeError("'workflow' is not an object")
    for name in ("workflow_id", "name", "status", "inputs"):
        if not isinstance(found.get(name), str):
            raise ValueError(f"workflow.{name} is not a string")
    created = float(found.get("created_at") or 0.0)
    return WorkflowRecord(
        found["workflow_id"], found["name"], found["status"], found["inputs"],
        found.get("output"), found.get("error"), None, created, created, found.get("app_version"),
    )  # fmt: skip


def _steps(found: Any) -> tuple[StepRecord, ...]:
    if not isinstance(found, list):
        raise TypeError("'steps' is not a list")
    steps = []
    for index, step in enumerate(found, 1):
        if not isinstance(step, dict):
            raise TypeError(f"step {index} is not an object")
        if not isinstance(step.get("position"), int) or not isinstance(step.get("name"), str):
            raise ValueError(f"step {index} has no integer position or no name")
        started = float(step.get("started_at") or 0.0)
        record = StepRecord(
            step["position"], step["name"], str(step["status"]), step.get("output"),
            step.get("error"), int(step.get("attempts") or 1), started,
            step.get("finished_at"), None, str(step.get("branch") or ""), step.get("arguments"),
        )  # fmt: skip
        steps.append(record)
    return tuple(steps)
