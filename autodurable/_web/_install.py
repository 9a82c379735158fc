"""Watching for the web frameworks under the hook: the light half of `_auto`.

`autodurable run` (a script, ``-m``, or ``-- CMD``) calls `install()` in every
process it starts. Most programs never import a web framework, so this module
only registers post-import hooks; `_auto`, which patches the frameworks'
application classes, is imported when one of them is.

Invariant: ``AUTODURABLE_IDEMPOTENCY=off`` in the environment turns the
automatic installation off (explicit middleware still works).
"""

from __future__ import annotations

import os
from types import ModuleType

from .._core._post_import import when_imported

ENV_SWITCH = "AUTODURABLE_IDEMPOTENCY"
# The modules that define the application classes `_auto.patch_module` patches.
_TARGETS = (
    "django.core.handlers.asgi",
    "django.core.handlers.wsgi",
    "flask.app",
    "starlette.applications",
)
_installed = False


def _patch(module: ModuleType) -> None:
    from ._auto import patch_module

    patch_module(module.__name__, module)


def install() -> None:
    """Patch the frameworks' application classes now or when they are imported."""
    global _installed
    if _installed or os.environ.get(ENV_SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return
    _installed = True
    for name in _TARGETS:
        when_imported(name, _patch)
