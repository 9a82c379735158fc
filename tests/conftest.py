"""Shared fixtures: every test runs in its own working directory and database.

Plain helper functions live in tests/helpers.py; this module holds fixtures, and
the order in which test files run.

Stores: tests of workflow semantics run once per store named in the environment
variable ``AUTODURABLE_TEST_STORES`` (a comma list of ``sqlite`` and
``postgresql``; default: both). ``AUTODURABLE_TEST_STORES=sqlite`` runs SQLite
only, e.g. on a machine without PostgreSQL. When ``postgresql`` is selected and
its server binaries are missing, those tests fail (they are never skipped):
see tests/_postgres.py.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from autodurable._core._runtime import _reset_overrides_for_tests, get_runtime

from .helpers import Backend, crash_points, selected_stores

TEST_STORES = selected_stores()

# The hook's caches go to the user's cache when Python writes no bytecode: the tests
# and the programs they start use a folder of their own, never the real one.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="autodurable-tests-cache-")

# autodurable's own pytest plugin is tested in pytest sessions run by pytester.
pytest_plugins = ["pytester"]

# The longest files (minutes each: every boundary of real programs, killed and run
# again), run first. The test command runs two processes, each taking whole files
# in this order: collected last, these would leave one process running them alone
# at the end.
LONGEST_FILES = ("tests/testing/test_sweep_billing.py", "tests/testing/test_sweep_legacy.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run `LONGEST_FILES` first; every other test keeps its place."""
    items.sort(key=lambda item: item.nodeid.partition("::")[0] not in LONGEST_FILES)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory (so the default database is fresh) and no overrides."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTODURABLE_DATABASE_URL", raising=False)
    _reset_overrides_for_tests()
    yield tmp_path
    _reset_overrides_for_tests()


@pytest.fixture
def store():
    """The store of the current (per-test) runtime."""
    return get_runtime().store


@pytest.fixture
def unmeasured_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's child processes run without coverage measurement.

    For tests that run the same program many times over (crash sweeps, matrices of
    kills and resumes): the code their children run is measured by other tests, and
    measuring each of their runs made them half as slow again under coverage. Only
    lowers what coverage sees, never raises it.
    """
    monkeypatch.delenv("COVERAGE_PROCESS_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _disarm_crash_points() -> Iterator[None]:
    crash_points.clear()
    yield
    crash_points.clear()


# A throwaway PostgreSQL server for the tests that need one (see tests/_postgres.py).
from ._postgres import postgres_server, postgres_url  # noqa: E402, F401


@pytest.fixture(params=TEST_STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each selected store in turn: a new SQLite file, a new schema.

    Nothing is configured: pass it to child processes (``AUTODURABLE_DATABASE_URL``)
    or to `open_store`.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(database_url: str) -> str:
    """The runtime configured on each selected store in turn; the database's URL.

    Modules of workflow semantics use it for every test with
    ``pytestmark = pytest.mark.usefixtures("database")``.
    """
    from autodurable import configure

    configure(database_url=database_url)
    return database_url


@pytest.fixture
def backend(database_url: str) -> Iterator[Backend]:
    """Stores opened directly (no runtime) on each selected database; closed afterwards."""
    found = Backend(database_url)
    yield found
    for opened in found.stores:
        opened.close()
