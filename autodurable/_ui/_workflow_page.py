"""The page of one workflow: facts, actions, lineage, values, timeline, steps, messages.

Invariants:
- What it shows comes from the operations API (`workflow_info`: the recorded
  JSON parsed, exceptions as type, message and traceback) and from plain reads
  of the store (`DashboardReads`, messages, events); application values are
  never decoded, only parsed as JSON, then redacted, then cut to size.
- Steps are shown a page at a time (`UiOptions.step_page_size`), with the
  timeline of that page; a workflow with more steps than a page also gets an
  overview of all of them aggregated by time slice, so the page costs the same
  for 10 steps or 10,000.
- Actions are links to confirmation pages (`_actions`); none is offered in
  read-only mode, and none changes anything on a GET.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from .._control._info import StepInfo, WorkflowInfo, parse_recorded
from .._store import CANCELLED, FAILED, PENDING, QUEUED_STATUSES, SUCCEEDED, StepRecord
from .._store._dashboard import Execution
from .._store._rules import REWINDS_EVENT
from ._charts import RECV, SLEEP, Lane, nice_width, step_overview, timeline
from ._context import Ui
from ._html import (
    REDACTED,
    badge,
    cut,
    e,
    live,
    page,
    span,
    time_cell,
    url,
    value_block,
    when,
)

START_PREFIX = "autodurable.start:"  # a child's id, recorded by the code that started it
BATCH_PREFIX = "autodurable.enqueue_many:"  # the ids of a batch of children (map)
CHILDREN_SHOWN = 100
FLASHES = {
    "cancelled": "Cancelled. A running workflow stops at its next step boundary.",
    "unchanged": "Nothing changed: the workflow had ended already.",
    "resumed": "Resumed: it is pending again, for an executor that has its code.",
    "forked": "This workflow was just forked; an executor with its code runs it.",
    "sent": "Message sent.",
    "duplicate": "Not sent: a message with that idempotency key was sent before.",
}
TABLE_VALUE_CHARS = 2_000  # a step's value in the table; its own page shows more


def _root(step: StepInfo) -> int:
    return int(step.branch.split(".", 1)[0]) if step.branch else step.position


def render_workflow(ui: Ui, info: WorkflowInfo, params: Mapping[str, str], partial: bool) -> str:
    """The page of `info`'s workflow (or, with `partial`, its live region only)."""
    try:
        page_number = max(1, int(params.get("page", "1")))
    except ValueError:
        page_number = 1
    inner = _inner(ui, info, page_number)
    source = url("/workflow", id=info.workflow_id, page=page_number, partial=1)
    if partial:
        return inner
    flash = FLASHES.get(params.get("done", ""))
    note = f'<section class="card flash">{e(flash)}</section>' if flash else ""
    body = (
        f'<h1><span class="muted">workflow</span> {e(info.workflow_id)}</h1>'
        + note
        + live("workflow-live", source, inner)
    )
    options = ui.options
    return page(
        info.workflow_id,
        body,
        where=options.where,
        read_only=options.read_only,
        refresh=options.refresh,
    )


def _inner(ui: Ui, info: WorkflowInfo, page_number: int) -> str:
    now = time.time()
    reads = ui.reads()
    size = ui.options.step_page_size
    span_ = reads.step_span(info.workflow_id)
    pages = max(1, math.ceil(span_.count / size))
    page_number = min(page_number, pages)
    steps = [
        StepInfo.from_record(r)
        for r in reads.steps_page(info.workflow_id, size, (page_number - 1) * size)
    ]
    parts = [_facts(ui, info, span_.count, now), _actions(ui, info)]
    if info.error_type and info.status in (FAILED, CANCELLED):
        parts.append(_error(info))
    parts.append(_values(ui, info))
    parts.append(_lineage(ui, info))
    if span_.count > size and span_.first is not None and span_.last is not None:
        end = max(span_.last, span_.first + 1e-3)
        width = nice_width(end - span_.first, 60)
        start = math.floor(span_.first / width) * width
        buckets = max(1, math.ceil((end - start) / width) + 1)
        cells = reads.step_buckets(info.workflow_id, start, width, now)
        parts.append(
            f'<section class="card"><h2>All {span_.count:,} steps over time</h2>'
            f"{step_overview(cells, start, width, buckets)}</section>"
        )
    executions = reads.executions(info.workflow_id)
    runs = (
        {run.executor_id: n for n, run in enumerate(executions, 1)} if len(executions) > 1 else {}
    )
    parts.append(_executions(ui, executions, now))
    lanes = [_lane(step, info, runs.get(step.executor_id or "", 0)) for step in steps]
    first = (page_number - 1) * size + 1
    title = (
        f"Timeline of steps {first:,} to {first + len(steps) - 1:,}" if pages > 1 else "Timeline"
    )
    parts.append(f'<section class="card"><h2>{e(title)}</h2>{timeline(lanes, now)}</section>')
    parts.append(_steps_table(ui, info, steps, page_number, pages, now))
    parts.append(_messages_and_events(ui, info))
    return "".join(parts)


