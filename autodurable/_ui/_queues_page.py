"""The queues and schedules pages: how each stored queue stands, and each schedule.

Invariants: read only; each queue is one `queue_stats` read (bounded by the
number of queues), schedules one `schedules` read; links lead to the
workflows page filtered by that queue or workflow name.
"""

from __future__ import annotations

import time

from ._context import Ui
from ._html import e, live, page, span, time_cell, url


def _rate(limit: int | None, period: float | None) -> str:
    return f"{limit} per {span(period)}" if limit and period else "-"


def render_queues(ui: Ui, partial: bool) -> str:
    """The queues page (or its live region)."""
    store = ui.store()
    now = time.time()
    rows = []
    for spec in store.queue_specs():
        stats = store.queue_stats(spec.name)
        oldest = time_cell(stats.oldest_waiting, now) if stats.oldest_waiting else "-"
        rows.append(
            f'<tr><td class="mono"><a href="{url("/", queue=spec.name)}">{e(spec.name)}</a></td>'
            f"<td>{stats.enqueued:,}</td><td>{stats.delayed:,}</td><td>{stats.running:,}</td>"
            f"<td>{stats.finished:,}</td><td>{oldest}</td>"
            f"<td>{e(spec.concurrency or '-')}</td><td>{e(spec.worker_concurrency or '-')}</td>"
            f"<td>{e(_rate(spec.rate_limit, spec.rate_period))}</td>"
            f"<td>{'yes' if spec.partitioned else 'no'}</td></tr>"
        )
    if rows:
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "Queue",
                "Waiting",
                "Delayed",
                "Running",
                "Finished",
                "Oldest waiting",
                "Concurrency",
                "Per worker",
                "Rate",
                "Partitioned",
            )
        )
        inner = (
            f'<section class="card"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>"
        )
    else:
        inner = (
            '<section class="card"><p class="empty">No queue is stored yet (a queue is '
            "stored when a process declares it or enqueues on it).</p></section>"
        )
    if partial:
        return inner
    options = ui.options
    body = "<h1>Queues</h1>" + live("queues-live", url("/queues", partial=1), inner)
    return page(
        "Queues",
        body,
        active="/queues",
        where=options.where,
        read_only=options.read_only,
        refresh=options.refresh,
    )


def render_schedules(ui: Ui) -> str:
    """The schedules page."""
    rows = []
    for record in ui.store().schedules():
        rows.append(
            f'<tr><td class="mono">{e(record.name)}</td><td class="mono">'
            f'<a href="{url("/", name=record.workflow_name)}">{e(record.workflow_name)}</a></td>'
            f'<td class="mono">{e(record.cron)}</td><td>{e(record.timezone)}</td>'
            f"<td>{e(record.catch_up)}</td><td>{'paused' if record.paused else 'active'}</td>"
            f"<td>{time_cell(record.last_tick) if record.last_tick else '-'}</td></tr>"
        )
    if rows:
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "Schedule",
                "Workflow",
                "Cron",
                "Time zone",
                "Catch-up",
                "State",
                "Last tick",
            )
        )
        inner = (
            f'<section class="card"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>"
        )
    else:
        inner = '<section class="card"><p class="empty">No schedule is stored yet.</p></section>'
    options = ui.options
    return page(
        "Schedules",
        "<h1>Schedules</h1>" + inner,
        active="/schedules",
        where=options.where,
        read_only=options.read_only,
    )
