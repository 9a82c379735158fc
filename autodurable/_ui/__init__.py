"""``autodurable ui``: a local web dashboard of the state store.

Pages list and filter workflows, show one workflow's steps on a timeline with
its values, errors, messages and lineage, and act on it (cancel, resume, fork,
send a message) through the same operations as the command line, each after a
confirmation. Starlette and uvicorn (the ``ui`` extra) are imported only when
a dashboard is created.

Invariants (each module states its own): values are HTML-escaped and never
decoded into application types; nothing changes on a GET; beyond loopback a
token is required; read-only mode offers and accepts no action.
"""

from __future__ import annotations

from ._options import UiOptions

__all__ = ["UiOptions"]
