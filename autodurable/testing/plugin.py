"""The pytest plugin of autodurable (entry point ``pytest11``: ``autodurable``).

It only adds what a test asks for:

- the ``durable`` fixture: a clean runtime on a throwaway store for the test
  (SQLite in the test's temporary folder; a fresh schema of the PostgreSQL
  server named by ``AUTODURABLE_TEST_DATABASE_URL`` when it is set); its value
  is the database URL;
- the ``crash_sweep`` marker: ``@pytest.mark.crash_sweep(workflow, *args)``
  sweeps the workflow (`autodurable.testing.crash_sweep`) on that store before
  the test's body runs, which then gets the report from the
  ``crash_sweep_report`` fixture.

Invariant: importing it imports nothing of autodurable's runtime, and a test
that uses neither the fixtures nor the marker runs exactly as without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (so that ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "crash_sweep(workflow, *args, **kwargs): crash the workflow at every step boundary "
        "and resume it before the test runs (autodurable.testing.crash_sweep)",
    )


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[str]:
    """A clean autodurable runtime on a throwaway store; the store's database URL."""
    from ._runtime import throwaway_runtime

    with throwaway_runtime(tmp_path) as url:
        yield url


@pytest.fixture
def crash_sweep_report(request: pytest.FixtureRequest, durable: str) -> Any:
    """The report of the test's ``crash_sweep`` marker (the sweep runs here)."""
    from ._sweep import crash_sweep

    marker = request.node.get_closest_marker("crash_sweep")
    if marker is None or not marker.args:
        raise pytest.UsageError(
            f"{request.node.nodeid} uses crash_sweep_report without "
            "@pytest.mark.crash_sweep(workflow, *args)"
        )
    workflow, *args = marker.args
    return crash_sweep(workflow, *args, **marker.kwargs)


@pytest.fixture(autouse=True)
def _autodurable_crash_sweep_marker(request: pytest.FixtureRequest) -> None:
    """A test with the marker runs its sweep even when it does not ask for the report
    (in any other test, this looks for the marker and does nothing)."""
    if request.node.get_closest_marker("crash_sweep") is not None:
        request.getfixturevalue("crash_sweep_report")
