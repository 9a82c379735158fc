"""A clean runtime on a throwaway store, and modules imported as the hook rewrites them.

Invariants:
- `throwaway_runtime` leaves nothing behind: the configuration it set is
  forgotten when it ends (the runtime retired, its executor released), and a
  PostgreSQL schema it made is dropped; the SQLite file lives in the folder
  given (a test's temporary folder).
- `durable_import` rewrites only the project's own modules, exactly as
  ``autodurable run`` does, and removes its finder afterwards: modules the test
  imports later are imported plainly.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ENV_TEST_DATABASE_URL = "AUTODURABLE_TEST_DATABASE_URL"


@contextmanager
def throwaway_runtime(folder: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """A clean runtime on a store of its own for the block; yields its database URL.

    SQLite in `folder` (a new temporary folder by default); a PostgreSQL server
    when ``AUTODURABLE_TEST_DATABASE_URL`` names one: a fresh schema there,
    dropped at the end.
    """
    from .._core._runtime import _reset_overrides_for_tests, configure

    server = os.environ.get(ENV_TEST_DATABASE_URL)
    with tempfile.TemporaryDirectory() as spare:
        where = Path(folder) if folder is not None else Path(spare)
        url = _fresh_schema(server) if server else f"sqlite:///{where / 'state.db'}"
        _reset_overrides_for_tests()
        try:
            configure(database_url=url)
            yield url
        finally:
            _reset_overrides_for_tests()
            if server:
                _drop_schema(url)


def _fresh_schema(url: str) -> str:
    """`url` with a schema of its own (``schema=autodurable_test_<hex>``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    query.append(("schema", f"autodurable_test_{uuid.uuid4().hex[:12]}"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _drop_schema(url: str) -> None:
    import psycopg

    from .._store._postgres_url import parse_postgres_url

    parsed = parse_postgres_url(url)
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{parsed.schema}" CASCADE')


def durable_import(name: str, root: str | os.PathLike[str] | None = None) -> ModuleType:
    """Import the module `name` of the project at `root` (by default the project of the
    working directory) rewritten as ``autodurable run`` rewrites it: its functions
    that do I/O become steps, those calling them workflow code.

    A copy imported plainly before is replaced in ``sys.modules``.
    """
    from .._core._runtime import get_runtime
    from .._hook._cache import ProjectState
    from .._hook._finder import install, uninstall
    from .._project import project_root

    settings = get_runtime().settings
    where = Path(root) if root is not None else project_root(Path.cwd())
    state = ProjectState(where, settings.io, settings.roles, settings.exclude)
    sys.modules.pop(name, None)
    finder = install(state)
    try:
        return importlib.import_module(name)
    finally:
        uninstall(finder)
