"""Where the model lives: endpoint settings from options, environment and pyproject.toml.

Sources, highest priority first:

1. command-line options (``--base-url``, ``--model``, ``--api-key-env``, ``--api-key``);
2. ``AUTODURABLE_AI_BASE_URL``, ``AUTODURABLE_AI_MODEL``, ``AUTODURABLE_AI_API_KEY``;
3. ``[tool.autodurable.ai]`` in pyproject.toml (``base_url``, ``model``,
   ``api_key_env``, ``timeout``, ``max_rounds``, ``temperature``, ``json_mode``);
4. ``OPENAI_BASE_URL``, ``OPENAI_MODEL``, ``OPENAI_API_KEY``;
5. defaults (``https://api.openai.com/v1``; no model; no key, as local servers need).

Invariants:
- The key itself is never read from pyproject.toml (which is committed):
  the table names the environment variable that holds it (``api_key_env``).
- The key never appears in `repr`, in `describe`, or in any message built
  here; `describe` says where it came from, not what it is.
- Invalid values raise `ConfigError` naming the source and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .._errors import ConfigError


def describe_validation_error(where: str, exc: ValidationError) -> str:
    """One readable message naming `where` and each bad field of a pydantic error."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(value)"
        problems.append(f"{field}: {error['msg']} (got {error.get('input')!r})")
    return f"invalid {where}: " + "; ".join(problems)


DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_ROUNDS = 3


class AITable(BaseModel):
    """``[tool.autodurable.ai]``: validated, every field optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, min_length=1)
    model: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: float | None = Field(default=None, gt=0)
    max_rounds: int | None = Field(default=None, ge=1, le=20)
    temperature: float | None = Field(default=None, ge=0, le=2)
    json_mode: bool | None = None


class Endpoint(BaseModel):
    """A chat-completions endpoint, ready to use."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    model: str
    api_key: SecretStr | None = None
    timeout: float = DEFAULT_TIMEOUT
    temperature: float = 0.0
    json_mode: bool = True
    sources: dict[str, str] = {}  # setting -> where it came from (never the key itself)

    def describe(self) -> str:
        """One line for people: model, URL, and where the key came from."""
        key = f"key from {self.sources['api_key']}" if self.api_key else "no key"
        return f"{self.model} at {self.base_url} ({key})"


def table(raw: Mapping[str, Any], where: str = "[tool.autodurable.ai]") -> AITable:
    """Validate the pyproject table."""
    if "api_key" in raw:
        raise ConfigError(
            f"{where}: api_key does not belong in pyproject.toml, which is committed; "
            'name the environment variable that holds it instead: api_key_env = "MY_KEY"'
        )
    try:
        return AITable(**raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(where, exc)) from None


def resolve(
    options: Mapping[str, Any],
    environ: Mapping[str, str],
    pyproject: Mapping[str, Any],
) -> Endpoint:
    """Merge the sources (see the module docstring) into an `Endpoint`.

    `options` may hold base_url, model, api_key, api_key_env, timeout,
    temperature, json_mode (None for "not given").
    """
    config = table(pyproject)
    sources: dict[str, str] = {}

    def pick(name: str, env: str, fallback_env: str | None, default: Any = None) -> Any:
        layers: list[tuple[str, Any]] = [
            (f"--{name.replace('_', '-')}", options.get(name)),
            (env, environ.get(env) or None),
            (f"{name} in [tool.autodurable.ai]", getattr(config, name, None)),
        ]
        if fallback_env:
            layers.append((fallback_env, environ.get(fallback_env) or None))
        for where, value in layers:
            if value is not None:
                sources[name] = where
                return value
        sources[name] = "default"
        return default

    base_url = pick("base_url", "AUTODURABLE_AI_BASE_URL", "OPENAI_BASE_URL", DEFAULT_BASE_URL)
    model = pick("model", "AUTODURABLE_AI_MODEL", "OPENAI_MODEL")
    if not model:
        raise ConfigError(
            "no model given: pass --model, set AUTODURABLE_AI_MODEL, or add "
            'model = "..." to [tool.autodurable.ai] in pyproject.toml'
        )
    key, key_source = _api_key(options, environ, config)
    if key_source:
        sources["api_key"] = key_source
    timeout = options.get("timeout") or config.timeout or DEFAULT_TIMEOUT
    temperature = _first(options.get("temperature"), config.temperature, 0.0)
    json_mode = _first(options.get("json_mode"), config.json_mode, True)
    try:
        return Endpoint(
            base_url=str(base_url).rstrip("/"),
            model=str(model),
            api_key=SecretStr(key) if key else None,
            timeout=timeout,
            temperature=temperature,
            json_mode=json_mode,
            sources=sources,
        )
    except ValidationError as exc:
        raise ConfigError(describe_validation_error("AI endpoint settings", exc)) from None


def max_rounds(option: int | None, pyproject: Mapping[str, Any]) -> int:
    """Rounds of plan / feedback per module: the option, the table, or the default."""
    return option or table(pyproject).max_rounds or DEFAULT_MAX_ROUNDS


def _api_key(
    options: Mapping[str, Any], environ: Mapping[str, str], config: AITable
) -> tuple[str | None, str | None]:
    if options.get("api_key"):
        return options["api_key"], "--api-key"
    variable = options.get("api_key_env")
    if variable:
        if not environ.get(variable):
            raise ConfigError(f"--api-key-env {variable}: that environment variable is not set")
        return environ[variable], variable
    if environ.get("AUTODURABLE_AI_API_KEY"):
        return environ["AUTODURABLE_AI_API_KEY"], "AUTODURABLE_AI_API_KEY"
    if config.api_key_env and environ.get(config.api_key_env):
        return environ[config.api_key_env], config.api_key_env
    if environ.get("OPENAI_API_KEY"):
        return environ["OPENAI_API_KEY"], "OPENAI_API_KEY"
    return None, None


def _first(*values: Any) -> Any:
    return next(value for value in values if value is not None)
