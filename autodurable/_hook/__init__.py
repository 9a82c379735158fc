"""The import hook: rewrites the project's own modules as they are imported.

Decides *whether* in the finder (`_finder`), *how* in the pure `rewrite`
function (`_rewrite`); rewritten code is cached next to the normal bytecode
(`_cache`). Nothing here imports the analyser until a module must be
rewritten, so warm starts stay light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HELPER", "rewrite"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _rewrite

        return getattr(_rewrite, name)
    raise AttributeError(name)
