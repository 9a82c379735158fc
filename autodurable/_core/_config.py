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
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
from ._options import CallOptions, describe_validation_error

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


def _checked_rate(rate: str | None) -> str | None:
    """`rate` if it parses (see `autodurable._rates`); the problem as a ValueError."""
    if rate is not None:
        try:
            parse_rate(rate)
        except AutodurableError as exc:
            raise ValueError(str(exc)) from None
    return rate


class QueueSettings(BaseModel):
    """One queue's limits in ``[tool.autodurable.queues.NAME]``: they override the code's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int | None = Field(default=None, ge=1)
    worker_concurrency: int | None = Field(default=None, ge=1)
    rate: str | None = None  # "60/min", "25/s" (see autodurable._rates)
    partitioned: bool | None = None

    @field_validator("rate")
    @classmethod
    def _a_rate(cls, rate: str | None) -> str | None:
        return _checked_rate(rate)


class LimitSettings(BaseModel):
    """One limit in ``[tool.autodurable.limits]``, on every step that calls a matching API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int | None = Field(default=None, ge=1)  # attempts in flight, all processes
    rate: str | None = None  # "60/min": attempts (or `units`) per period, all processes
    # "module:function" given the step's arguments, returning what one attempt counts
    # for in `rate` (tokens, say); by default 1.
    units: str | None = None

    @field_validator("rate")
    @classmethod
    def _a_rate(cls, rate: str | None) -> str | None:
        return _checked_rate(rate)

    @field_validator("units")
    @classmethod
    def _a_function(cls, units: str | None) -> str | None:
        if units is not None:
            module, sep, name = units.partition(":")
            if not (sep and module and name):
                raise ValueError(
                    f"units {units!r} must name a function as 'module:function', "
                    "e.g. 'app.llm:prompt_tokens'"
                )
        return units

    @model_validator(mode="after")
    def _something_limited(self) -> LimitSettings:
        if self.concurrency is None and self.rate is None:
            raise ValueError("a limit needs concurrency = N, rate = 'COUNT/PERIOD', or both")
        if self.units is not None and self.rate is None:
            raise ValueError("units count against a rate: add rate = 'COUNT/PERIOD'")
        return self


class ScheduleSettings(BaseModel):
    """One schedule in ``[tool.autodurable.schedules.NAME]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow: str  # "module:qualname" of the workflow each tick starts
    cron: str
    timezone: str = "UTC"
    catch_up: Literal["latest", "all", "skip"] = "latest"

    @field_validator("workflow")
    @classmethod
    def _qualified(cls, name: str) -> str:
        module, sep, qualname = name.partition(":")
        if not (sep and module and qualname):
            raise ValueError(
                f"workflow {name!r} must be 'module:qualname', e.g. 'app.jobs:nightly'"
            )
        return name


ENV_TELEMETRY = "AUTODURABLE_TELEMETRY"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class TelemetrySettings(BaseModel):
    """``[tool.autodurable.telemetry]`` (or ``telemetry = true``): OpenTelemetry traces
    and metrics through the global tracer and meter providers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True  # a table turns it on unless it says enabled = false
    traces: bool = True  # a span per workflow execution and per step attempt
    metrics: bool = True  # counters and histograms (see autodurable._core._otel)

    @property
    def active(self) -> bool:
        """Whether anything is emitted."""
        return self.enabled and (self.traces or self.metrics)


_OFF = TelemetrySettings(enabled=False)


