"""Reading what the in-memory exporters hold: spans by name, metric points by name."""

from __future__ import annotations

from typing import Any


def finished(providers: Any) -> list[Any]:
    """The spans finished since the exporter was cleared, in the order they ended."""
    return list(providers.spans.get_finished_spans())


def named(spans: list[Any], prefix: str) -> list[Any]:
    """The spans whose name starts with `prefix`, in the order they started."""
    return sorted((s for s in spans if s.name.startswith(prefix)), key=lambda s: s.start_time)


def points(providers: Any, name: str) -> list[tuple[dict[str, Any], Any]]:
    """The (attributes, point) pairs of the metric `name` as collected now."""
    data = providers.metrics.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes), p) for p in metric.data.data_points]
    return found


def total(providers: Any, name: str, wanted: dict[str, Any] | None = None) -> float:
    """The sum of a counter's points (a histogram's counts) whose attributes include
    `wanted`."""
    wanted = wanted or {}
    value = 0.0
    for found, point in points(providers, name):
        if all(found.get(key) == expected for key, expected in wanted.items()):
            value += point.count if hasattr(point, "count") else point.value
    return value
