"""The collectors' own telemetry, as Prometheus metrics on a registry passed in (never the global one)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CollectorTelemetry:
    """Pulls, samples, errors and latency per cluster."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.pulls = Counter(
            "icos_collector_pulls",
            "Pulls of a cluster by outcome (ok, partial, failed, skipped)",
            ["cluster", "outcome"],
            registry=self.registry,
        )
        self.samples = Counter(
            "icos_collector_samples",
            "Samples received per cluster and signal",
            ["cluster", "signal"],
            registry=self.registry,
        )
        self.errors = Counter(
            "icos_collector_errors",
            "Failed queries per cluster, signal and error kind",
            ["cluster", "signal", "kind"],
            registry=self.registry,
        )
        self.retries = Counter(
            "icos_collector_retries",
            "Retried requests per cluster",
            ["cluster"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "icos_collector_pull_seconds",
            "Wall time of one pull of a cluster (all its signals)",
            ["cluster"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.lag = Gauge(
            "icos_collector_lag_seconds",
            "Time since the newest sample received from a cluster",
            ["cluster"],
            registry=self.registry,
        )

    def forget(self, cluster: str) -> None:
        """A cluster left the continuum: drop its series."""
        for metric in (self.latency, self.lag):
            with contextlib.suppress(KeyError):
                metric.remove(cluster)
