"""Configuration: where state lives and the project-wide defaults.

Invariants:
- Sources, lowest priority first: built-in defaults, ``[tool.autodurable]`` in
  the nearest pyproject.toml (searched upwards from the project's starting
  folder: the script's folder for ``autodurable run script.py``, the working
  directory otherwise),
  the ``AUTODURABLE_DATABASE_URL``, ``AUTODURABLE_APP_VERSION`` and
  ``AUTODURABLE_TELEMETRY`` environment variables, `configure(...)`.
- Every source is validated with the same model; an unknown key or a bad value
  raises `ConfigError` naming the source, the key and the problem.
- ``telemetry`` is off unless a source turns it on (``true`` or a table); turned
  on, OpenTelemetry must be importable, else `ConfigError` names the extra to
  install. Validating it never imports OpenTelemetry when it is off.
- `Settings.database_url` is the URL as configured; the runtime opens it
  resolved by `resolve_database_url`: a relative SQLite path (the default
  ``.autodurable/state.db`` included) is relative to the project root (the
  folder of the nearest pyproject.toml, else the starting folder), never to
  the working directory, so state is found from any working directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from .._errors import AutodurableError, ConfigError
from .._project import (
    DEFAULT_DATABASE_URL,
    DEFAULT_SENTINEL,
    ENV_APP_VERSION,
    ENV_DATABASE_URL,
    find_pyproject,
    project_root,
    read_pyproject_section,
    resolve_database_url,
)
from .._rates import parse_rate
from ._fields import (
    Check,
    Invalid,
    InvalidFields,
    Record,
    field,
    flag,
    integer,
    items,
    number,
    one_of,
    optional,
    record,
    table,
    text,
)
from ._options import CallOptions

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_APP_VERSION",
    "ENV_DATABASE_URL",
    "Settings",
    "find_pyproject",
    "load_settings",
    "project_root",
    "read_pyproject_section",
    "resolve_database_url",
]


def _accepted_by(rule: Callable[[str], object]) -> Callable[[str], str]:
    """A check that keeps a string `rule` accepts; its error is the problem."""

    def check(value: str) -> str:
        try:
            rule(value)
        except AutodurableError as exc:  # ConfigError included
            raise Invalid(str(exc)) from None
        return value

    return check


_RATE = optional(text().then(_accepted_by(parse_rate)))  # "60/min", "25/s" (`_rates`)
_COUNT = optional(integer(ge=1))


def _is_qualified(name: str) -> bool:
    """Whether `name` is ``"module:qualname"``."""
    module, sep, qualname = name.partition(":")
    return bool(sep and module and qualname)


def _qualified(refusal: str) -> Check:
    """A "module:qualname" string; `refusal` says why another is refused (``{name}``: it)."""

    def check(name: str) -> str:
        if not _is_qualified(name):
            raise Invalid(refusal.format(name=repr(name)))
        return name

    return text().then(check)


class QueueSettings(Record):
    """One queue's limits in ``[tool.autodurable.queues.NAME]``: they override the code's."""

    concurrency: int | None = field(default=None, check=_COUNT)
    worker_concurrency: int | None = field(default=None, check=_COUNT)
    rate: str | None = field(default=None, check=_RATE)
    partitioned: bool | None = field(default=None, check=optional(flag()))


class LimitSettings(Record):
    """One limit in ``[tool.autodurable.limits]``, on every step that calls a matching API."""

    concurrency: int | None = field(default=None, check=_COUNT)  # attempts in flight, all processes
    # "60/min": attempts (or `units`) per period, all processes
    rate: str | None = field(default=None, check=_RATE)
    # "module:function" given the step's arguments, returning what one attempt counts
    # for in `rate` (tokens, say); by default 1.
    units: str | None = field(
        default=None,
        check=optional(
            _qualified(
                "units {name} must name a function as 'module:function', "
                "e.g. 'app.llm:prompt_tokens'"
            )
        ),
    )

    def check_whole(self, values: Mapping[str, Any]) -> None:
        """A limit limits something; units count against a rate."""
        if values["concurrency"] is None and values["rate"] is None:
            raise Invalid("a limit needs concurrency = N, rate = 'COUNT/PERIOD', or both")
        if values["units"] is not None and values["rate"] is None:
            raise Invalid("units count against a rate: add rate = 'COUNT/PERIOD'")


class ScheduleSettings(Record):
    """One schedule in ``[tool.autodurable.schedules.NAME]``."""

    # "module:qualname" of the workflow each tick starts
    workflow: str = field(
        check=_qualified("workflow {name} must be 'module:qualname', e.g. 'app.jobs:nightly'")
    )
    cron: str = field(check=text())
    timezone: str = field(default="UTC", check=text())
    catch_up: Literal["latest", "all", "skip"] = field(
        default="latest", check=one_of("latest", "all", "skip")
    )


ENV_TELEMETRY = "AUTODURABLE_TELEMETRY"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class TelemetrySettings(Record):
    """``[tool.autodurable.telemetry]`` (or ``telemetry = true``): OpenTelemetry traces
    and metrics through the global tracer and meter providers."""

    # a table turns it on unless it says enabled = false
    enabled: bool = field(default=True, check=flag())
    # a span per workflow execution and per step attempt
    traces: bool = field(default=True, check=flag())
    # counters and histograms (see autodurable._core._otel)
    metrics: bool = field(default=True, check=flag())

    @property
    def active(self) -> bool:
        """Whether anything is emitted."""
        return self.enabled and (self.traces or self.metrics)


_OFF = TelemetrySettings(enabled=False)


class BoundarySettings(Record):
    """``[tool.autodurable.boundaries]``: which HTTP clients' requests workflow code
    records at their transport (``autodurable._core._boundary_http``); each on unless
    set to false."""

    # httpx sync and async: the openai and anthropic SDKs
    httpx: bool = field(default=True, check=flag())
    urllib3: bool = field(default=True, check=flag())  # urllib3, and so requests and botocore
    aiohttp: bool = field(default=True, check=flag())  # aiohttp's client sessions (3.12+)

    def names(self) -> tuple[str, ...]:
        """The boundaries turned on."""
        return tuple(name for name in self.declared if getattr(self, name))


def _boundaries(values: Any) -> BoundarySettings:
    """`BoundarySettings` from a table; an unknown name says what the boundaries are."""
    if isinstance(values, dict):
        unknown = sorted(set(values) - set(BoundarySettings.declared))
        if unknown:
            raise Invalid(
                f"unknown boundary {', '.join(map(repr, unknown))}: the boundaries are "
                f"{', '.join(BoundarySettings.declared)} (requests and botocore go through urllib3)"
            )
    boundaries: BoundarySettings = record(BoundarySettings)(values)
    return boundaries


def _check_url(url: str) -> None:
    from .._store import check_url  # the stores own their URL formats

    check_url(url)


def _module_name(name: str) -> str:
    if not all(part.isidentifier() for part in name.split(".")):
        raise Invalid(
            f"allowed_modules entry {name!r} is not a module name; "
            "write dotted names such as 'app.models'"
        )
    return name


def _api_keys(limits: dict[str, LimitSettings]) -> dict[str, LimitSettings]:
    for key in limits:
        prefix = key[:-2] if key.endswith(".*") else key
        if key != "*" and not all(part.isidentifier() for part in prefix.split(".")):
            raise Invalid(
                f"limit key {key!r} is not an API name: write a dotted name or prefix "
                "such as 'openai.*' or 'stripe.Charge.create'"
            )
    return limits


def _qualified_keys(roles: dict[str, str]) -> dict[str, str]:
    for key in roles:
        if not _is_qualified(key):
            raise Invalid(
                f"role key {key!r} must name a function as 'module:qualname', "
                "for example 'app.billing:charge' or 'app.jobs:Worker.run'"
            )
    return roles


def _telemetry(value: Any) -> TelemetrySettings:
    """``true``/``false`` or a table; turned on, OpenTelemetry must be importable."""
    table = TelemetrySettings(enabled=value) if isinstance(value, bool) else value
    settings: TelemetrySettings = record(TelemetrySettings)(table)
    if settings.active:
        import importlib.util  # only when it is on: off, nothing is looked up

        if importlib.util.find_spec("opentelemetry") is None or not _has_api():
            raise Invalid(
                "telemetry is on, but OpenTelemetry is not installed: "
                "pip install 'autodurable[otel]'"
            )
    return settings


_NAMES = items(text(), "strings")


class Settings(Record):
    """Validated project settings (``[tool.autodurable]`` and `configure`)."""

    database_url: str = field(
        default=DEFAULT_DATABASE_URL, check=text(min_length=1).then(_accepted_by(_check_url))
    )
    allow_pickle: bool = field(default=False, check=flag())
    # Modules that decoding may import to find a recorded class (by default it
    # imports nothing: only classes of modules the program imported already).
    allowed_modules: tuple[str, ...] = field(
        default=(), check=items(text().then(_module_name), "module names")
    )
    lease_seconds: float = field(default=30.0, check=number(gt=0))
    # The version recorded on every workflow; by default a digest of the source
    # file of each workflow's function (see `_version`).
    app_version: str | None = field(
        default=None, check=optional(text(min_length=1, max_length=200))
    )
    steps: CallOptions = field(default=CallOptions(), check=record(CallOptions))
    # Transparent durability (the analyser, the import hook, the sentinel):
    # more I/O modules or functions, as dotted names
    io: tuple[str, ...] = field(default=(), check=_NAMES)
    # "module:qualname" -> role
    roles: dict[str, Literal["step", "workflow", "plain"]] = field(
        default={}, check=table(one_of("step", "workflow", "plain")).then(_qualified_keys)
    )
    # glob patterns (relative to the project) never rewritten
    exclude: tuple[str, ...] = field(default=(), check=_NAMES)
    # I/O in workflow code outside steps: "warn" logs it, "warnings" warns, "error" raises
    sentinel: Literal["warn", "warnings", "error", "off"] = field(
        default=DEFAULT_SENTINEL, check=one_of("warn", "warnings", "error", "off")
    )
    # [tool.autodurable.queues.NAME]: limits that override those the code declares.
    queues: dict[str, QueueSettings] = field(default={}, check=table(record(QueueSettings)))
    # [tool.autodurable.schedules.NAME]: workflows started at every tick of a cron
    # expression (the cron and the zone are checked where croniter is at hand).
    schedules: dict[str, ScheduleSettings] = field(
        default={}, check=table(record(ScheduleSettings))
    )
    # What recover() does at start-up with unfinished workflows of another version of
    # their code: "never" leaves them to processes of that version; "when-compatible"
    # moves to this code those whose history replays on it (autodurable._control._upgrade).
    upgrade: Literal["never", "when-compatible"] = field(
        default="never", check=one_of("never", "when-compatible")
    )
    # [tool.autodurable.limits]: API name or prefix ("openai.*") -> its limit, applied
    # to every step that calls a matching API (see autodurable._core._limits).
    limits: dict[str, LimitSettings] = field(
        default={}, check=table(record(LimitSettings)).then(_api_keys)
    )
    # [tool.autodurable.ai]: read and validated by `autodurable ai` and `autodurable mcp`
    # only (autodurable._ai._settings), so a model's settings never stop a run.
    ai: dict[str, Any] = field(default={}, check=table())
    # [tool.autodurable.ui]: the dashboard's own settings (`autodurable._ui` checks them).
    ui: dict[str, Any] = field(default={}, check=table())
    # Values whose encoded text is longer go out of line (`_large`); longer than the
    # limit, they are refused when recorded.
    large_value_threshold: int = field(default=256 * 1024, check=integer(ge=1024))
    large_value_limit: int = field(default=1024 * 1024 * 1024, check=integer(ge=1024))
    # [tool.autodurable.telemetry] or telemetry = true: OpenTelemetry (off by default).
    telemetry: TelemetrySettings = field(default=_OFF, check=Check(_telemetry))
    # Requests that workflow code (or a library it calls) sends through an HTTP client's
    # transport, recorded there as steps (docs/agents.md): None (the default) under
    # `autodurable run` only, true also without it, false never.
    record_http: bool | None = field(default=None, check=optional(flag()))
    # [tool.autodurable.boundaries]: single HTTP clients turned off (httpx = false).
    boundaries: BoundarySettings = field(default=BoundarySettings(), check=Check(_boundaries))

    def http_boundaries(self, launched: bool) -> tuple[str, ...]:
        """The HTTP clients whose requests are recorded; `launched`: under `autodurable run`."""
        if self.record_http is False or (self.record_http is None and not launched):
            return ()
        return self.boundaries.names()


def _has_api() -> bool:
    """Whether the OpenTelemetry API is importable (looked up without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except ModuleNotFoundError:
        return False


def _telemetry_from_environment(raw: str) -> bool:
    """``AUTODURABLE_TELEMETRY``'s switch; `ConfigError` for anything but a yes or a no."""
    value = raw.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ConfigError(
        f"{ENV_TELEMETRY}={raw!r}: expected 1/true/yes/on to turn telemetry on, or 0/false/no/off"
    )


def load_settings(overrides: dict[str, Any] | None = None, cwd: Path | None = None) -> Settings:
    """Merge every configuration source into validated `Settings`."""
    pyproject = find_pyproject(cwd)
    values: dict[str, Any] = {}
    section = read_pyproject_section(pyproject)
    _validate(f"[tool.autodurable] in {pyproject}", section)
    values.update(section)
    env_url = os.environ.get(ENV_DATABASE_URL)
    if env_url:
        values["database_url"] = env_url
    env_version = os.environ.get(ENV_APP_VERSION)
    if env_version:
        values["app_version"] = env_version
    env_telemetry = os.environ.get(ENV_TELEMETRY)
    if env_telemetry is not None:
        on = _telemetry_from_environment(env_telemetry)
        table = values.get("telemetry")  # the pyproject's table keeps its other keys
        values["telemetry"] = {**table, "enabled": on} if isinstance(table, dict) else on
    if overrides:
        _validate("configure() arguments", overrides)
        values.update(overrides)
    return _validate("configuration", values)


def _validate(where: str, values: dict[str, Any]) -> Settings:
    try:
        return Settings(**values)
    except InvalidFields as exc:
        raise ConfigError(exc.describe(where)) from None
