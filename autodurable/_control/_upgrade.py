"""Workflows left waiting by a deploy: replayed against the new code, and moved to it
when they replay cleanly.

Invariants:
- Only unfinished workflows (pending or queued) recorded by another version
  of their code than the code here are looked at; those whose code cannot be
  found here, and programs run by ``autodurable run``, are reported and left.
- A workflow is moved (its recorded version set to the code's) only when its
  whole history replays on the code here without diverging (`replay_check`,
  which runs no step), and only if its version did not change meanwhile.
  With ``check=True`` nothing is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .._core._app_versions import version_for
from .._core._runtime import get_runtime
from .._errors import AutodurableError
from .._store import PENDING, QUEUED_STATUSES, WorkflowRecord
from ._histories import History, HistoryError
from ._registry import code_here, is_program_run
from ._replay import replay_check

_ALL = 1_000_000_000


@dataclass(frozen=True)
class Upgrade:
    """What became of one workflow of another version."""

    workflow_id: str
    name: str
    recorded_version: str | None
    code_version: str | None
    upgraded: bool
    why: str  # replays cleanly | the first divergence | why it was left

    def __str__(self) -> str:
        verb = "upgraded" if self.upgraded else "left"
        return (
            f"{self.workflow_id} ({self.name}): {verb}: version {self.recorded_version} -> "
            f"{self.code_version}: {self.why}"
        )


def upgrade_workflows(
    *, check: bool = False, workflow_ids: Collection[str] | None = None
) -> list[Upgrade]:
    """Replay each unfinished workflow recorded by another version of its code against
    the code here, and move those that replay cleanly to its version (with `check`,
    only say which would move). One `Upgrade` per workflow looked at."""
    runtime = get_runtime()
    store = runtime.store
    records = [
        record
        for record in store.list_workflows(status=[PENDING, *QUEUED_STATUSES], limit=_ALL)
        if workflow_ids is None or record.workflow_id in workflow_ids
    ]
    found = []
    for record in sorted(records, key=lambda r: (r.created_at, r.workflow_id)):
        outcome = _upgrade_one(record, check)
        if outcome is not None:
            found.append(outcome)
    return found


def _upgrade_one(record: WorkflowRecord, check: bool) -> Upgrade | None:
    runtime = get_runtime()
    if is_program_run(record.name):
        return None
    fn = code_here(record)
    if fn is None:
        return Upgrade(
            record.workflow_id, record.name, record.app_version, None, False,
            "its code is not importable here (import its module, or run this where it is)",
        )  # fmt: skip
    here = version_for(runtime.settings, fn)
    if here is None or record.app_version in (None, here):
        return None
    history = History(record, tuple(runtime.store.list_steps(record.workflow_id)))
    try:
        outcome = replay_check(history, workflow=fn)
    except (HistoryError, AutodurableError) as exc:
        return Upgrade(record.workflow_id, record.name, record.app_version, here, False, str(exc))
    if not outcome.ok:
        return Upgrade(
            record.workflow_id, record.name, record.app_version, here, False,
            f"does not replay on the code here: {outcome.divergence}",
        )  # fmt: skip
    moved = not check and runtime.store.set_workflow_version(
        record.workflow_id, here, record.app_version
    )
    why = "replays cleanly" + ("" if moved or check else " (but changed meanwhile: left)")
    return Upgrade(record.workflow_id, record.name, record.app_version, here, moved, why)
