"""Idempotent web requests: the ``Idempotency-Key`` header made durable.

A request carrying ``Idempotency-Key: K`` runs as the workflow ``http:K``: the
handler's steps are that workflow's steps and its response is recorded, so a
repeated request gets the recorded response without running the handler, and
a request interrupted by a crash is finished (by recovery when the server
starts again, or by the retry). The same key with another request is refused
with 422; a key whose first request still runs elsewhere gets 409 after a
short wait. Requests without the header are untouched.

``autodurable run`` installs the middleware by itself on Starlette/FastAPI,
Flask and Django applications; use these classes to install it by hand::

    from autodurable.web import IdempotencyMiddleware, IdempotencyWSGIMiddleware

    app = IdempotencyMiddleware(asgi_app)                  # ASGI
    flask_app.wsgi_app = IdempotencyWSGIMiddleware(flask_app.wsgi_app)  # WSGI

See docs/web.md.
"""

from ._web._asgi import IdempotencyMiddleware
from ._web._wsgi import IdempotencyWSGIMiddleware

__all__ = ["IdempotencyMiddleware", "IdempotencyWSGIMiddleware"]