class BoundarySettings(BaseModel):
    """``[tool.autodurable.boundaries]``: which HTTP clients' requests workflow code
    records at their transport (``autodurable._core._boundary_http``); each on unless
    set to false."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    httpx: bool = True  # httpx sync and async: the openai and anthropic SDKs
    urllib3: bool = True  # urllib3, and so requests and botocore
    aiohttp: bool = True  # aiohttp's client sessions (3.12 and later)

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, values: Any) -> Any:
        if isinstance(values, dict):
            unknown = sorted(set(values) - set(cls.model_fields))
            if unknown:
                known = ", ".join(cls.model_fields)
                raise ValueError(
                    f"unknown boundary {', '.join(map(repr, unknown))}: the boundaries are "
                    f"{known} (requests and botocore go through urllib3)"
                )
        return values

    def names(self) -> tuple[str, ...]:
        """The boundaries turned on."""
        return tuple(name for name in type(self).model_fields if getattr(self, name))


class Settings(BaseModel):
    """Validated project settings (``[tool.autodurable]`` and `configure`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, min_length=1)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        from .._store import check_url  # the stores own their URL formats

        try:
            check_url(url)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return url

    allow_pickle: bool = False
    # Modules that decoding may import to find a recorded class (by default it
    # imports nothing: only classes of modules the program imported already).
    allowed_modules: tuple[str, ...] = ()
    lease_seconds: float = Field(default=30.0, gt=0)
    # The version recorded on every workflow; by default a digest of the source
    # file of each workflow's function (see `_version`).
    app_version: str | None = Field(default=None, min_length=1, max_length=200)
    steps: CallOptions = CallOptions()
    # Transparent durability (the analyser, the import hook, the sentinel):
    io: tuple[str, ...] = ()  # more I/O modules or functions, as dotted names
    roles: dict[str, Literal["step", "workflow", "plain"]] = {}  # "module:qualname" -> role
    exclude: tuple[str, ...] = ()  # glob patterns (relative to the project) never rewritten
    # I/O in workflow code outside steps: "warn" logs it, "warnings" warns, "error" raises
    sentinel: Literal["warn", "warnings", "error", "off"] = DEFAULT_SENTINEL
    # [tool.autodurable.queues.NAME]: limits that override those the code declares.
    queues: dict[str, QueueSettings] = {}
    # [tool.autodurable.schedules.NAME]: workflows started at every tick of a cron
    # expression (the cron and the zone are checked where croniter is at hand).
    schedules: dict[str, ScheduleSettings] = {}
    # What recover() does at start-up with unfinished workflows of another version of
    # their code: "never" leaves them to processes of that version; "when-compatible"
    # moves to this code those whose history replays on it (autodurable._control._upgrade).
    upgrade: Literal["never", "when-compatible"] = "never"
    # [tool.autodurable.limits]: API name or prefix ("openai.*") -> its limit, applied
    # to every step that calls a matching API (see autodurable._core._limits).
    limits: dict[str, LimitSettings] = {}
    # [tool.autodurable.ai]: read and validated by `autodurable ai` and `autodurable mcp`
    # only (autodurable._ai._settings), so a model's settings never stop a run.
    ai: dict[str, Any] = {}
    # [tool.autodurable.ui]: the dashboard's own settings (`autodurable._ui` checks them).
    ui: dict[str, Any] = {}
    # Values whose encoded text is longer go out of line (`_large`); longer than the
    # limit, they are refused when recorded.
    large_value_threshold: int = Field(default=256 * 1024, ge=1024)
    large_value_limit: int = Field(default=1024 * 1024 * 1024, ge=1024)
    # [tool.autodurable.telemetry] or telemetry = true: OpenTelemetry (off by default).
    telemetry: TelemetrySettings = _OFF
    # Requests that workflow code (or a library it calls) sends through an HTTP client's
    # transport, recorded there as steps (docs/agents.md): None (the default) under
    # `autodurable run` only, true also without it, false never.
    record_http: bool | None = None
    # [tool.autodurable.boundaries]: single HTTP clients turned off (httpx = false).
    boundaries: BoundarySettings = BoundarySettings()

    def http_boundaries(self, launched: bool) -> tuple[str, ...]:
        """The HTTP clients whose requests are recorded; `launched`: under `autodurable run`."""
        if self.record_http is False or (self.record_http is None and not launched):
            return ()
        return self.boundaries.names()

    @field_validator("telemetry", mode="before")
    @classmethod
    def _telemetry_switch(cls, value: Any) -> Any:
        return TelemetrySettings(enabled=value) if isinstance(value, bool) else value

    @field_validator("telemetry")
    @classmethod
    def _telemetry_installed(cls, value: TelemetrySettings) -> TelemetrySettings:
        if value.active:
            import importlib.util  # only when it is on: off, nothing is looked up

            if importlib.util.find_spec("opentelemetry") is None or not _has_api():
                raise ValueError(
                    "telemetry is on, but OpenTelemetry is not installed: "
                    "pip install 'autodurable[otel]'"
                )
        return value

    @field_validator("allowed_modules")
    @classmethod
    def _module_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(
                    f"allowed_modules entry {name!r} is not a module name; "
                    "write dotted names such as 'app.models'"
                )
        return names

    @field_validator("limits")
    @classmethod
    def _api_keys(cls, limits: dict[str, LimitSettings]) -> dict[str, LimitSettings]:
        for key in limits:
            prefix = key[:-2] if key.endswith(".*") else key
            if key != "*" and not all(part.isidentifier() for part in prefix.split(".")):
                raise ValueError(
                    f"limit key {key!r} is not an API name: write a dotted name or prefix "
                    "such as 'openai.*' or 'stripe.Charge.create'"
                )
        return limits

    @field_validator("roles")
    @classmethod
    def _qualified_keys(cls, roles: dict[str, str]) -> dict[str, str]:
        for key in roles:
            module, sep, qualname = key.partition(":")
            if not (sep and module and qualname):
                raise ValueError(
                    f"role key {key!r} must name a function as 'module:qualname', "
                    "for example 'app.billing:charge' or 'app.jobs:Worker.run'"
                )
        return roles


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
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(where, exc)) from None