def _facts(ui: Ui, info: WorkflowInfo, step_count: int, now: float) -> str:
    rows = [
        ("Status", badge(info.status)),
        ("Name", f'<span class="mono">{e(info.name)}</span>'),
        ("Version", e(info.app_version or "any")),
        ("Executor", e(info.executor_id or "none")),
        ("Started", time_cell(info.created_at, now)),
    ]
    if info.ended_at is not None:
        rows.append(("Ended", f"{time_cell(info.ended_at, now)} after {e(span(info.duration))}"))
    else:
        rows.append(("Running for", e(span(info.duration))))
    if info.deadline is not None:
        rows.append(("Deadline", time_cell(info.deadline, now)))
    rows.append(("Steps", f"{step_count:,} recorded"))
    waits = ui.store().limit_waits(info.workflow_id)
    waited = sum(w.waited for w in waits)
    if waited > 0:
        keys = sorted({w.key for w in waits if w.waited > 0})
        rows.append(("Limits", f"waited {e(span(waited))} for {e(', '.join(keys))}"))
    facts = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<section class="card"><dl class="facts">{facts}</dl></section>'


def _actions(ui: Ui, info: WorkflowInfo) -> str:
    if ui.options.read_only:
        return (
            '<section class="card actions"><span class="pill ro">read-only</span>'
            '<span class="muted">Actions are off: the dashboard was started with '
            "--read-only.</span></section>"
        )
    wid = info.workflow_id
    links = []
    if info.status == PENDING or info.status in QUEUED_STATUSES:
        links.append(f'<a class="button danger" href="{url("/confirm/cancel", id=wid)}">Cancel</a>')
        links.append(
            f'<a class="button secondary" href="{url("/confirm/send", id=wid)}">Send a message</a>'
        )
    if info.status in (FAILED, CANCELLED):
        links.append(f'<a class="button" href="{url("/confirm/resume", id=wid)}">Resume</a>')
    links.append(f'<a class="button secondary" href="{url("/confirm/fork", id=wid)}">Fork…</a>')
    hint = ""
    if info.is_program_run:
        hint = (
            '<span class="note">A program run by <code>autodurable run</code>: run the '
            "same command again to continue it.</span>"
        )
    return f'<section class="card actions">{"".join(links)}{hint}</section>'


def _error(info: WorkflowInfo) -> str:
    kind = e(info.error_type)
    trace = ""
    if info.traceback:
        trace = (
            f'<details id="wf-trace" open><summary>Traceback</summary>'
            f'<pre class="trace">{e(info.traceback)}</pre></details>'
        )
    return (
        f'<section class="card"><h2>Error</h2><p><code>{kind}</code>: '
        f"{e(info.error_message)}</p>{trace}</section>"
    )


def _values(ui: Ui, info: WorkflowInfo) -> str:
    limit = ui.options.max_value_chars
    inputs = value_block(info.inputs, ui.redactor, limit)
    output = (
        value_block(info.output, ui.redactor, limit, empty="none")
        if info.status == SUCCEEDED
        else f'<p class="muted">{"none yet" if info.ended_at is None else "none"}</p>'
    )
    return (
        '<div class="grid2"><section class="card"><h2>Inputs</h2>'
        f'{inputs}</section><section class="card"><h2>Output</h2>{output}</section></div>'
    )


