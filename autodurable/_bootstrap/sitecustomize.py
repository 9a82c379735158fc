"""Loaded by Python at start-up in commands run by ``autodurable run -- CMD``.

Installs the import hook, then runs any other ``sitecustomize`` that this one
shadows, so the environment's own customisation still runs.

Invariants:
- Prints nothing of its own: programs that read their children's stderr see
  what they would see without the launcher. (A shadowed ``sitecustomize``
  that fails is reported by Python, as it would be without the launcher.)
- The shadowed module is found on ``sys.path`` without this folder, nor any
  other copy of autodurable's bootstrap folder (a nested launcher), and is
  executed under the name ``sitecustomize`` without going through the import
  system: ``sys.modules`` and ``sys.path`` are not touched in a way the
  import of this module can notice. When this module's code ends,
  ``sys.modules["sitecustomize"]`` holds a module (this one when it is there),
  which the import system takes out and puts back; a missing entry is the
  "Error in sitecustomize ... KeyError: 'sitecustomize'" Python prints.
"""

import os
import sys

from autodurable._hook._child import bootstrap

bootstrap()


def _is_bootstrap_folder(entry: str, here: str) -> bool:
    try:
        folder = os.path.realpath(os.path.abspath(entry or "."))
    except (OSError, ValueError):
        return False
    if folder == here:
        return True
    # Another copy of autodurable's bootstrap (a launcher run by a launcher).
    parent, name = os.path.split(folder)
    return name == "_bootstrap" and os.path.basename(parent) == "autodurable"


def _run_shadowed() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    search = [entry for entry in sys.path if not _is_bootstrap_folder(entry, here)]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", search)
    if spec is None or spec.loader is None:
        return
    this = sys.modules.get(__name__)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module  # while it runs it is `sitecustomize`, as without us
    try:
        spec.loader.exec_module(module)
    finally:
        if this is not None:
            sys.modules["sitecustomize"] = this


_run_shadowed()
