"""Actions on a workflow: cancel, resume, fork from a step, send a message.

Each is two requests: a GET shows a confirmation page (what will happen, to
which workflow) with a form; only its POST acts.

Invariants:
- The POST carries the server's CSRF token (checked by the caller, `_app`),
  and is refused in read-only mode before anything is read or changed.
- Every change goes through the same functions as the command line
  (`autodurable._control._operations` and `autodurable.send`), with their
  checks: a workflow that changed meanwhile is refused with their message.
- A refused action shows its form again with the reason; a done one
  redirects (303) to the workflow's page, so reloading it changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .._control._info import WorkflowInfo
from .._control._operations import cancel, fork, resume, workflow_info
from .._core._messages import send
from .._errors import AutodurableError
from .._store import FAILED, SUCCEEDED
from ._context import Ui
from ._html import badge, e, page, url

ACTIONS = ("cancel", "resume", "fork", "send")


@dataclass(frozen=True)
class Outcome:
    """Where to go after an action (a URL path with its query), or why it was refused."""

    location: str | None = None
    error: str | None = None


def _hidden(name: str, value: object) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">'


def confirm_page(
    ui: Ui, action: str, info: WorkflowInfo, form: Mapping[str, str], error: str = ""
) -> str:
    """The confirmation page of `action` on `info`'s workflow (with `error`, after a refusal)."""
    wid = info.workflow_id
    fields, button, what = "", "", ""
    if action == "cancel":
        what = (
            "Cancel this workflow? A running one stops at its next step boundary (the step "
            "it is in finishes and is recorded); one waiting in a sleep or recv, or in a "
            "queue, stops at once. It can be resumed later."
        )
        fields = (
            '<label>Reason (optional)<input name="reason" maxlength="500" '
            f'value="{e(form.get("reason", ""))}" placeholder="cancelled by an operator"></label>'
        )
        button = '<button class="danger" type="submit" data-autofocus>Cancel workflow</button>'
    elif action == "resume":
        what = (
            "Resume this workflow? It becomes pending again: its recorded steps are "
            "replayed and the step that failed runs again, in a process that has its code "
            "(a worker, or recover(watch=True))."
        )
        button = '<button type="submit" data-autofocus>Resume workflow</button>'
    elif action == "fork":
        what = (
            "Fork this workflow? A new workflow with the same name and inputs replays the "
            "steps recorded before the chosen step and runs the code as it is now from "
            "that step on. This workflow is left as it is."
        )
        fields = (
            '<label>From step (the first step to run again)<input name="step" type="number" '
            f'min="1" required value="{e(form.get("step", "1"))}"></label>'
            '<label>New id (optional)<input name="new_id" maxlength="200" '
            f'value="{e(form.get("new_id", ""))}" placeholder="generated"></label>'
        )
        button = '<button type="submit" data-autofocus>Fork workflow</button>'
    elif action == "send":
        what = (
            "Send a message to this workflow, for a recv() on its topic. Write it as JSON: "
            '{"approved": true}, or "yes" with its quotes.'
        )
        fields = (
            '<label>Topic (optional)<input name="topic" maxlength="200" '
            f'value="{e(form.get("topic", ""))}"></label>'
            '<label>Message (JSON)<textarea name="message" required>'
            f"{e(form.get('message', ''))}</textarea></label>"
            '<label>Idempotency key (optional)<input name="key" maxlength="200" '
            f'value="{e(form.get("key", ""))}"></label>'
        )
        button = '<button type="submit">Send message</button>'
    problem = f'<section class="card flash error">{e(error)}</section>' if error else ""
    body = (
        f"<h1>{e(action.capitalize())} <span class='mono'>{e(wid)}</span></h1>{problem}"
        f'<section class="card narrow"><p>{badge(info.status)} <span class="mono">'
        f"{e(info.name)}</span></p><p>{e(what)}</p>"
        f'<form class="stack" method="post" action="{url("/act/" + action)}">'
        f"{_hidden('id', wid)}{_hidden('csrf', ui.csrf)}{fields}"
        f'<div class="actions">{button}<a class="button secondary" '
        f'href="{url("/workflow", id=wid)}">Back</a></div></form></section>'
    )
    options = ui.options
    return page(f"{action} {wid}", body, where=options.where, read_only=options.read_only)


def perform(action: str, form: Mapping[str, str]) -> Outcome:
    """Do `action` with the confirmed form's values, through the operations API."""
    wid = form.get("id", "")
    try:
        if action == "cancel":
            changed, _ = cancel(wid, form.get("reason", "").strip() or None)
            done = "cancelled" if changed else "unchanged"
            return Outcome(url_path("/workflow", id=wid, done=done))
        if action == "resume":
            resume(wid)
            return Outcome(url_path("/workflow", id=wid, done="resumed"))
        if action == "fork":
            try:
                step = int(form.get("step", ""))
            except ValueError:
                return Outcome(error="the step must be a whole number, such as 3")
            _, new = fork(wid, step, new_id=form.get("new_id", "").strip() or None)
            return Outcome(url_path("/workflow", id=new.workflow_id, done="forked"))
        if action == "send":
            return _send(wid, form)
    except AutodurableError as exc:
        return Outcome(error=str(exc))
    return Outcome(error=f"unknown action {action!r}")


def _send(wid: str, form: Mapping[str, str]) -> Outcome:
    info = workflow_info(wid)  # unknown ids are refused, as the CLI does by default
    if info.status in (SUCCEEDED, FAILED):
        return Outcome(
            error=f"the workflow has {info.status}: nothing will receive the message; "
            "nothing was sent"
        )
    try:
        message = json.loads(form.get("message", ""))
    except ValueError as exc:
        return Outcome(error=f"the message is not valid JSON ({exc}); nothing was sent")
    if message is None:
        return Outcome(
            error="the message is null, which recv() returns on a timeout; send a "
            "value instead; nothing was sent"
        )
    topic = form.get("topic", "").strip() or None
    sent = send(wid, message, topic=topic, idempotency_key=form.get("key", "").strip() or None)
    return Outcome(url_path("/workflow", id=wid, done="sent" if sent else "duplicate"))


def url_path(path: str, **params: object) -> str:
    """`path` with a query string, unescaped (for a Location header)."""
    from urllib.parse import urlencode

    return path + "?" + urlencode({k: str(v) for k, v in params.items()})
