"""How a dashboard is served: address, token, read-only mode, redaction, limits.

Invariants:
- A dashboard bound to anything but a loopback address has a token:
  `check_binding` refuses to start one without (the token is then required on
  every request, see `_auth`).
- Redaction patterns come from ``--redact`` and ``[tool.autodurable.ui] redact``,
  both applied (the union); they are read here, before the server starts, so
  a bad value stops it with a message instead of showing a secret.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import AutodurableError, ConfigError
from .._project import find_pyproject, read_pyproject_section

ENV_TOKEN = "AUTODURABLE_UI_TOKEN"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


@dataclass(frozen=True)
class UiOptions:
    """What `create_app` serves and how."""

    host: str = "127.0.0.1"
    port: int = 8080
    read_only: bool = False
    token: str | None = None  # required on every request when set
    redact: tuple[str, ...] = ()  # field-name patterns whose values are never shown
    max_value_chars: int = 20_000  # a value longer than this is cut, with a note
    page_size: int = 50  # workflows per page
    step_page_size: int = 100  # steps per page (and per timeline)
    refresh: float = 2.0  # seconds between live updates; 0: none
    where: str = ""  # the state database, shown in the header

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse (`AutodurableError`) to serve beyond loopback without a token."""
    if token is not None and not token.strip():
        raise AutodurableError("the dashboard's token is empty: give a long random string")
    if not is_loopback(host) and not token:
        raise AutodurableError(
            f"autodurable ui listens on {host}, beyond this machine, and would show and act "
            f"on every workflow: give a token with --token or {ENV_TOKEN} (every request "
            "must then carry it), or listen on 127.0.0.1 (the default)"
        )


def token_from(given: str | None) -> str | None:
    """The token: `given`, else the ``AUTODURABLE_UI_TOKEN`` environment variable."""
    return given or os.environ.get(ENV_TOKEN) or None


def configured_redaction(cwd: Path | None = None) -> tuple[str, ...]:
    """The patterns of ``[tool.autodurable.ui] redact`` in the nearest pyproject.toml."""
    pyproject = find_pyproject(cwd)
    section: dict[str, Any] = read_pyproject_section(pyproject) if pyproject else {}
    ui = section.get("ui", {})
    if not isinstance(ui, dict):
        raise ConfigError(f"[tool.autodurable.ui] in {pyproject} must be a table")
    redact = ui.get("redact", [])
    if not isinstance(redact, list) or not all(isinstance(p, str) for p in redact):
        raise ConfigError(
            f"[tool.autodurable.ui] redact in {pyproject} must be a list of field names, "
            'such as ["password", "*token*"]'
        )
    return tuple(redact)


def split_patterns(text: str | None) -> tuple[str, ...]:
    """``"password, token"`` as its patterns."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())
