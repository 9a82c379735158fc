"""Services a lower layer uses and a higher one provides, set by the package.

The runtime (`autodurable._core`) must know which APIs a step calls to apply
the limits declared on APIs, but only the analyser (`autodurable._analysis`,
a layer above it) can tell. The package's ``__init__`` sets these once; the
import hook replaces them with answers from the plan it has already made.

Invariant: reading them never imports anything; None means not provided.
"""

from __future__ import annotations

from collections.abc import Callable

# (module, qualname of the function a step runs, step name) -> the API names it calls
step_apis: Callable[[str, str, str], tuple[str, ...]] | None = None
# limit keys -> one warning per key that matches no API the analyser knows
unmatched_limit_keys: Callable[[list[str]], list[str]] | None = None
