"""The workflows page: filters, counts over time, and a keyset-paginated table.

Invariants:
- Filters are validated by the operations API (`workflow_filter`), the same
  rules as ``autodurable workflows list``; a bad filter is shown as a message,
  never a traceback, and lists nothing.
- Pages are keyset pages (`after` / `before` a workflow), so a deep page costs
  what the first does; the chart is one aggregate query over a bounded number
  of time slices.
- The live region (counts, chart, table, pager) is what the script refreshes;
  the filter form is outside it, so typing is never interrupted.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._control._info import WorkflowInfo
from .._control._operations import workflow_filter
from .._errors import AutodurableError
from .._store import WORKFLOW_STATUSES, WorkflowFilter
from ._charts import counts_chart, nice_width
from ._context import Ui
from ._html import badge, cut, e, live, page, span, time_cell, url

RANGES = {"15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000}
FILTER_KEYS = ("status", "name", "queue", "version", "error", "q", "range", "since", "until")
CHART_SLICES = 48
DEFAULT_CHART_SPAN = 7 * 86400.0


@dataclass(frozen=True)
class Filters:
    """The list's filters as given in the query string (text, unvalidated)."""

    statuses: tuple[str, ...]
    name: str
    queue: str
    version: str
    error: str
    q: str
    range: str
    since: str
    until: str

    @classmethod
    def parse(cls, params: Mapping[str, str], statuses: Sequence[str]) -> Filters:
        """The filters of a request's query string."""
        get = lambda key: (params.get(key) or "").strip()  # noqa: E731
        return cls(
            tuple(s for s in statuses if s),
            get("name"),
            get("queue"),
            get("version"),
            get("error"),
            get("q"),
            get("range"),
            get("since"),
            get("until"),
        )

    def query(self) -> dict[str, str]:
        """The filters as query parameters (statuses joined; the page links repeat them)."""
        return {
            "status": ",".join(self.statuses),
            "name": self.name,
            "queue": self.queue,
            "version": self.version,
            "error": self.error,
            "q": self.q,
            "range": self.range,
            "since": self.since,
            "until": self.until,
        }

    def bounds(self, now: float) -> tuple[float | None, float | None]:
        """(since, until) as seconds since the epoch, from the range or the two dates."""
        if self.range in RANGES:
            return now - RANGES[self.range], None
        return _moment(self.since, "since"), _moment(self.until, "until")

    def store_filter(self, now: float) -> WorkflowFilter:
        """The store's filter, validated as the CLI validates it (`AutodurableError`)."""
        since, until = self.bounds(now)
        statuses = [s for part in self.statuses for s in part.split(",") if s]
        return workflow_filter(
            statuses or None,
            self.name or None,
            since=since,
            until=until,
            app_version=self.version or None,
            error_type=self.error or None,
            queue=self.queue or None,
        )


def _moment(text: str, label: str) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise AutodurableError(
            f"{label} must be a date and time such as 2026-01-31T14:00, not {text!r}"
        ) from None


def _cursor(text: str) -> tuple[float, str] | None:
    stamp, sep, workflow_id = text.partition("~")
    try:
        return (float(stamp), workflow_id) if sep else None
    except ValueError:
        return None


def _key(info: WorkflowInfo) -> str:
    return f"{info.created_at!r}~{info.workflow_id}"


def render_list(ui: Ui, params: Mapping[str, str], statuses: Sequence[str], partial: bool) -> str:
    """The workflows page (or, with `partial`, its live region only)."""
    filters = Filters.parse(params, statuses)
    inner = _live_inner(ui, filters, params)
    query = {**filters.query(), "after": params.get("after"), "before": params.get("before")}
    region = live("workflows-live", url("/", **query, partial=1), inner)
    if partial:
        return inner
    body = _filter_form(filters) + region
    options = ui.options
    return page(
        "Workflows", body, where=options.where, read_only=options.read_only, refresh=options.refresh
    )


def _live_inner(ui: Ui, filters: Filters, params: Mapping[str, str]) -> str:
    now = time.time()
    try:
        where = filters.store_filter(now)
    except AutodurableError as exc:
        return f'<section class="card flash error">{e(exc)}</section>'
    reads = ui.reads()
    limit = ui.options.page_size
    after, before = _cursor(params.get("after", "")), _cursor(params.get("before", ""))
    q = filters.q or None
    if before is not None and after is None:
        records = reads.workflows_page(where, limit + 1, id_prefix=q, before=before)
        has_newer, has_older = len(records) > limit, True
        records = records[1:] if has_newer else records
    else:
        records = reads.workflows_page(where, limit + 1, after, id_prefix=q)
        has_newer, has_older = after is not None, len(records) > limit
        records = records[:limit]
    found = [WorkflowInfo.from_record(r) for r in records]
    return (
        _counts(reads.status_counts(), filters)
        + _chart(ui, where, filters, now)
        + _table(found, filters, now)
        + _pager(found, filters, has_newer, has_older)
    )


