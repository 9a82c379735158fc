"""Inline SVG charts: workflows started over time by status, and a workflow's timeline.

Invariants:
- Charts are SVG text built here, sized by a viewBox (they scale with the page);
  colours come from the stylesheet's status classes, so a status has the same
  colour in every chart and badge.
- Every text in a chart (names, tooltips) goes through `e`; numbers are
  formatted here, never taken as text from the store.
- A chart's size is bounded whatever the data: the counts chart has a fixed
  number of bars and the timeline is drawn for one page of steps (the whole
  workflow is summarised by `step_overview`, one bar per time slice).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .._store._dashboard import StepBucket
from ._html import STATUS_ORDER, e, span, when

# Steps shown as waiting rather than working, by name.
SLEEP = "autodurable.sleep"
RECV = "autodurable.recv"
_NICE = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
    1209600,
    2592000,
)


def nice_width(total: float, buckets: int) -> float:
    """A round slice width (1 s, 5 min, 1 h, 1 d ...) giving about `buckets` slices."""
    raw = max(total, 1.0) / max(buckets, 1)
    for width in _NICE:
        if width >= raw:
            return float(width)
    return float(math.ceil(raw / 86400) * 86400)


def _label(stamp: float, width: float) -> str:
    moment = dt.datetime.fromtimestamp(stamp)
    if width >= 86400:
        return moment.strftime("%b %d")
    if width >= 60:
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%H:%M:%S")


def counts_chart(
    cells: Sequence[tuple[int, str, int]], start: float, width: float, buckets: int
) -> str:
    """Stacked bars: how many workflows started in each slice, by their status now."""
    if not cells:
        return '<p class="empty">No workflows started in this period.</p>'
    per: dict[int, dict[str, int]] = defaultdict(dict)
    for bucket, status, n in cells:
        per[bucket][status] = per[bucket].get(status, 0) + n
    top = max(sum(v.values()) for v in per.values())
    w, h, left, bottom = 1000.0, 180.0, 44.0, 22.0
    plot_h, bar_w = h - bottom - 8, (w - left) / buckets
    parts = [
        f'<svg class="chart counts-chart" viewBox="0 0 {w:g} {h:g}" role="img" '
        f'aria-label="workflows started per {e(span(width))}">',
        f'<line class="grid" x1="{left}" y1="8" x2="{w}" y2="8"/>',
        f'<line class="grid" x1="{left}" y1="{h - bottom}" x2="{w}" y2="{h - bottom}"/>',
        f'<text x="{left - 6}" y="14" text-anchor="end">{top:,}</text>',
        f'<text x="{left - 6}" y="{h - bottom}" text-anchor="end">0</text>',
    ]
    for bucket in sorted(per):
        y = h - bottom
        x = left + bucket * bar_w
        statuses = sorted(
            per[bucket], key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 99
        )
        tip = ", ".join(f"{per[bucket][s]:,} {s}" for s in statuses)
        parts.append(f"<g><title>{e(when(start + bucket * width))}: {e(tip)}</title>")
        for status in statuses:
            bar_h = per[bucket][status] / top * plot_h
            y -= bar_h
            parts.append(
                f'<rect class="f-{e(status)}" x="{x + 1:.1f}" y="{y:.1f}" '
                f'width="{max(bar_w - 2, 1):.1f}" height="{bar_h:.1f}"/>'
            )
        parts.append("</g>")
    for i in (0, buckets // 2, buckets):
        anchor = "start" if i == 0 else "end" if i == buckets else "middle"
        parts.append(
            f'<text x="{left + i * bar_w:.1f}" y="{h - 6}" text-anchor="{anchor}">'
            f"{e(_label(start + i * width, width))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts) + _legend(sorted({s for _, s, _ in cells}, key=_order))


def _order(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else 99


def _legend(statuses: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> str:
    items = [f'<span><i class="s-{e(s)}"></i>{e(s)}</span>' for s in statuses]
    items += [f'<span><i class="{e(c)}"></i>{e(t)}</span>' for c, t in extra]
    return f'<div class="legend">{"".join(items)}</div>'


@dataclass(frozen=True)
class Lane:
    """One step as the timeline draws it."""

    place: str
    name: str
    status: str
    attempts: int
    start: float
    end: float | None  # None: still running or waiting
    wake: float | None = None  # a sleep's wake-up time
    copied: bool = False  # copied from the workflow it was forked from
    run: int = 0  # which execution recorded it (1, 2 ... when it took more than one)


def timeline(lanes: Sequence[Lane], now: float, *, first_place: str = "") -> str:
    """A Gantt chart of `lanes`: one row per step, its bar from start to end.

    Waits (a sleep until its wake-up time, a recv until its message) are drawn as
    pale bars; retried steps carry their attempt count; steps a fork copied from
    its source are grey; when more than one execution recorded the steps (a
    resume after a crash), the first step of each is marked "run N".
    """
    if not lanes:
        return '<p class="empty">No steps recorded yet.</p>'
    t0 = min(lane.start for lane in lanes)
    t1 = max(max(lane.end or now, lane.wake or 0.0, lane.start) for lane in lanes)
    total = max(t1 - t0, 1e-3)
    w, label_w, row, top = 1000.0, 250.0, 18.0, 22.0
    h = top + row * len(lanes) + 6
    scale = (w - label_w - 10) / total
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {w:g} {h:g}" role="img" '
        f'aria-label="timeline of {len(lanes)} steps">',
        f'<text x="{label_w}" y="12">{e(when(t0))}</text>',
        f'<text x="{w - 4}" y="12" text-anchor="end">+{e(span(total))}</text>',
    ]
    for i, lane in enumerate(lanes):
        y = top + i * row
        x = label_w + (lane.start - t0) * scale
        end = lane.end if lane.end is not None else now
        bar_w = max((end - lane.start) * scale, 2.0)
        kind = "copied" if lane.copied else lane.status
        waits = lane.name.startswith(RECV) or lane.wake is not None
        tip = (
            f"step {lane.place} {lane.name}: {lane.status}"
            f"{', copied by the fork' if lane.copied else ''}, "
            f"{lane.attempts} attempt{'s' if lane.attempts != 1 else ''}, "
            f"{span(end - lane.start)}{' (still running)' if lane.end is None else ''}"
        )
        if lane.wake is not None:
            tip += f", sleeps until {when(lane.wake)}"
        if lane.run:
            tip += f", recorded by run {lane.run}"
        name = lane.name if len(lane.name) <= 34 else lane.name[:33] + "…"
        parts.append(
            f'<a href="#step-{e(lane.place)}"><g class="lane" data-place="{e(lane.place)}">'
            f"<title>{e(tip)}</title>"
            f'<text class="label" x="4" y="{y + 13:.1f}">{e(lane.place)} {e(name)}</text>'
        )
        if lane.wake is not None and lane.wake > lane.start:
            wake_w = max((min(lane.wake, max(now, end)) - lane.start) * scale, 2.0)
            parts.append(
                f'<rect class="f-sleep" x="{x:.1f}" y="{y + 3:.1f}" width="{wake_w:.1f}" '
                f'height="{row - 6:.1f}" rx="2"/>'
            )
        css = "f-sleep" if waits and not lane.copied and lane.status == "waiting" else f"f-{kind}"
        parts.append(
            f'<rect class="bar {e(css)}" x="{x:.1f}" y="{y + 3:.1f}" width="{bar_w:.1f}" '
            f'height="{row - 6:.1f}" rx="2"/>'
        )
        after = x + bar_w + 4
        if lane.attempts > 1:
            parts.append(
                f'<text class="retry-label" x="{after:.1f}" y="{y + 13:.1f}">'
                f"&#215;{lane.attempts}</text>"
            )
            after += 28
        if lane.run and (i == 0 or lanes[i - 1].run != lane.run):
            # Where an execution's steps start: the ones above it were replayed by it.
            parts.append(
                f'<text class="run-label" x="{after:.1f}" y="{y + 13:.1f}">run {lane.run}</text>'
            )
        parts.append("</g></a>")
    parts.append("</svg>")
    statuses = sorted({lane.status for lane in lanes if not lane.copied}, key=_order)
    extra = [("sleep", "waiting (sleep, recv)")]
    if any(lane.copied for lane in lanes):
        extra.append(("copied", "copied by the fork"))
    return "".join(parts) + _legend(statuses, extra)


def step_overview(cells: Sequence[StepBucket], start: float, width: float, buckets: int) -> str:
    """The whole run of a long workflow: steps started per slice, by status."""
    flat = [(c.bucket, c.status, c.count) for c in cells]
    if not flat:
        return ""
    chart = counts_chart(flat, start, width, buckets)
    retried = len({c.bucket for c in cells if c.max_attempts > 1})
    note = f" {retried:,} slice(s) hold retried steps." if retried else ""
    return chart + f'<p class="note">Steps started per {e(span(width))}.{e(note)}</p>'
