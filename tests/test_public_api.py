"""The public API is exactly this list; changing it is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import autodurable

PUBLIC = [
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


def test_all_is_pinned():
    assert sorted(autodurable.__all__) == PUBLIC


def test_every_public_name_exists_and_is_documented():
    for name in autodurable.__all__:
        obj = getattr(autodurable, name)
        assert obj.__doc__, f"autodurable.{name} has no docstring"


def test_import_touches_no_database(tmp_path):
    code = "import autodurable, os; print(os.path.exists('.autodurable'))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
