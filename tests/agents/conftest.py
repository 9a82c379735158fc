"""Fixtures of the HTTP boundary tests: a local service, and the boundaries installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autodurable._core import _boundary_http

from ._server import Service, http_service


@pytest.fixture
def service() -> Iterator[Service]:
    """A local HTTP service counting the requests it answers (see `_server`)."""
    with http_service() as running:
        yield running


@pytest.fixture
def boundaries() -> Iterator[None]:
    """Every HTTP boundary installed for the test, none afterwards."""
    _boundary_http.install()
    yield
    _boundary_http.uninstall()
