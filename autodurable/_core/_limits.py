"""Limits declared on the APIs that steps call (``[tool.autodurable.limits]``):
concurrency and rate, held across every process and machine sharing the store.

    [tool.autodurable.limits]
    "openai.*" = { concurrency = 8, rate = "60/min" }
    "stripe.Charge.create" = { rate = "25/s" }

Invariants:
- A key is a dotted API name, or a prefix written ``"name.*"``; it matches that
  name and every name under it (``"openai.*"`` matches
  ``openai.OpenAI.chat.completions.create``), ``"*"`` matches every API.
- Which APIs a step calls is the analyser's answer (through
  `autodurable._wiring.step_apis`, set by the package: the core never imports
  the analyser), asked once per step function and kept; the core only matches.
- An attempt of a step in a workflow takes one permit per matching limit just
  before its body runs, all at once or none (so it never holds one limit while
  waiting for another), and returns them when the body ends: for a sync attempt
  abandoned at its timeout, when its thread really ends. Replayed steps take
  none; steps outside a workflow take none (nothing records them).
- Waiting is bounded by nothing but the limits: a rate-limited attempt wakes
  when its window has room, a concurrency-limited one when a permit comes back
  (at once in this process, by polling across processes); the process exiting
  interrupts the wait like any other.
- Without limits the runtime has no limiter and steps pay nothing for this.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import _wiring
from .._backoff import Backoff
from .._errors import ConfigError
from .._light import uuid4_hex
from .._rates import parse_rate
from .._records import Record
from .._store import Grant, LimitSpec, PermitRequest
from ._boundary import interrupted
from ._report import warn_once

if TYPE_CHECKING:
    from ._config import LimitSettings
    from ._context import Run
    from ._runtime import Runtime

# How often a waiter looks again when nothing tells it (a permit returned by
# another process): from 10 ms, doubling, to 200 ms.
_POLL_FIRST, _POLL_LONGEST = 0.01, 0.2


def key_prefix(key: str) -> str:
    """The name a limit key stands for: ``"openai.*"`` -> ``"openai"``; ``"*"`` -> ``""``."""
    if key == "*":
        return ""
    return key[:-2] if key.endswith(".*") else key


def key_matches(key: str, api: str) -> bool:
    """Whether the limit `key` applies to a call of the API named `api`."""
    prefix = key_prefix(key)
    return not prefix or api == prefix or api.startswith(prefix + ".")


class Limit(Record, frozen=True):
    """One configured limit."""

    key: str
    concurrency: int | None
    rate: tuple[int, float] | None  # (count, period in seconds)
    units: str | None  # "module:function" of the units of one attempt

    def spec(self, units: float) -> LimitSpec:
        """What the store checks for an attempt counting `units`."""
        count, period = self.rate if self.rate is not None else (None, None)
        return LimitSpec(self.key, self.concurrency, count, period, units)

    def describe(self) -> str:
        """``concurrency 8, rate 60/60s``: for messages."""
        parts = [f"concurrency {self.concurrency}"] if self.concurrency else []
        if self.rate is not None:
            parts.append(f"rate {self.rate[0]}/{self.rate[1]:g}s")
        return ", ".join(parts)


class Held:
    """The permits one attempt holds; `release` returns them (once)."""

    __slots__ = ("_limiter", "permit_id")

    def __init__(self, limiter: Limiter, permit_id: str) -> None:
        self._limiter: Limiter | None = limiter
        self.permit_id = permit_id

    def release(self) -> None:
        """Return the permits (a second call does nothing)."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.give_back(self.permit_id)


