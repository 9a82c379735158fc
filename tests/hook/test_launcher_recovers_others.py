"""`autodurable run` resumes what other processes left unfinished, and skips recovery
when a glance at the store finds nothing it could resume."""

from __future__ import annotations

import threading

import pytest

import autodurable
from autodurable._control._operations import start_pending
from autodurable._core._runtime import get_runtime
from autodurable._hook import _launcher

from ..helpers import workflow

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")


@autodurable.workflow
def doubled(n: int) -> int:
    return n * 2


def _started_by(runtime: object) -> list[threading.Thread]:
    """The recovery threads `_recover_others` starts (counted as they start: one that
    finds nothing to do may have ended before the call returns)."""
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        if thread.name == "autodurable-recover":
            started.append(thread)
        start(thread)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "start", counted)
        _launcher._recover_others(runtime)  # type: ignore[arg-type]
    return started


def test_nothing_but_program_runs_pending_starts_no_recovery():
    runtime = get_runtime()
    assert _started_by(runtime) == []  # an empty store
    # A killed run of another program: only its own command resumes it.
    runtime.store.create_workflow(workflow("run-other", None, "autodurable.run:/elsewhere/job.py"))
    assert [r.name for r in runtime.store.list_workflows(status="pending")] == [
        "autodurable.run:/elsewhere/job.py"
    ]
    assert _started_by(runtime) == []


def test_a_pending_workflow_of_another_process_is_resumed_in_the_background():
    runtime = get_runtime()
    info = start_pending(doubled, (21,), {}, workflow_id="left-behind")
    assert info.status == "pending"
    started = _started_by(runtime)
    assert len(started) == 1
    assert autodurable.get_workflow("left-behind").result(timeout=30) == 42


def test_many_pending_program_runs_still_start_recovery(monkeypatch):
    # The glance is bounded: past it, recovery looks at everything itself.
    monkeypatch.setattr(_launcher, "_GLANCE", 2)
    runtime = get_runtime()
    for n in range(2):
        runtime.store.create_workflow(
            workflow(f"run-{n}", None, f"autodurable.run:/elsewhere/job{n}.py")
        )
    assert len(_started_by(runtime)) == 1
