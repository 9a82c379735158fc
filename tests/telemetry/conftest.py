"""Fixtures of the telemetry tests: OpenTelemetry's SDK with in-memory exporters.

The SDK's global tracer and meter providers can be set once per process, so
they are set once per session (the first time a test asks for them) and each
test clears the finished spans; metrics are cumulative, so tests compare
points before and after what they do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class Providers:
    """The SDK pieces the tests read from."""

    spans: object  # InMemorySpanExporter
    metrics: object  # InMemoryMetricReader


_providers: Providers | None = None


def _install() -> Providers:
    global _providers
    if _providers is None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _providers = Providers(exporter, reader)
    return _providers


@pytest.fixture
def otel() -> Iterator[Providers]:
    """The session's in-memory exporter (cleared for this test) and metric reader."""
    providers = _install()
    providers.spans.clear()  # type: ignore[attr-defined]
    yield providers
    providers.spans.clear()  # type: ignore[attr-defined]


@pytest.fixture
def traced(database: str, otel: Providers) -> Providers:
    """Telemetry on, on each selected store in turn (see the `database` fixture)."""
    import autodurable

    autodurable.configure(telemetry=True)
    return otel
