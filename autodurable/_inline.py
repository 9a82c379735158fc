"""The former private name of `autodurable.inline`, kept because files codemodded
before the helpers were public import them as ``autodurable._inline``.

Invariant: this module *is* `autodurable.inline` (one module object, one set of
helpers), so code importing either name shares the same state.
"""

import sys

from . import inline

sys.modules[__name__] = inline
