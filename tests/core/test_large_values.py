"""Large values out of line, on both stores: a 50 MB step result round-trips (first
run and replay after a crash, the step not run again) while its row holds a small
reference; large inputs, outputs and messages too; a missing value is a clear
error that leaves the workflow pending; a value above the limit is refused."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

import autodurable
from autodurable._core._runtime import get_runtime
from autodurable._errors import DecodeError, EncodeError

from ..helpers import Crash, crash_points, maybe_crash, run_workflow

pytestmark = pytest.mark.usefixtures("database")

ran: Counter[str] = Counter()
BIG = 50 * 1024 * 1024


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()


@autodurable.step
def transcript(n: int) -> bytes:
    ran["transcript"] += 1
    return os.urandom(16) * (n // 16)


@autodurable.step
def summary(data: bytes) -> dict[str, int]:
    ran["summary"] += 1
    return {"size": len(data), "first": data[0]}


@autodurable.workflow
def digest_transcript(n: int) -> dict[str, object]:
    data = transcript(n)
    maybe_crash("after transcript")
    return {"summary": summary(data), "tail": data[-3:]}


def rows_of(workflow_id: str) -> list[tuple[str, int]]:
    """(step name, length of its recorded output) as the store holds them."""
    steps = get_runtime().store.list_steps(workflow_id)
    return [(s.name, len(s.output or "")) for s in steps]


def test_a_50_mb_result_round_trips_through_a_crash_and_its_row_stays_small() -> None:
    crash_points.add("after transcript")
    with pytest.raises(Crash):
        run_workflow(digest_transcript, "big", BIG)
    crash_points.clear()
    assert ran == Counter({"transcript": 1})
    [(name, size)] = rows_of("big")
    assert name == "transcript" and size < 200  # a reference, not 67 MB of base64
    result = run_workflow(digest_transcript, "big", BIG)  # resumed: replayed from the record
    assert ran == Counter({"transcript": 1, "summary": 1})  # not run again
    assert result["summary"]["size"] == BIG
    record = get_runtime().store.get_workflow("big")
    assert record is not None and record.output is not None and len(record.output) < 1000


@autodurable.workflow
def echo(blob: str) -> str:
    got = autodurable.recv("more", timeout=10)
    return blob[:5] + (got or "")[-5:]


def test_large_inputs_outputs_and_messages_go_out_of_line_too() -> None:
    blob = "x" * (2 * 1024 * 1024)
    handle = autodurable.start(autodurable.options(echo, workflow_id="echo"), blob)
    autodurable.send("echo", "y" * (1024 * 1024) + "tail!", topic="more")
    assert handle.result(timeout=30) == "xxxxxtail!"
    store = get_runtime().store
    record = store.get_workflow("echo")
    assert record is not None and len(record.inputs) < 200
    assert all(len(m.payload or "") < 200 for m in store.list_messages("echo"))


def test_a_missing_large_value_is_a_clear_error_and_the_workflow_stays_pending() -> None:
    crash_points.add("after transcript")
    with pytest.raises(Crash):
        run_workflow(digest_transcript, "lost", 1024 * 1024)
    crash_points.clear()
    store = get_runtime().store
    [step] = store.list_steps("lost")
    digest = step.output.split('"digest":"')[1][:64]  # type: ignore[union-attr]
    folder = getattr(store, "path", None)
    if folder is not None:
        Path(folder + "-values", digest).unlink()
    else:
        store._run("test", lambda c: c.execute(  # type: ignore[attr-defined]
            f'DELETE FROM "{store.schema}".large_values WHERE digest = %s', (digest,)))  # type: ignore[attr-defined]  # fmt: skip
    with pytest.raises(DecodeError, match=r"the large value .* is missing .*restore it"):
        run_workflow(digest_transcript, "lost", 1024 * 1024)
    record = store.get_workflow("lost")
    assert record is not None and record.status == "pending"
    assert ran == Counter({"transcript": 1})


def test_the_bounds_are_settings_and_a_value_above_the_limit_is_refused(tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.autodurable]\nlarge_value_threshold = 4096\nlarge_value_limit = 1048576\n"
    )
    url = get_runtime().settings.database_url
    autodurable.configure(database_url=url)
    assert run_workflow(digest_transcript, "medium", 64 * 1024)["summary"]["size"] == 64 * 1024
    [(_, size)] = rows_of("medium")[:1]
    assert size < 200  # 64 KiB is above this project's threshold
    with pytest.raises(EncodeError, match=r"above the limit of 1,048,576; return a smaller"):
        run_workflow(digest_transcript, "huge", 2 * 1024 * 1024)
    (tmp_path / "pyproject.toml").write_text("[tool.autodurable]\nlarge_value_threshold = 10\n")
    with pytest.raises(autodurable.ConfigError, match="large_value_threshold"):
        autodurable.configure(database_url=url)
