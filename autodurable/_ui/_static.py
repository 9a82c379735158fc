"""The dashboard's stylesheet, script and icon, served from memory.

Invariants:
- Self-contained: nothing is loaded from another origin (no CDN, no web font),
  so the dashboard works without internet and its Content-Security-Policy can
  allow ``'self'`` only.
- The script only fetches this origin's pages and puts their already-escaped
  HTML in place; it never evaluates what it fetches. Forms keep working
  without it (it only adds live updates and confirmation dialogs' focus).
- Colours follow the system's light or dark preference; each status has one
  colour everywhere (badges, charts, timelines).
"""

from __future__ import annotations

CSS = """
:root {
  --bg: #f6f7f9; --card: #ffffff; --text: #1d2330; --muted: #667085; --line: #e4e7ec;
  --accent: #3559e0; --code: #f2f4f7; --danger: #c0362c;
  --s-enqueued: #8e6bd8; --s-delayed: #b08fe8; --s-pending: #2f80ed; --s-succeeded: #23a26d;
  --s-failed: #d64545; --s-cancelled: #8a8f98; --s-retrying: #e3a008; --s-waiting: #56b6c2;
  --s-unrecorded: #b5838d; --s-timed_out: #c26d1f; --s-copied: #c9ced6;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #12151b; --card: #1a1f27; --text: #e4e7ec; --muted: #98a2b3; --line: #2a313c;
    --accent: #7c9cff; --code: #222833; --danger: #ff7b72; --s-copied: #4a515c; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
header { display: flex; align-items: center; gap: 1.25rem; padding: .6rem 1.5rem;
  background: var(--card); border-bottom: 1px solid var(--line); position: sticky; top: 0;
  z-index: 2; }
.brand { font-weight: 700; color: var(--text); letter-spacing: .02em; }
nav { display: flex; gap: .25rem; }
nav a { padding: .3rem .7rem; border-radius: 6px; color: var(--muted); }
nav a.active, nav a:hover { background: var(--code); color: var(--text); text-decoration: none; }
.where { margin-left: auto; color: var(--muted); font-size: 12px; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; max-width: 40vw; }
.live-toggle { color: var(--muted); font-size: 13px; user-select: none; }
main { padding: 1.25rem 1.5rem 3rem; max-width: 1400px; margin: 0 auto; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; word-break: break-all; }
h2 { font-size: 1.05rem; margin: 0 0 .75rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 1rem 1.25rem; margin-bottom: 1rem; }
.card.narrow { max-width: 720px; }
.muted { color: var(--muted); } .note { color: var(--muted); font-size: 13px; }
.pill { font-size: 12px; padding: .1rem .55rem; border-radius: 999px; background: var(--code); }
.pill.ro { background: #e8a33d33; color: #b7791f; font-weight: 600; }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--muted); white-space: nowrap; }
.s-enqueued { background: var(--s-enqueued); } .s-delayed { background: var(--s-delayed); }
.s-pending { background: var(--s-pending); } .s-succeeded { background: var(--s-succeeded); }
.s-failed { background: var(--s-failed); } .s-cancelled { background: var(--s-cancelled); }
.s-retrying { background: var(--s-retrying); } .s-waiting { background: var(--s-waiting); }
.s-unrecorded { background: var(--s-unrecorded); } .s-timed_out { background: var(--s-timed_out); }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th { text-align: left; color: var(--muted); font-weight: 600; font-size: 12px;
  text-transform: uppercase; letter-spacing: .04em; border-bottom: 1px solid var(--line);
  padding: .4rem .5rem; }
td { border-bottom: 1px solid var(--line); padding: .45rem .5rem; vertical-align: top; }
tr:hover td { background: var(--code); }
td.id, code, pre, .mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace;
  font-size: 13px; }
td.id { max-width: 22rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
pre.value, pre.trace { background: var(--code); padding: .75rem; border-radius: 8px;
  overflow: auto; max-height: 28rem; margin: .25rem 0; white-space: pre-wrap;
  word-break: break-word; }
pre.trace { border-left: 3px solid var(--s-failed); }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; }
form.filters label, form.stack label { display: flex; flex-direction: column; font-size: 12px;
  color: var(--muted); gap: .2rem; }
input, select, textarea, button { font: inherit; color: var(--text); background: var(--card);
  border: 1px solid var(--line); border-radius: 6px; padding: .35rem .55rem; }
textarea { font-family: ui-monospace, Menlo, Consolas, monospace; min-height: 8rem;
  width: 100%; }
form.stack { display: flex; flex-direction: column; gap: .75rem; max-width: 640px; }
button, .button { cursor: pointer; background: var(--accent); color: #fff; border: 0;
  padding: .45rem .9rem; border-radius: 6px; font-weight: 600; display: inline-block; }
.button.secondary, button.secondary { background: var(--code); color: var(--text); }
.button.danger, button.danger { background: var(--danger); }
.button.small { padding: .1rem .5rem; font-size: 12px; font-weight: 500; }
.button.disabled { opacity: .45; pointer-events: none; }
.actions { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.25rem;
  margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
.counts { display: flex; gap: .5rem; flex-wrap: wrap; margin-bottom: .5rem; }
.counts a { text-decoration: none; }
.pager { display: flex; gap: .5rem; justify-content: space-between; align-items: center;
  margin-top: .75rem; }
.flash { border-left: 4px solid var(--s-succeeded); }
.flash.error { border-left-color: var(--s-failed); }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { fill: var(--muted); font-size: 11px; font-family: inherit; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .f-enqueued { fill: var(--s-enqueued); } svg.chart .f-delayed { fill: var(--s-delayed); }
svg.chart .f-pending { fill: var(--s-pending); }
svg.chart .f-succeeded { fill: var(--s-succeeded); }
svg.chart .f-failed { fill: var(--s-failed); } svg.chart .f-cancelled { fill: var(--s-cancelled); }
svg.chart .f-retrying { fill: var(--s-retrying); } svg.chart .f-waiting { fill: var(--s-waiting); }
svg.chart .f-unrecorded { fill: var(--s-unrecorded); }
svg.chart .f-timed_out { fill: var(--s-timed_out); }
svg.chart .f-copied { fill: var(--s-copied); }
svg.chart .f-sleep { fill: var(--s-waiting); opacity: .55; }
svg.chart .retry { fill: var(--s-retrying); }
svg.chart text.run-label { fill: var(--muted); font-weight: 600; }
svg.chart .lane:hover rect.bar { opacity: .8; }
svg.chart text.label { fill: var(--text); }
.legend { display: flex; gap: .9rem; flex-wrap: wrap; font-size: 12px; color: var(--muted);
  margin-top: .4rem; }
.legend i { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px;
  margin-right: .3rem; vertical-align: -1px; }
.legend i.copied { background: var(--s-copied); } .legend i.sleep { background: var(--s-waiting); }
details > summary { cursor: pointer; color: var(--accent); }
.empty { padding: 2rem; text-align: center; color: var(--muted); }
"""

