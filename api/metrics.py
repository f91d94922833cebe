"""The forecast contract on ``/metrics``: forecasts, anomaly scores and live accuracy as Prometheus series.

A collector reads the stores at scrape time, on the app's own registry (never the global one).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from intelligence.runtime.facade import ServiceFacade


class ServiceMetrics:
    def __init__(self, service: ServiceFacade) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        forecast = GaugeMetricFamily(
            "icos_forecast",
            "Forecast value per series, steps ahead (horizon) and quantile ('mean' for the point)",
            labels=["cluster", "signal", "namespace", "workload", "horizon", "quantile"],
        )
        for fc in svc.owned_forecasts():  # a sharded fleet: each replica exports its own series
            base = [fc.key.cluster, fc.key.signal, fc.key.label("namespace"), fc.key.label("workload")]
            for k, value in enumerate(fc.point):
                forecast.add_metric([*base, str(k + 1), "mean"], value)
                for q, values in fc.quantiles.items():
                    forecast.add_metric([*base, str(k + 1), f"{q:g}"], values[k])
        yield forecast
        anomaly = GaugeMetricFamily(
            "icos_anomaly_score",
            "Latest anomaly score per series, in [0, 1]",
            labels=["cluster", "signal", "namespace", "workload"],
        )
        for s in svc.owned_scores():
            anomaly.add_metric(
                [s.key.cluster, s.key.signal, s.key.label("namespace"), s.key.label("workload")], s.score
            )
        yield anomaly
        acc = svc.live_accuracy()
        yield GaugeMetricFamily(
            "icos_forecast_error", "One-step mean absolute error relative to the naive forecast", value=acc.relative_mae
        )
        yield GaugeMetricFamily(
            "icos_forecast_interval_coverage", "Share of samples inside the prediction band", value=acc.coverage
        )
        yield GaugeMetricFamily("icos_engine_steps", "Engine steps done", value=svc.engine_steps())
        up = GaugeMetricFamily(
            "icos_cluster_up", "1 when the cluster's last pull succeeded", labels=["cluster", "state"]
        )
        for h in svc.cluster_health():
            up.add_metric([h.cluster, h.state.value], 1.0 if h.state.value in ("up", "degraded") else 0.0)
        yield up


class _Forward:
    """Serves the metrics the service's parts keep on their own registry (e.g. collector telemetry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def registry_for(service: ServiceFacade) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceMetrics(service))
    registry.register(_Forward(service.telemetry))
    return registry
