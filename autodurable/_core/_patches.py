"""Patches: changing workflow code while workflows recorded by the old code are running.

    if autodurable.patched("send-sms"):
        send_sms(order)          # the new code
    else:
        send_email(order)        # what workflows recorded before the change did

Invariants:
- `patched(id)` in workflow code is True for an execution that reaches it
  anew (not replaying), and then records a marker step named ``patch:<id>``
  at that position; a replay finds that marker and is True again. A replay of
  a history recorded before the patch existed finds another step (or nothing
  recorded but the record goes on) at that position: False, and no position
  is taken, so the old branch replays exactly as it was recorded.
- `deprecate_patch(id)` is for when no workflow recorded before the patch is
  left: it consumes the marker where a history has one and records nothing,
  so code without the old branch replays both the histories with the marker
  and the new ones. Once those are gone too, the call can be removed.
- Outside workflow code both are plain: `patched` is True, `deprecate_patch`
  does nothing.
"""

from __future__ import annotations

from .._errors import AutodurableError
from ._context import Run, workflow_code
from ._options import EMPTY
from ._steps import call_step

_PREFIX = "patch:"


def _marker(patch_id: str) -> str:
    if not isinstance(patch_id, str) or not patch_id:
        raise AutodurableError(f"a patch id must be a non-empty string, not {patch_id!r}")
    return _PREFIX + patch_id


def _next_recorded(run: Run) -> tuple[bool, str | None]:
    """(whether the record goes on past the next position, the name recorded there)."""
    position = run.position + 1
    found = run.history.get(position)
    later = found is not None or any(p > position for p in run.history)
    return later, found.name if found is not None else None


def patched(patch_id: str) -> bool:
    """In workflow code: True where the code with the patch runs, False where a workflow
    recorded before the patch replays (take the old branch then)."""
    marker = _marker(patch_id)
    run = workflow_code()
    if run is None:
        return True
    later, name = _next_recorded(run)
    if later and name != marker:
        return False  # recorded before the patch: the old code's step is next
    call_step(lambda: True, (), {}, marker, EMPTY)
    return True


def deprecate_patch(patch_id: str) -> None:
    """In workflow code: accept histories recorded with `patched(patch_id)`'s marker, and
    record none (for code from which the old branch was removed)."""
    marker = _marker(patch_id)
    run = workflow_code()
    if run is None:
        return
    _, name = _next_recorded(run)
    if name == marker:
        call_step(lambda: True, (), {}, marker, EMPTY)  # replays the marker: its position
