"""Loaded by Python at start-up in commands run by ``autodurable run -- CMD``.

Installs the import hook, then hands over to any other ``sitecustomize`` that
this one shadows, so the environment's own customisation still runs.
"""

import importlib
import os
import sys

from autodurable._launcher import bootstrap

bootstrap()

_here = os.path.dirname(os.path.abspath(__file__))
_saved = sys.path[:]
try:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    del sys.modules["sitecustomize"]
    importlib.import_module("sitecustomize")
except ImportError:
    pass
finally:
    sys.path[:] = _saved