def _lineage(ui: Ui, info: WorkflowInfo) -> str:
    reads = ui.reads()
    items = []
    parent = reads.parent_of(info.workflow_id)
    if parent is not None:
        items.append(f'Started by <a href="{url("/workflow", id=parent)}">{e(parent)}</a>')
    for rewind in _rewinds(reads.store.list_events(info.workflow_id).get(REWINDS_EVENT)):
        items.append(
            f"Rewound to step {e(rewind.get('to_step'))} on "
            f"{e(when(float(rewind.get('at') or 0)))}: run again in place from there"
        )
    if info.forked_from:
        items.append(
            f'Forked from <a href="{url("/workflow", id=info.forked_from)}">'
            f"{e(info.forked_from)}</a> at step {e(info.forked_at_step)}"
        )
    for fork_id, at, status in reads.forks_of(info.workflow_id):
        items.append(
            f'Fork <a href="{url("/workflow", id=fork_id)}">{e(fork_id)}</a> '
            f"from step {e(at)} {badge(status)}"
        )
    children: list[tuple[str, str]] = []
    for prefix in (START_PREFIX, BATCH_PREFIX):
        for record in reads.steps_named(info.workflow_id, prefix, CHILDREN_SHOWN):
            found = parse_recorded(record.output)
            ids = [found] if isinstance(found, str) else found if isinstance(found, list) else []
            children += [
                (child, record.name[len(prefix) :]) for child in ids if isinstance(child, str)
            ]
    for child, name in children[:CHILDREN_SHOWN]:
        items.append(
            f'Child <a href="{url("/workflow", id=child)}">{e(child)}</a> '
            f'<span class="muted">{e(name)}</span>'
        )
    if len(children) > CHILDREN_SHOWN:
        items.append(f'<span class="muted">and {len(children) - CHILDREN_SHOWN:,} more</span>')
    if not items:
        return ""
    lines = "".join(f"<li>{item}</li>" for item in items)
    return f'<section class="card"><h2>Lineage</h2><ul>{lines}</ul></section>'


def _rewinds(value: str | None) -> list[dict[str, Any]]:
    """The rewinds recorded on a workflow (`REWINDS_EVENT`), oldest first."""
    found = parse_recorded(value) if value is not None else None
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _executions(ui: Ui, executions: list[Execution], now: float) -> str:
    """Each execution that recorded steps: a first run, then each resume."""
    if len(executions) < 2:
        return ""
    items = []
    for n, run in enumerate(executions, 1):
        found = ui.reads().store.get_executor(run.executor_id) if run.executor_id else None
        where = f" (pid {found.pid} on {e(found.hostname)})" if found is not None else ""
        role = "the first run" if n == 1 else "resumed: replayed the steps above from the record"
        items.append(
            f"<li><b>run {n}</b>, {role}: executor "
            f'<span class="mono">{e(cut(run.executor_id or "unknown", 12))}</span>{where}, '
            f"{run.steps:,} step(s) recorded from {time_cell(run.first, now)} "
            f"to {time_cell(run.last, now)}</li>"
        )
    return (
        '<section class="card"><h2>Executions</h2><p class="muted">Each later run replayed '
        "the steps of the runs before it from the record: they did not run again.</p>"
        f"<ul>{''.join(items)}</ul></section>"
    )


def _lane(step: StepInfo, info: WorkflowInfo, run: int = 0) -> Lane:
    wake = None
    if step.name == SLEEP and isinstance(step.output, int | float):
        wake = float(step.output)
    copied = bool(info.forked_from and info.forked_at_step and _root(step) < info.forked_at_step)
    return Lane(
        step.place,
        step.name,
        step.status,
        step.attempts,
        step.started_at,
        step.finished_at,
        wake,
        copied,
        run,
    )


def _steps_table(
    ui: Ui, info: WorkflowInfo, steps: list[StepInfo], page_number: int, pages: int, now: float
) -> str:
    if not steps:
        return ""
    rows = []
    for step in steps:
        output = ""
        if step.name == SLEEP and isinstance(step.output, int | float):
            output = f"sleeps until {time_cell(float(step.output), now)}"
        elif step.output is not None and step.status not in ("waiting",):
            shown = ui.redactor(step.output)
            output = (
                f'<details id="out-{e(step.place)}"><summary>{e(cut(str(_short(shown)), 60))}'
                f"</summary>{value_block(shown, ui.redactor, TABLE_VALUE_CHARS)}"
                f'<a href="{url("/step", id=info.workflow_id, place=step.place)}">whole step'
                "</a></details>"
            )
        if step.error_type:
            trace = (
                f'<details id="err-{e(step.place)}"><summary>traceback</summary><pre '
                f'class="trace">{e(step.traceback)}</pre></details>'
                if step.traceback
                else ""
            )
            output += (
                f"<div><code>{e(step.error_type.rpartition(':')[2])}</code>: "
                f"{e(cut(step.error_message or '', 200))}{trace}</div>"
            )
        kind = ""
        if step.name.startswith(RECV) or step.name == SLEEP:
            kind = ' <span class="pill">wait</span>'
        if info.forked_from and info.forked_at_step and _root(step) < info.forked_at_step:
            kind += ' <span class="pill" title="copied from the workflow it was forked from">'
            kind += "copied</span>"
        fork = ""
        if not ui.options.read_only and not step.branch:
            fork = (
                f'<a class="button small secondary" href="'
                f'{url("/confirm/fork", id=info.workflow_id, step=step.position)}">'
                "fork from here</a>"
            )
        retries = (
            f' <span class="muted">({step.attempts - 1} retried)</span>'
            if (step.attempts > 1)
            else ""
        )
        rows.append(
            f'<tr id="step-{e(step.place)}"><td class="mono">{e(step.place)}</td>'
            f'<td class="mono">{e(step.name)}{kind}</td><td>{badge(step.status)}</td>'
            f"<td>{step.attempts}{retries}</td><td>{time_cell(step.started_at, now)}</td>"
            f"<td>{e(span(step.duration))}</td><td>{output}</td><td>{fork}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "Step", "Status", "Attempts", "Started", "Took", "Result", "")
    )
    pager = ""
    if pages > 1:
        wid = info.workflow_id
        prev = (
            f'<a class="button secondary" href="{url("/workflow", id=wid, page=page_number - 1)}"'
            ">&lsaquo; earlier steps</a>"
            if page_number > 1
            else "<span></span>"
        )
        nxt = (
            f'<a class="button secondary" href="{url("/workflow", id=wid, page=page_number + 1)}"'
            ">later steps &rsaquo;</a>"
            if page_number < pages
            else "<span></span>"
        )
        pager = (
            f'<div class="pager">{prev}<span class="muted">page {page_number:,} of '
            f"{pages:,}</span>{nxt}</div>"
        )
    return (
        f'<section class="card"><h2>Steps</h2><table class="steps"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>{pager}</section>"
    )


