"""What a recovery pass did: the value `recover()` returns, and what the watcher and
the queue workers fill in as they go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._errors import WorkflowCancelled
from ._handle import WorkflowHandle


@dataclass(frozen=True)
class Unrecoverable:
    """A workflow recovery had to leave pending, and why."""

    workflow_id: str
    name: str
    reason: str


@dataclass
class RecoveryReport:
    """What `recover()` did: the workflows it resumed, those it could not, and
    those it left because another version of their code started them."""

    resumed: list[WorkflowHandle[Any]] = field(default_factory=list)
    unrecoverable: list[Unrecoverable] = field(default_factory=list)
    other_versions: list[Unrecoverable] = field(default_factory=list)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the resumed workflows; map each id to its result or exception."""
        outcomes: dict[str, Any] = {}
        for handle in self.resumed:
            try:
                outcomes[handle.workflow_id] = handle.result(timeout)
            except (Exception, WorkflowCancelled) as exc:
                outcomes[handle.workflow_id] = exc
        return outcomes

    def __str__(self) -> str:
        lines = [
            f"resumed {len(self.resumed)} workflow(s); "
            f"{len(self.unrecoverable)} could not be resumed"
            + (
                f"; {len(self.other_versions)} of other versions left pending"
                if self.other_versions
                else ""
            )
        ]
        lines += [f"  {u.workflow_id} ({u.name}): {u.reason}" for u in self.unrecoverable]
        lines += [f"  {u.workflow_id} ({u.name}): {u.reason}" for u in self.other_versions]
        return "\n".join(lines)