def _counts(counts: dict[str, int], filters: Filters) -> str:
    items = [f'<a href="{url("/")}"><span class="pill">all {sum(counts.values()):,}</span></a>']
    for status in WORKFLOW_STATUSES:
        if counts.get(status):
            link = url("/", **{**filters.query(), "status": status})
            items.append(
                f'<a href="{link}">{badge(status)} <span class="muted">'
                f"{counts[status]:,}</span></a>"
            )
    return f'<div class="counts">{"".join(items)}</div>'


def _chart(ui: Ui, where: WorkflowFilter, filters: Filters, now: float) -> str:
    reads = ui.reads()
    since, until = where.created_after, where.created_before or now
    period = ""
    if since is None:
        # No start chosen: the last week of activity (a bounded read on any store).
        found = reads.created_range()
        if found is None:
            return ""
        oldest, newest = found
        since = max(oldest, min(until, newest + 1.0) - DEFAULT_CHART_SPAN)
        period = " (the last week with workflows; choose a time range for others)"
    width = nice_width(until - since, CHART_SLICES)
    start = math.floor(since / width) * width
    buckets = max(1, min(CHART_SLICES + 2, math.ceil((until - start) / width)))
    cells = reads.counts_over_time(where, start, width, buckets)
    title = f"Started per {span(width)}, by status now"
    return (
        f'<section class="card"><h2>{e(title)}<span class="note">{e(period)}</span></h2>'
        f"{counts_chart(cells, start, width, buckets)}</section>"
    )


def _table(found: list[WorkflowInfo], filters: Filters, now: float) -> str:
    if not found:
        filtered = any(v for v in filters.query().values())
        text = "No workflow matches these filters." if filtered else "No workflows yet."
        return f'<section class="card"><p class="empty">{e(text)}</p></section>'
    rows = []
    for info in found:
        problem = ""
        if info.error_type:
            problem = cut(f"{info.error_type.rpartition(':')[2]}: {info.error_message}", 90)
        rows.append(
            f'<tr data-id="{e(info.workflow_id)}">'
            f'<td class="id"><a href="{url("/workflow", id=info.workflow_id)}">'
            f"{e(info.workflow_id)}</a></td>"
            f"<td>{e(info.name)}</td><td>{badge(info.status)}</td>"
            f"<td>{time_cell(info.created_at, now)}</td><td>{e(span(info.duration))}</td>"
            f'<td class="mono">{e(info.app_version or "-")}</td>'
            f'<td class="muted">{e(problem)}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("ID", "Name", "Status", "Started", "Duration", "Version", "Error")
    )
    return (
        f'<section class="card"><table class="workflows"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _pager(found: list[WorkflowInfo], filters: Filters, newer: bool, older: bool) -> str:
    query = filters.query()
    links = []
    if newer and found:
        links.append(f'<a class="button secondary" href="{url("/", **query)}">« newest</a>')
        links.append(
            f'<a class="button secondary" rel="prev" '
            f'href="{url("/", **query, before=_key(found[0]))}">&lsaquo; newer</a>'
        )
    links.append('<span class="muted"></span>')
    if older and found:
        links.append(
            f'<a class="button secondary" rel="next" '
            f'href="{url("/", **query, after=_key(found[-1]))}">older &rsaquo;</a>'
        )
    return f'<div class="pager">{"".join(links)}</div></section>' if found else ""


def _filter_form(filters: Filters) -> str:
    status_options = "".join(
        f'<option value="{s}"{" selected" if s in filters.statuses else ""}>{s}</option>'
        for s in WORKFLOW_STATUSES
    )
    range_options = "".join(
        f'<option value="{k}"{" selected" if k == filters.range else ""}>last {k}</option>'
        for k in RANGES
    )
    any_range = "" if filters.range in RANGES else " selected"

    def field(label: str, name: str, value: str, hint: str, kind: str = "text") -> str:
        return (
            f'<label>{e(label)}<input type="{kind}" name="{name}" value="{e(value)}" '
            f'placeholder="{e(hint)}"></label>'
        )

    return (
        '<section class="card"><form class="filters" method="get" action="/">'
        f'<label>Status<select name="status"><option value="">any</option>{status_options}'
        "</select></label>"
        + field("Id starts with", "q", filters.q, "order-42")
        + field("Name", "name", filters.name, "*:checkout")
        + field("Queue", "queue", filters.queue, "emails")
        + field("Version", "version", filters.version, "v2")
        + field("Error type", "error", filters.error, "ValueError")
        + f'<label>Started<select name="range"><option value=""{any_range}>any time</option>'
        f"{range_options}</select></label>"
        + field("From", "since", filters.since, "", "datetime-local")
        + field("To", "until", filters.until, "", "datetime-local")
        + '<button type="submit">Filter</button>'
        '<a class="button secondary" href="/">Reset</a></form></section>'
    )
