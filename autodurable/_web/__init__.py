"""Idempotent web requests: a request with an ``Idempotency-Key`` header is a workflow.

`_record` decides what a keyed request gets (run, replay, 409, 422) and shapes
what is recorded; `_asgi` and `_wsgi` are the two protocols' middleware and
request workflows; `_auto` installs them on framework applications under the
import hook when `_install` sees a framework imported, and `_apps` holds the
light state both share (neither imports anything of the runtime until a
request with a key arrives). The public names
live in `autodurable.web`.
"""
