"""Rates written for people (``"60/min"``, ``"25/s"``), as (count, period in seconds).

Used by queues and by the configuration that declares them; a rate that does
not parse is an `AutodurableError` that shows the forms that do.
"""

from __future__ import annotations

import re

from ._errors import AutodurableError

_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PERIODS |= {"h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
# Matched through re's cache: compiled by the first rate read, not at every start-up.
_RATE = r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+?)s?\s*$"


def parse_rate(rate: str) -> tuple[int, float]:
    """``"60/min"``, ``"25/s"``, ``"5/10s"``, ``"1000/hour"`` as (count, period in seconds)."""
    found = re.match(_RATE, rate.lower()) if isinstance(rate, str) else None
    unit = found and _PERIODS.get(found.group(3))
    if not found or unit is None or int(found.group(1)) < 1:
        raise AutodurableError(
            f"rate {rate!r} is not a rate: write COUNT/PERIOD, for example '60/min', '25/s', "
            "'5/10s' or '1000/hour' (periods: s, min, hour, day)"
        )
    multiple = float(found.group(2)) if found.group(2) else 1.0
    if multiple <= 0:
        raise AutodurableError(f"rate {rate!r} has a period of zero; write for example '5/10s'")
    return int(found.group(1)), multiple * unit
