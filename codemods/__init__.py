"""Deprecated: the libcst commands now live in `autodurable.codemods`.

This top-level package is kept for one release so that ``modules: [codemods]``
in an existing ``.libcst.codemod.yaml`` and ``from codemods.make_durable
import ...`` keep working; each submodule here *is* its namesake in
`autodurable.codemods`.
"""

import importlib
import sys
import warnings

warnings.warn(
    "the top-level 'codemods' package is deprecated; import 'autodurable.codemods' "
    "(and list 'autodurable.codemods' under modules: in .libcst.codemod.yaml)",
    DeprecationWarning,
    stacklevel=2,
)

for _name in ("_imports", "_plans", "make_durable", "strip_durable"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"autodurable.codemods.{_name}")
    globals()[_name] = sys.modules[f"{__name__}.{_name}"]
