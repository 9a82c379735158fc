"""The pytest plugin of autodurable (entry point ``pytest11``: ``autodurable``).

It only adds what a test asks for:

- the ``durable`` fixture: a clean runtime on a throwaway store for the test
  (SQLite in the test's temporary folder; a fresh schema of the PostgreSQL
  server named by ``AUTODURABLE_TEST_DATABASE_URL`` when it is set); its value
  is the database URL;
- the ``durable_clock`` fixture: virtual time on that store (durable sleeps,
  timeouts, backoff and deadlines skip ahead);
- the ``crash_sweep`` marker: ``@pytest.mark.crash_sweep(workflow, *args)``
  sweeps the workflow (`autodurable.testing.crash_sweep`) on that store before
  the test's body runs, which then gets the report from the
  ``crash_sweep_report`` fixture;
- the ``--autodurable-replay DIR`` option: every history in DIR (``*.json``,
  written by ``autodurable workflows export``) is a test that replays it
  against the current code (`replay_check`) and fails at its first divergence.

Invariant: importing it imports nothing of autodurable's runtime, and a test
that uses neither the fixtures nor the marker runs exactly as without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--autodurable-replay DIR``: recorded histories as tests."""
    parser.getgroup("autodurable").addoption(
        "--autodurable-replay",
        action="append",
        default=[],
        metavar="DIR",
        help="replay every workflow history (*.json) in DIR against the current code, "
        "one test each (repeat for more folders)",
    )


class HistoryItem(pytest.Item):
    """One recorded history, replayed against the current code."""

    def __init__(self, *, history: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history

    def runtest(self) -> None:
        """Replay the history; fail with its first divergence."""
        from .._control._replay import replay_check

        outcome = replay_check(self.history)
        if not outcome.ok:
            raise AssertionError(f"{self.history}: {outcome}")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.history, 0, f"replay of {self.history.name}"

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        """The divergence (or the bad file), without a traceback into the replay."""
        return str(excinfo.value)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add a test per history in each ``--autodurable-replay`` folder."""
    for folder in config.getoption("autodurable_replay"):
        found = sorted(Path(folder).glob("*.json"))
        if not found:
            raise pytest.UsageError(f"--autodurable-replay {folder}: no *.json history there")
        for path in found:
            name = f"autodurable-replay[{path.name}]"
            items.append(HistoryItem.from_parent(session, name=name, history=path))


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
def durable_clock(durable: str) -> Iterator[Any]:
    """Virtual time for the test (`autodurable.testing.virtual_time`): durable waits skip
    ahead at once; ``durable_clock.advance(days=1)`` moves it by hand."""
    from ._virtual import virtual_time

    with virtual_time() as clock:
        yield clock


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
