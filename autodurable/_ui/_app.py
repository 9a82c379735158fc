"""The dashboard's web application (Starlette): routes, and serving it with uvicorn.

Routes (every one behind `Guard`: token, Host, security headers):

- ``GET /``: workflows, filtered and paginated; ``GET /workflow?id=ID``: one
  workflow; ``GET /step?id=ID&place=3.1``: one step; ``GET /queues``,
  ``GET /schedules``. ``partial=1`` returns a page's live region only (what
  the script polls).
- ``GET /confirm/ACTION?id=ID``: the confirmation form of an action;
  ``POST /act/ACTION``: the action (cancel, resume, fork, send).
- ``GET /static/...``: the stylesheet, the script and the icon.

Invariants:
- Starlette and uvicorn are imported only here, when the dashboard starts;
  without them `create_app` raises `AutodurableError` naming the extra.
- Reads run in Starlette's thread pool (the store's calls block); nothing
  that changes state is reachable by GET; POSTs are checked (read-only mode,
  CSRF token, origin) before their form is acted on.
- A form body is parsed here (URL-encoded, at most `MAX_FORM` bytes), so no
  other parser is needed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from .._control._operations import workflow_info
from .._errors import AutodurableError, WorkflowNotFound
from ._actions import ACTIONS, confirm_page, perform
from ._auth import Guard, new_secret
from ._context import Ui
from ._html import message_page
from ._list_page import render_list
from ._options import UiOptions
from ._queues_page import render_queues, render_schedules
from ._static import CSS, ICON, JS
from ._workflow_page import render_step, render_workflow

UI_EXTRA = "the dashboard needs Starlette and uvicorn: pip install 'autodurable[ui]'"
MAX_FORM = 1_000_000


def _starlette() -> Any:
    try:
        import starlette.applications
        import starlette.responses
        import starlette.routing
    except ImportError as exc:
        raise AutodurableError(f"{UI_EXTRA} ({exc.name} is not installed)") from None
    return starlette


def create_app(options: UiOptions, secret: str | None = None) -> Any:
    """The dashboard as an ASGI application (Starlette, wrapped in `Guard`)."""
    starlette = _starlette()
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    ui = Ui(options, "")
    guard_holder: list[Guard] = []

    def html(text: str, status: int = 200) -> Response:
        return HTMLResponse(text, status_code=status)

    def problem(title: str, text: str, status: int) -> Response:
        return html(message_page(title, text), status)

    def partial(request: Request) -> bool:
        return request.query_params.get("partial") == "1"

    def workflows(request: Request) -> Response:
        params = request.query_params
        exact = params.get("q", "").strip()
        paging = partial(request) or "after" in params or "before" in params
        # An id typed whole goes straight to its workflow.
        if exact and not paging and ui.store().get_workflow(exact) is not None:
            return RedirectResponse(f"/workflow?id={_quote(exact)}", status_code=303)
        statuses = [s for value in params.getlist("status") for s in value.split(",")]
        return html(render_list(ui, params, statuses, partial(request)))

    def workflow(request: Request) -> Response:
        try:
            info = workflow_info(request.query_params.get("id", ""))
        except WorkflowNotFound:
            return problem(
                "No such workflow",
                "There is no workflow with this id in the "
                "state database (it may have been deleted).",
                404,
            )
        return html(render_workflow(ui, info, request.query_params, partial(request)))

    def step(request: Request) -> Response:
        params = request.query_params
        try:
            info = workflow_info(params.get("id", ""))
        except WorkflowNotFound:
            return problem("No such workflow", "There is no workflow with this id.", 404)
        branch, _, position = params.get("place", "").rpartition(".")
        record = None
        if position.isdigit():
            record = ui.reads().one_step(info.workflow_id, branch, int(position))
        if record is None:
            return problem("No such step", "This workflow has no step at that place.", 404)
        return html(render_step(ui, info, record))

    def queues(request: Request) -> Response:
        return html(render_queues(ui, partial(request)))

    def schedules(request: Request) -> Response:
        return html(render_schedules(ui))

    def confirm(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return problem("Unknown action", "There is no such action.", 404)
        if options.read_only:
            return problem("Read-only", "This dashboard is read-only: it changes nothing.", 403)
        try:
            info = workflow_info(request.query_params.get("id", ""))
        except WorkflowNotFound:
            return problem("No such workflow", "There is no workflow with this id.", 404)
        return html(confirm_page(ui, action, info, request.query_params))

    async def act(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return problem("Unknown action", "There is no such action.", 404)
        if options.read_only:
            return problem("Read-only", "This dashboard is read-only: it changes nothing.", 403)
        body = await request.body()
        if len(body) > MAX_FORM:
            return problem("Too large", "The form is too large.", 413)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not guard_holder[0].csrf_ok(form.get("csrf"), headers):
            return problem(
                "Not confirmed",
                "This action was not confirmed on this dashboard's "
                "own page (its form token is missing or stale): open the workflow "
                "again and use its buttons.",
                403,
            )
        outcome = await run_in_threadpool(perform, action, form)
        if outcome.location is not None:
            return RedirectResponse(outcome.location, status_code=303)
        try:
            info = await run_in_threadpool(workflow_info, form.get("id", ""))
        except WorkflowNotFound:
            return problem("No such workflow", "There is no workflow with this id.", 404)
        page = confirm_page(ui, action, info, form, outcome.error or "")
        return html(page, 409)

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        files = {
            "app.css": (CSS, "text/css"),
            "app.js": (JS, "text/javascript"),
            "icon.svg": (ICON, "image/svg+xml"),
        }
        if name not in files:
            return Response("not found", status_code=404, media_type="text/plain")
        text, media = files[name]
        return Response(text, media_type=f"{media}; charset=utf-8")

    routes = [
        Route("/", workflows),
        Route("/workflow", workflow),
        Route("/step", step),
        Route("/queues", queues),
        Route("/schedules", schedules),
        Route("/confirm/{action}", confirm),
        Route("/act/{action}", act, methods=["POST"]),
        Route("/static/{name}", static),
    ]
    app = starlette.applications.Starlette(routes=routes)
    guard = Guard(app, options, secret or new_secret())
    guard_holder.append(guard)
    ui.csrf = guard.csrf
    return guard


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def serve(options: UiOptions) -> None:
    """Serve the dashboard until interrupted (uvicorn, one process)."""
    app = create_app(options)
    try:
        import uvicorn
    except ImportError as exc:
        raise AutodurableError(f"{UI_EXTRA} ({exc.name} is not installed)") from None
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
