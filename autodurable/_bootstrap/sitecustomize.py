"""Loaded by Python at start-up in commands run by ``autodurable run -- CMD``.

Installs the import hook, then hands over to any other ``sitecustomize`` that
this one shadows, so the environment's own customisation still runs. Prints
nothing: programs that read their children's stderr see what they would see
without the launcher.
"""

import importlib
import os
import sys

from autodurable._hook._child import bootstrap

bootstrap()

_here = os.path.dirname(os.path.abspath(__file__))
_saved = sys.path[:]
_this = sys.modules.pop("sitecustomize", None)
try:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    importlib.import_module("sitecustomize")
except ImportError:
    pass
finally:
    sys.path[:] = _saved
    # The import system takes this module back out of sys.modules when its code
    # ends (a missing entry is "Error in sitecustomize: KeyError" on stderr).
    if _this is not None:
        sys.modules["sitecustomize"] = _this