def _short(value: Any) -> Any:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return value


def _messages_and_events(ui: Ui, info: WorkflowInfo) -> str:
    store = ui.store()
    limit = min(ui.options.max_value_chars, TABLE_VALUE_CHARS)
    messages = store.list_messages(info.workflow_id)[-200:]
    events = store.list_events(info.workflow_id)
    if not messages and not events:
        return ""
    rows = []
    for m in messages:
        state = (
            f"received by step {e(m.consumed_at_step)} at {when(m.consumed_at)}"
            if m.consumed_at is not None
            else "waiting"
        )
        rows.append(
            f"<tr><td>{e(m.topic or '(no topic)')}</td><td>{time_cell(m.sent_at)}</td>"
            f"<td>{e(state)}</td>"
            f"<td>{value_block(parse_recorded(m.payload), ui.redactor, limit)}</td></tr>"
        )
    table = ""
    if rows:
        table = (
            "<h2>Messages</h2><table><thead><tr><th>Topic</th><th>Sent</th><th>State</th>"
            f"<th>Message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    event_rows = "".join(
        f'<tr><td class="mono">{e(key)}</td><td>'
        + (
            f"<pre class=value>{e(REDACTED)}</pre>"
            if ui.redactor.hides(key)
            else value_block(parse_recorded(value), ui.redactor, limit)
        )
        + "</td></tr>"
        for key, value in sorted(events.items())
    )
    if event_rows:
        table += (
            f"<h2>Events</h2><table><thead><tr><th>Key</th><th>Value</th></tr></thead>"
            f"<tbody>{event_rows}</tbody></table>"
        )
    return f'<section class="card">{table}</section>'


def render_step(ui: Ui, info: WorkflowInfo, record: StepRecord) -> str:
    """The page of one step: its whole (redacted, size-limited) result and error."""
    step = StepInfo.from_record(record)
    limit = ui.options.max_value_chars
    trace = f'<pre class="trace">{e(step.traceback)}</pre>' if step.traceback else ""
    error = (
        f"<h2>Error</h2><p><code>{e(step.error_type)}</code>: {e(step.error_message)}</p>{trace}"
        if step.error_type
        else ""
    )
    body = (
        f'<h1><span class="muted">step</span> {e(step.place)} <span class="mono">'
        f"{e(step.name)}</span></h1>"
        f'<section class="card"><dl class="facts"><dt>Workflow</dt><dd><a href="'
        f'{url("/workflow", id=info.workflow_id)}#step-{e(step.place)}">{e(info.workflow_id)}'
        f"</a></dd><dt>Status</dt><dd>{badge(step.status)}</dd><dt>Attempts</dt><dd>"
        f"{step.attempts}</dd><dt>Started</dt><dd>{time_cell(step.started_at)}</dd>"
        f"<dt>Took</dt><dd>{e(span(step.duration))}</dd><dt>Executor</dt><dd>"
        f"{e(step.executor_id or '-')}</dd></dl></section>"
        f'<section class="card"><h2>Result</h2>{value_block(step.output, ui.redactor, limit)}'
        f"{error}</section>"
    )
    options = ui.options
    return page(
        f"step {step.place} of {info.workflow_id}",
        body,
        where=options.where,
        read_only=options.read_only,
    )
