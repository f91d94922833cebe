"""The metric names the service serves on /metrics, read from a real rendering: the embedded default driven for a
few steps, so every family that depends on live state (forecasts, scores, clusters, actions) is there, with the
collectors' telemetry of a Prometheus source."""

from __future__ import annotations

from datetime import UTC, datetime

from api.metrics import Export, MetricsRenderer
from collectors.telemetry import CollectorTelemetry
from intelligence.runtime.facade import ServiceFacade
from intelligence.runtime.wiring import build_service
from intelligence.settings import Settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive


def exported_metric_names(settings: Settings) -> set[str]:
    """Every family on /metrics with the suffixes Prometheus stores (``_total``, ``_bucket``, ``_sum``, ...)."""
    clock = ManualClock(datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp())
    svc = build_service(settings, clock=clock)
    try:
        drive(svc, clock, 2)
        # the collectors' telemetry as a Prometheus source registers it (the embedded default has none)
        text = MetricsRenderer(ServiceFacade(svc), Export(), CollectorTelemetry().registry).render().decode()
    finally:
        svc.stop()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            suffixes = {"counter": ("_total", ""), "histogram": ("_bucket", "_sum", "_count")}.get(kind, ("",))
            names |= {name + s if not name.endswith(s) else name for s in suffixes}
    return names
