"""``autodurable queues``, ``workflows list --queue`` and ``autodurable worker``'s bad
input, on both stores."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import autodurable

from ..helpers import child_env
from .test_cli_workflows import cli, cli_json

pytestmark = pytest.mark.usefixtures("database")


@autodurable.workflow
def noop(n: int) -> int:
    return n


def test_queues_list_and_show_say_how_each_queue_stands(capsys):
    emails = autodurable.Queue("cli-emails", concurrency=4, worker_concurrency=2, rate="60/min")
    tenants = autodurable.Queue("cli-tenants", concurrency=1, partitioned=True)
    for n in range(3):
        emails.enqueue(noop, n)
    emails.enqueue(noop, 9, delay=3600)
    tenants.enqueue(noop, 1, partition_key="acme")
    listed = cli_json(capsys, "queues", "list")["queues"]
    by_name = {q["name"]: q for q in listed}
    shown = by_name["cli-emails"]
    counts = [shown[key] for key in ("enqueued", "delayed", "running", "finished")]
    assert counts == [3, 1, 0, 0]
    assert (shown["concurrency"], shown["worker_concurrency"], shown["rate"]) == (4, 2, "60/60s")
    assert by_name["cli-tenants"]["partitioned"] is True
    assert shown["oldest_waiting"] <= time.time()
    status, out, _ = cli(capsys, "queues", "show", "cli-emails")
    assert status == 0 and "cli-emails" in out and "60/60s" in out
    status, _, err = cli(capsys, "queues", "show", "nope")
    assert status == 2 and err.startswith("autodurable: no queue named 'nope' (queues: ")
    rows = cli_json(capsys, "workflows", "list", "--queue", "cli-emails")["workflows"]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"enqueued", "delayed"}


def test_worker_refuses_a_module_it_cannot_import_in_one_line(tmp_path, database_url):
    done = subprocess.run(
        [sys.executable, "-m", "autodurable", "worker", "--import", "no_such_module_here"],
        cwd=tmp_path,
        env=child_env(AUTODURABLE_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("autodurable: cannot import 'no_such_module_here'")
    assert len(done.stderr.splitlines()) == 1


def test_a_worker_serving_an_unknown_queue_says_so(tmp_path, database_url):
    worker = subprocess.Popen(
        [sys.executable, "-m", "autodurable", "worker", "--queue", "emials"],
        cwd=tmp_path,
        env=child_env(AUTODURABLE_DATABASE_URL=database_url),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = worker.stderr.readline()
        status = worker.stderr.readline()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker.stderr.close()
    assert first.startswith("autodurable: no queue named 'emials' is declared (queues: ")
    assert "a typo? check --queue" in first
    assert status.startswith("autodurable: worker serving emials (state in ")
    assert worker.returncode == 0  # SIGTERM: a clean stop
