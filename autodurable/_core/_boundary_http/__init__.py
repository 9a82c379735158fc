"""Recording at the library boundary: HTTP clients' transports as steps.

Workflow code that reaches an HTTP client's transport, even through
third-party code the import hook never rewrites (an agent framework, an LLM
SDK), gets each request recorded as a step there (`_exchange`), one module per
library: ``httpx`` (`_httpx`, sync and async, httpx and httpx2; the openai and
anthropic SDKs), ``urllib3`` (`_urllib3`; requests and botocore too) and ``aiohttp``
(`_aiohttp`, a client middleware innermost; litellm and google-genai's async
client).

Invariants:
- `install(names)` patches each named library when it is imported (a wrapt
  post-import hook, which runs at once for a library already imported), once:
  installing again changes only which libraries are on. `uninstall()` puts the
  original methods back (for tests, and for a configuration that turns them
  off).
- A patched method's wrapper runs only in workflow code (in a run, outside any
  step): wrapt's `enabled` test is `_context.workflow_code`, one ContextVar
  read, after which the original method is called with the original arguments.
  Outside workflows and inside steps nothing else runs, and nothing changes.
- Who installs: `autodurable run` (the launcher and every process of
  ``run -- CMD``) unless ``record_http = false``; a program that uses the
  decorators without the launcher when ``record_http = true`` (pyproject or
  ``configure``), when its runtime is made. ``[tool.autodurable.boundaries]``
  turns single libraries off.
- Global mutable state: the libraries on, guarded by a lock.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from .. import _wrapt
from .._context import workflow_code
from .._post_import import when_imported

# wrapt's `enabled` test: the run (truthy) in workflow code, else None; called as is,
# a C method, so that a call outside workflow code pays no Python frame for it.
_IN_WORKFLOW_CODE = cast("Callable[[], bool]", workflow_code)

# The boundaries, by the name configuration uses: the module that holds their targets.
LIBRARIES = {
    "httpx": "autodurable._core._boundary_http._httpx",
    "urllib3": "autodurable._core._boundary_http._urllib3",
    "aiohttp": "autodurable._core._boundary_http._aiohttp",
}
# The modules whose import makes a library's targets available (httpx2: httpx's
# successor package, which the openai SDK uses from version 3 on).
_TRIGGERS = {
    "httpx": ("httpx", "httpx2"),
    "urllib3": ("urllib3.connectionpool",),
    "aiohttp": ("aiohttp.client",),
}

_lock = threading.RLock()  # a post-import hook may run inside `install`
_on: set[str] = set()
_hooked: set[str] = set()  # libraries with a post-import hook registered

if TYPE_CHECKING:
    import wrapt

    _FunctionWrapper = wrapt.FunctionWrapper[..., Any]
else:  # wrapt's C type takes no type arguments at run time
    _FunctionWrapper = _wrapt.FunctionWrapper


class _BoundaryWrapper(_FunctionWrapper):
    """A FunctionWrapper of ours, so that install and uninstall know it."""


def install(names: Iterable[str] = tuple(LIBRARIES)) -> None:
    """Record requests of the libraries `names` in workflow code (see the invariants)."""
    wanted = set(names)
    unknown = wanted - set(LIBRARIES)
    if unknown:
        raise ValueError(f"unknown HTTP boundaries: {', '.join(sorted(unknown))}")
    with _lock:
        for name in sorted(set(_on) - wanted):
            _unpatch(name)
        _on.clear()
        _on.update(wanted)
        for name in sorted(wanted):
            if name in _hooked:
                _patch(name)  # what is imported already; the hooks see the rest
                continue
            _hooked.add(name)
            for trigger in _TRIGGERS[name]:
                when_imported(trigger, _hook_for(name))


def installed() -> frozenset[str]:
    """The libraries whose requests are recorded in workflow code."""
    return frozenset(_on)


def uninstall() -> None:
    """Put back every patched method; nothing is recorded at the boundary any more."""
    with _lock:
        for name in sorted(_on):
            _unpatch(name)
        _on.clear()


def _hook_for(name: str) -> Callable[[Any], None]:
    def hook(module: Any) -> None:
        with _lock:
            if name in _on:
                _patch(name)

    return hook


def _targets(name: str) -> tuple[tuple[str, str, Any], ...]:
    """The library's targets; none while it is not imported (its module would import it)."""
    if not any(trigger in sys.modules for trigger in _TRIGGERS[name]):
        return ()
    return importlib.import_module(LIBRARIES[name]).TARGETS  # type: ignore[no-any-return]


def _patch(name: str) -> None:
    for module_name, path, wrapper in _targets(name):
        target = sys.modules.get(module_name)
        if target is None:
            continue
        parent, attribute, original = _wrapt.resolve_path(target, path)
        if isinstance(original, _BoundaryWrapper):
            continue
        setattr(parent, attribute, _BoundaryWrapper(original, wrapper, _IN_WORKFLOW_CODE))


def _unpatch(name: str) -> None:
    for module_name, path, _wrapper in _targets(name):
        target = sys.modules.get(module_name)
        if target is None:
            continue
        parent, attribute, current = _wrapt.resolve_path(target, path)
        if isinstance(current, _BoundaryWrapper):
            setattr(parent, attribute, current.__wrapped__)
