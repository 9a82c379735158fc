"""The import hook: rewrites the project's own modules as they are imported.

Decides *whether* in the finder (`_finder`), *how* in the pure `rewrite`
function (`_rewrite`); rewritten code is cached next to the normal bytecode.
"""

from ._rewrite import HELPER, rewrite

__all__ = ["HELPER", "rewrite"]
