"""A workflow whose process is killed (SIGKILL) mid-run and resumed by a new process,
on both stores: the resumed execution's span links to the killed execution's span,
whose id a later process reads from the store."""

from __future__ import annotations

import json
import signal

import pytest

from ..helpers import child_env, run_python, write_script

pytestmark = pytest.mark.usefixtures("database")

PROGRAM = """
import json, os, signal
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
import autodurable


class ToFile(SpanExporter):
    # Each finished span as one JSON line: the parent reads them after the child died.
    def export(self, spans):
        with open("spans.jsonl", "a") as out:
            for s in spans:
                out.write(json.dumps({
                    "name": s.name,
                    "trace": f"{s.context.trace_id:032x}",
                    "span": f"{s.context.span_id:016x}",
                    "parent": f"{s.parent.span_id:016x}" if s.parent else None,
                    "links": [f"{l.context.span_id:016x}" for l in s.links],
                    "attributes": dict(s.attributes),
                    "events": [e.name for e in s.events],
                    "pid": os.getpid(),
                }) + "\\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ToFile()))
trace.set_tracer_provider(provider)


@autodurable.step
def work(i):
    if os.environ.get("KILL_AT") == str(i):
        os.kill(os.getpid(), signal.SIGKILL)  # dies in the body of step i
    return i


@autodurable.workflow
def job():
    return [work(i) for i in range(1, 4)]


print(autodurable.options(job, workflow_id="crashed")())
"""


def _spans(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "spans.jsonl").read_text().splitlines()]


def test_each_resume_in_a_new_process_links_to_the_span_of_the_execution_it_continues(
    tmp_path, database
):
    script = write_script(tmp_path, "prog.py", PROGRAM)
    env = child_env(AUTODURABLE_DATABASE_URL=database, AUTODURABLE_TELEMETRY="1")
    executions = []  # the span id of each killed execution, read from its steps' parent
    for kill_at in ("2", "3"):
        killed = run_python(script, env={**env, "KILL_AT": kill_at})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        # Only steps that ended before the kill were exported; their parent is the
        # span of the killed execution, which never ended.
        (last,) = [s for s in _spans(tmp_path) if s["pid"] == _last_pid(tmp_path)]
        assert last["name"] == "step work"
        assert last["attributes"]["autodurable.step.position"] == str(int(kill_at) - 1)
        executions.append(last["parent"])
    first_pids = {s["pid"] for s in _spans(tmp_path)}
    resumed = run_python(script, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "[1, 2, 3]"
    after = [s for s in _spans(tmp_path) if s["pid"] not in first_pids]
    (workflow,) = [s for s in after if s["name"] == "workflow job"]
    assert workflow["links"] == [executions[1]]  # the one it continues, not the first
    assert workflow["attributes"]["autodurable.workflow.resumed"] is True
    assert workflow["attributes"]["autodurable.workflow.status"] == "succeeded"
    assert workflow["events"] == ["replayed work", "replayed work"]
    (step,) = [s for s in after if s["name"] == "step work"]
    assert step["attributes"]["autodurable.step.position"] == "3"
    assert step["parent"] == workflow["span"]


def _last_pid(folder) -> int:
    return _spans(folder)[-1]["pid"]
