"""Installing the idempotency middleware on framework applications under the hook.

When Starlette (so FastAPI), Flask or Django's WSGI/ASGI handlers are imported
under `autodurable run` (a script, ``-m``, or ``-- CMD``; see `_install`),
`patch_module` patches their application classes' ``__call__`` so that a request
carrying an ``Idempotency-Key`` header goes through the middleware; every other request
(and every non-HTTP scope) calls the original method directly. Patching the
class, not the object a server loads, covers every server (uvicorn, gunicorn,
hypercorn, ``flask run``, ``manage.py runserver``, waitress) and every way of
building the application.

Invariants:
- Light: this module (and `_apps`) imports only the standard library; the
  runtime is loaded when the first request with a key arrives.
- An application is registered for recovery when it is created (WSGI
  classes) or first called (ASGI classes: uvicorn's lifespan start-up), and
  held weakly.
- Only the outermost application of a request acts (`IN_REQUEST`): mounted
  sub-applications see the key and pass the request through.
- An application is registered for recovery under a label that names its
  class and its rank among the instances of that class created in the
  process (``fastapi.applications.FastAPI#0``): the same program creates the
  same labels, so a restarted server can finish a request the last one left.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._apps import APPS, IN_REQUEST, App, asgi_key, register_app, wsgi_key

_CACHE_ATTRIBUTE = "_autodurable_idempotency"
_LABEL_ATTRIBUTE = "_autodurable_label"
_ranks: dict[str, itertools.count[int]] = {}


def _label(instance: object) -> str:
    cls = type(instance)
    name = f"{cls.__module__}.{cls.__qualname__}"
    return f"{name}#{next(_ranks.setdefault(name, itertools.count()))}"


# -- the patches -------------------------------------------------------------------------


def _registered(instance: Any, protocol: str, original: Callable[..., Any]) -> str:
    """The label of `instance`, registered for recovery on first sight (nothing heavy
    is imported: the middleware is made at the first request with a key)."""
    label: str | None = instance.__dict__.get(_LABEL_ATTRIBUTE)
    if label is None:
        label = instance.__dict__[_LABEL_ATTRIBUTE] = _label(instance)
        inner = _Unpatched(instance, original)
        register_app(label, App(inner, protocol, alive=inner.alive))
    return label


def _middleware_of(instance: Any, protocol: str, original: Callable[..., Any]) -> Any:
    """The middleware around `instance` (made on first use)."""
    found = instance.__dict__.get(_CACHE_ATTRIBUTE)
    if found is not None:
        return found
    label = _registered(instance, protocol, original)
    inner = APPS[label].call
    if protocol == "asgi":
        from ._asgi import IdempotencyMiddleware

        made: Any = IdempotencyMiddleware(inner, name=label)
    else:
        from ._wsgi import IdempotencyWSGIMiddleware

        made = IdempotencyWSGIMiddleware(inner, name=label)
    instance.__dict__[_CACHE_ATTRIBUTE] = made  # framework application objects have one
    return made


class _Unpatched:
    """An application object called through its class's original ``__call__``; held
    weakly (the application holds its middleware, which holds this)."""

    def __init__(self, instance: Any, original: Callable[..., Any]) -> None:
        self.instance = weakref.ref(instance)
        self.original = original

    def alive(self) -> bool:
        return self.instance() is not None

    def __call__(self, *args: Any) -> Any:
        instance = self.instance()
        if instance is None:
            raise LookupError("the application was garbage-collected")
        return self.original(instance, *args)


def _patch_asgi(cls: type) -> None:
    original = cls.__dict__["__call__"]

    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if _LABEL_ATTRIBUTE not in self.__dict__:  # first call: uvicorn's lifespan start-up
            _registered(self, "asgi", original)
        if scope.get("type") != "http" or IN_REQUEST.get() or asgi_key(scope) is None:
            await original(self, scope, receive, send)
            return
        await _middleware_of(self, "asgi", original)(scope, receive, send)

    _replace(cls, "__call__", original, __call__)


def _patch_wsgi(cls: type) -> None:
    original_call = cls.__dict__["__call__"]
    original_init = cls.__dict__["__init__"]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if type(self).__call__ is __call__:  # a subclass with its own __call__ is its own
            _registered(self, "wsgi", original_call)

    def __call__(self: Any, environ: Any, start_response: Any) -> Any:
        if IN_REQUEST.get() or wsgi_key(environ) is None:
            return original_call(self, environ, start_response)
        return _middleware_of(self, "wsgi", original_call)(environ, start_response)

    _replace(cls, "__init__", original_init, __init__)
    _replace(cls, "__call__", original_call, __call__)


def _replace(cls: type, name: str, original: Any, new: Any) -> None:
    new.__name__, new.__qualname__ = original.__name__, original.__qualname__
    new.__doc__, new.__module__ = original.__doc__, original.__module__
    new.__wrapped__ = original
    setattr(cls, name, new)


def patch_module(fullname: str, module: ModuleType) -> None:
    """Patch the application class(es) `module` defines (once)."""
    if getattr(module, _CACHE_ATTRIBUTE, False):
        return
    setattr(module, _CACHE_ATTRIBUTE, True)
    if fullname == "starlette.applications":
        _patch_asgi(module.Starlette)
    elif fullname == "django.core.handlers.asgi":
        _patch_asgi(module.ASGIHandler)
    elif fullname == "flask.app":
        _patch_wsgi(module.Flask)
    elif fullname == "django.core.handlers.wsgi":
        _patch_wsgi(module.WSGIHandler)