JS = """
(function () {
  'use strict';
  var body = document.body;
  var every = parseFloat(body.getAttribute('data-refresh') || '0');
  var box = document.getElementById('live');
  var key = 'autodurable-live';
  if (box) {
    box.checked = localStorage.getItem(key) !== 'off';
    box.addEventListener('change', function () {
      localStorage.setItem(key, box.checked ? 'on' : 'off');
    });
  }
  function isLive() { return (!box || box.checked) && !document.hidden; }
  function refresh(region) {
    var src = region.getAttribute('data-src');
    if (!src) { return Promise.resolve(); }
    return fetch(src, {credentials: 'same-origin', headers: {'X-Live': '1'}})
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === region.getAttribute('data-last')) { return; }
        // Keep open what the reader opened (tracebacks, values) across the update.
        var open = [];
        region.querySelectorAll('details[open][id]').forEach(function (d) { open.push(d.id); });
        region.innerHTML = html;
        region.setAttribute('data-last', html);
        open.forEach(function (id) {
          var d = document.getElementById(id); if (d) { d.open = true; }
        });
        body.setAttribute('data-updated', String(Date.now()));
      })
      .catch(function () { body.setAttribute('data-stale', String(Date.now())); });
  }
  function tick() {
    if (isLive()) {
      document.querySelectorAll('.live[data-src]').forEach(function (r) { refresh(r); });
    }
  }
  if (every > 0) { setInterval(tick, every * 1000); }
  document.querySelectorAll('[data-autofocus]').forEach(function (el) { el.focus(); });
})();
"""

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="7" fill="#3559e0"/>'
    '<path d="M9 22V10h5.5a6 6 0 0 1 0 12z" fill="none" stroke="#fff" stroke-width="3"/>'
    '<circle cx="23" cy="22" r="2.5" fill="#23a26d"/></svg>'
)
