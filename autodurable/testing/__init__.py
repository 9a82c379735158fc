"""Test tools for durable workflows: prove them crash-safe, with a throwaway store.

    from autodurable.testing import crash_sweep, effect

    def test_checkout_survives_any_crash(durable):      # the pytest plugin's fixture
        report = crash_sweep(checkout, "order-42")
        assert report.result["status"] == "confirmed"

- `crash_sweep` crashes a workflow at every step boundary, resumes it, and
  fails with the first boundary at which the outcome differs from a run
  without a crash (`SweepFailure`); `sweep_program` does the same to a program
  run by ``autodurable run`` in child processes, killed for real.
- `effect` is how a test's fakes tell the sweep that the outside world changed.
- `replay_check` runs the current code against a recorded history (written
  by ``autodurable workflows export``) without executing a step.
- `durable_import` imports a project module rewritten as ``autodurable run``
  would rewrite it.
- `throwaway_runtime` is a clean runtime on a throwaway store (what the
  ``durable`` fixture of the pytest plugin gives each test).
- `virtual_time` makes durable sleeps, receive timeouts, retries' backoff and
  deadlines take no real time (``clock.advance(days=1)``).

The pytest plugin (``autodurable.testing.plugin``, registered through the
``pytest11`` entry point) adds the ``durable`` fixture and the
``crash_sweep`` marker, and does nothing in tests that use neither.
"""

import importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
    from .._control._histories import HistoryError
    from .._control._replay import ReplayOutcome, replay_check
    from ._effects import effect
    from ._programs import ProgramReport, sweep_program
    from ._runtime import durable_import, throwaway_runtime
    from ._sweep import Attempt, Crash, SweepFailure, SweepReport, crash_sweep
    from ._virtual import VirtualClock, virtual_time

__all__ = [
    "Attempt",
    "Crash",
    "HistoryError",
    "ProgramReport",
    "ReplayOutcome",
    "SweepFailure",
    "SweepReport",
    "VirtualClock",
    "crash_sweep",
    "durable_import",
    "effect",
    "replay_check",
    "sweep_program",
    "throwaway_runtime",
    "virtual_time",
]

# Where each name lives: imported on first use, so that the pytest plugin (a module
# of this package, loaded in every pytest session) costs nothing until a test asks.
_HOME = {
    "effect": "_effects",
    "HistoryError": ".._control._histories",
    **dict.fromkeys(("ReplayOutcome", "replay_check"), ".._control._replay"),
    **dict.fromkeys(("ProgramReport", "sweep_program"), "_programs"),
    **dict.fromkeys(("durable_import", "throwaway_runtime"), "_runtime"),
    **dict.fromkeys(("Attempt", "Crash", "SweepFailure", "SweepReport", "crash_sweep"), "_sweep"),
    **dict.fromkeys(("VirtualClock", "virtual_time"), "_virtual"),
}


def __getattr__(name: str) -> _Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"autodurable.{home[2:]}" if home.startswith("..") else f"{__name__}.{home}"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