class Limiter:
    """The limits of one runtime, and the permits its steps take under them."""

    def __init__(self, runtime: Runtime, limits: Mapping[str, LimitSettings]) -> None:
        self.runtime = runtime
        self.limits = tuple(
            Limit(key, s.concurrency, parse_rate(s.rate) if s.rate else None, s.units)
            for key, s in sorted(limits.items())
        )
        self._rules: dict[tuple[str, str, str], tuple[Limit, ...]] = {}
        self._units: dict[str, Callable[..., Any]] = {}
        self._returned = threading.Condition()  # a permit of this process came back
        self._checked = False

    # -- which limits a step is under ------------------------------------------------

    def step_limits(self, run: Run, fn: Any, name: str) -> StepLimits | None:
        """The limits on the APIs `fn` calls, for a step call recorded in `run`; None if
        no API it calls has one."""
        rules = self.rules_for(fn, name)
        return StepLimits(self, rules, run, name) if rules else None

    def rules_for(self, fn: Any, name: str) -> tuple[Limit, ...]:
        """The limits an attempt of the step `name` (running `fn`) must fit in."""
        module = getattr(fn, "__module__", None) or ""
        qualname = getattr(fn, "__qualname__", None) or ""
        key = (module, qualname, name)
        found = self._rules.get(key)
        if found is None:
            apis = self._apis(module, qualname, name)
            found = tuple(
                limit for limit in self.limits if any(key_matches(limit.key, a) for a in apis)
            )
            self._rules[key] = found
        return found

    def _apis(self, module: str, qualname: str, name: str) -> tuple[str, ...]:
        resolver = _wiring.step_apis
        if resolver is None:
            warn_once(
                ("limits", "resolver"),
                "autodurable: [tool.autodurable.limits] is set but nothing can tell which "
                "APIs steps call (import autodurable before using its runtime): no step waits",
            )
            return ()
        if not self._checked:
            self._checked = True
            check = _wiring.unmatched_limit_keys
            for message in check([limit.key for limit in self.limits]) if check else ():
                warn_once(("limits", message), message)
        return resolver(module, qualname, name)

    # -- taking and returning permits -------------------------------------------------

    def _request(
        self,
        run: Run,
        place: int | str,
        name: str,
        rules: tuple[Limit, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> PermitRequest:
        specs = tuple(rule.spec(self._units_of(rule, name, args, kwargs)) for rule in rules)
        return PermitRequest(uuid4_hex(), run.executor_id, run.workflow_id, str(place), name, specs)

    def _units_of(
        self, rule: Limit, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> float:
        if rule.units is None:
            return 1.0
        function = self._units.get(rule.units)
        if function is None:
            from ._names import resolve

            try:
                function = self._units[rule.units] = resolve(rule.units)
            except Exception as exc:
                raise ConfigError(
                    f"the units function {rule.units!r} of the limit {rule.key!r} cannot be "
                    f"imported ({type(exc).__name__}: {exc}); name an importable "
                    "'module:function' in [tool.autodurable.limits]"
                ) from None
        units = function(*args, **kwargs)
        if isinstance(units, bool) or not isinstance(units, int | float) or units < 0:
            raise ConfigError(
                f"the units function {rule.units!r} of the limit {rule.key!r} returned "
                f"{units!r} for step {name!r}; it must return a number of 0 or more"
            )
        return float(units)

    def acquire(
        self,
        run: Run,
        place: int | str,
        name: str,
        rules: tuple[Limit, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Held:
        """Wait until every limit in `rules` has room, and take a permit of each."""
        request = self._request(run, place, name, rules, args, kwargs)
        started, backoff = time.monotonic(), Backoff(_POLL_FIRST, _POLL_LONGEST)
        while True:
            grant = self._try(request, started)
            if grant.granted:
                return Held(self, request.permit_id)
            with self._returned:
                if self.runtime.stopping.is_set():
                    raise interrupted(run)
                self._returned.wait(_pause(grant, backoff))

    async def acquire_async(
        self,
        run: Run,
        place: int | str,
        name: str,
        rules: tuple[Limit, ...],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Held:
        """`acquire` for async steps: waits without blocking the event loop."""
        request = self._request(run, place, name, rules, args, kwargs)
        started, backoff = time.monotonic(), Backoff(_POLL_FIRST, _POLL_LONGEST)
        while True:
            grant = self._try(request, started)
            if grant.granted:
                return Held(self, request.permit_id)
            if self.runtime.stopping.is_set():
                raise interrupted(run)
            import asyncio  # on a loop: imported already

            await asyncio.sleep(_pause(grant, backoff))

    def _try(self, request: PermitRequest, started: float) -> Grant:
        waited = time.monotonic() - started
        request = PermitRequest(
            request.permit_id,
            request.executor_id,
            request.workflow_id,
            request.step,
            request.step_name,
            request.limits,
            waited,
        )
        return self.runtime.store.take_permits(request, self.runtime.executor)

    def give_back(self, permit_id: str) -> None:
        """Return a permit (and wake this process's waiters at once)."""
        try:
            self.runtime.store.return_permits(permit_id)
        except Exception as exc:  # held until this process ends: then it counts as dead
            warn_once(
                ("limits", "return", type(exc).__name__),
                f"autodurable: could not return a permit of a limit on APIs ({exc}); it "
                "counts as held until this process ends",
            )
        with self._returned:
            self._returned.notify_all()


class StepLimits:
    """The limits the attempts of one step call must fit in, and its run."""

    __slots__ = ("limiter", "name", "rules", "run")

    def __init__(self, limiter: Limiter, rules: tuple[Limit, ...], run: Run, name: str) -> None:
        self.limiter, self.rules, self.run, self.name = limiter, rules, run, name

    def acquire(self, place: int | str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Held:
        """Wait for room under every limit and take a permit of each."""
        return self.limiter.acquire(self.run, place, self.name, self.rules, args, kwargs)

    async def acquire_async(
        self, place: int | str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Held:
        """`acquire`, waiting without blocking the event loop."""
        return await self.limiter.acquire_async(
            self.run, place, self.name, self.rules, args, kwargs
        )


def _pause(grant: Grant, backoff: Backoff) -> float:
    """How long to wait before the next try: until the rate window has room, or the
    next poll for a returned permit, whichever comes first."""
    if grant.retry_at is None:
        return backoff.next()
    return max(0.0, min(grant.retry_at - time.time(), _POLL_LONGEST))
