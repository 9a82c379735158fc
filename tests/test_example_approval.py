"""The approval example (examples/approval/), killed while it waits, on both stores.

The refund service runs as a real process. A refund large enough to need a
person waits for the approval; the service is SIGKILLed while it waits and
started again; the approval is sent with the command line (and once more by
a webhook retry with the same idempotency key). The refund must finish once:
one payment in the ledger, one email, every step recorded once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autodurable._core._runtime import get_runtime
from autodurable._store import PENDING, SUCCEEDED, WAITING

from .helpers import ROOT, child_env, serving, wait_until

EXAMPLE = ROOT / "examples" / "approval"
REFUND = "refund-o-1002"
PATIENT = {"timeout": 60.0, "interval": 0.05}  # the example runs real child processes


@contextmanager
def service(folder: Path, url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The refund service on a free port: (its URL, its process); killed afterwards."""
    with (folder / "service.log").open("a") as log:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "service.py"), "--port", "0"],
            cwd=folder,
            env=child_env(AUTODURABLE_DATABASE_URL=url, REFUNDS_DATA=str(folder / "data")),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    with serving(process) as base:
        yield base, process


def call(base: str, path: str, body: Any = None, **headers: str) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_refund_waits_for_approval_across_a_sigkill_and_finishes_once(database, tmp_path):
    store = get_runtime().store
    with service(tmp_path, database) as (base, first):
        started = call(base, "/refunds", {"order_id": "o-1002", "reason": "too small"})
        assert started == {"workflow_id": REFUND}
        wait_until(
            lambda: call(base, f"/refunds/{REFUND}")["step"] == "waiting for approval", **PATIENT
        )
        proposal = call(base, f"/refunds/{REFUND}")["proposal"]
        assert proposal["cents"] == 10_320  # 80% of 129.00: above the policy's limit
        (waiting,) = [s for s in store.list_steps(REFUND) if s.status == WAITING]
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    assert store.get_workflow(REFUND).status == PENDING
    assert lines(tmp_path / "data" / "ledger.jsonl") == []

    with service(tmp_path, database) as (base, _second):
        # The restarted service resumed the refund at start-up: it waits again.
        wait_until(lambda: store.get_workflow(REFUND).executor_id is not None, **PATIENT)
        sent = subprocess.run(
            [sys.executable, "-m", "autodurable", "send", REFUND,
             '{"approved": true, "by": "ann"}', "--topic", "approval",
             "--idempotency-key", "ticket-77"],
            cwd=tmp_path, env=child_env(AUTODURABLE_DATABASE_URL=database),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == f"sent to {REFUND} on topic 'approval'"
        retried = call(base, f"/refunds/{REFUND}/approval", {"approved": True, "by": "ann"},
                       **{"Idempotency-Key": "ticket-77"})  # fmt: skip
        assert retried == {"workflow_id": REFUND, "sent": False}  # a webhook retry: not again
        wait_until(lambda: call(base, f"/refunds/{REFUND}")["status"] == SUCCEEDED, **PATIENT)
        result = call(base, f"/refunds/{REFUND}")["result"]
    assert result["outcome"] == "refunded" and result["decision"] == {"approved": True, "by": "ann"}
    assert [entry["cents"] for entry in lines(tmp_path / "data" / "ledger.jsonl")] == [10_320]
    assert len(lines(tmp_path / "data" / "outbox.jsonl")) == 1
    steps = store.list_steps(REFUND)
    assert [s.attempts for s in steps] == [1] * len(steps)
    (received,) = [s for s in steps if s.name == "autodurable.recv:approval"]
    assert received.status == SUCCEEDED and received.started_at == waiting.started_at
    assert received.executor_id != waiting.executor_id  # received by the restarted service
    assert len(store.list_messages(REFUND)) == 1


def test_small_refunds_are_approved_by_policy_from_the_command_line(tmp_path):
    env = child_env(REFUNDS_DATA=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "refunds.py"), "o-1001", "arrived broken"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["outcome"], result["cents"]) == ("refunded", 1_500)
    assert result["decision"] == {"approved": True, "by": "policy"}
    shown = subprocess.run(
        [sys.executable, "-m", "autodurable", "workflows", "show", "refund-o-1001", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    info = json.loads(shown.stdout)
    assert info["name"] == "refunds:refund_request" and info["events"]["status"] == "refunded"
