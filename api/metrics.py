"""The forecast contract on ``/metrics``: forecasts, observed values, anomaly scores, accuracy and decisions.

What is exported of each forecast is configurable (``metrics.horizons``, ``metrics.quantiles``;
by default steps 1, 6 and 12 and the band's edges: 9 series per forecast, not 36), and so is
the cardinality: at most ``metrics.max_series_per_cluster`` series of one cluster are
exported (the first in key order), with a warning and ``icos_metrics_series_dropped``.

The text is rendered by hand (prometheus_client builds an object per sample) and cached:
forecasts, scores and decisions change once per engine step, so a step's text is rendered at
the first scrape after it and served from memory until the next step. The collectors' own
telemetry is rendered at every scrape from the service's registry (never the global one).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest

from intelligence.runtime.facade import ServiceFacade
from intelligence.vocabulary import SeriesKey

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Export:
    horizons: tuple[int, ...] = (1, 6, 12)
    quantiles: tuple[str, ...] = ("mean", "lower", "upper")
    max_series_per_cluster: int = 5000


def _esc(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _family(out: list[str], name: str, help_: str) -> None:
    out.append(f"# HELP {name} {help_}\n# TYPE {name} gauge\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())


class MetricsRenderer:
    """Renders the service's families (cached per engine step) and the telemetry registry (every scrape)."""

    def __init__(self, service: ServiceFacade, export: Export, telemetry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.export = export
        self.telemetry = telemetry
        self._lock = threading.Lock()
        self._cached: tuple[int, bytes] | None = None
        self._dropped_said: dict[str, int] = {}
        self._prefixes: dict[SeriesKey, str] = {}
        self._split: dict[SeriesKey, tuple[str, str, str]] = {}
        self.dropped: dict[str, int] = {}  # cluster -> series not exported, at the last render

    def render(self) -> bytes:
        body = self.service_families()
        if self.telemetry is not None:
            body += generate_latest(self.telemetry)
        return body

    def service_families(self) -> bytes:
        steps = self.service.engine_steps()
        with self._lock:
            if self._cached is not None and self._cached[0] == steps:
                return self._cached[1]
            text = "".join(self._render()).encode()
            self._cached = (steps, text)
            return text

    def _prefix(self, key: SeriesKey) -> str:
        """``cluster="..",signal="..",namespace="..",workload=".."``, built once per series."""
        found = self._prefixes.get(key)
        if found is None:
            if len(self._prefixes) > 1_000_000:
                self._prefixes.clear()
            found = _labels(
                cluster=key.cluster, namespace=key.label("namespace"), signal=key.signal, workload=key.label("workload")
            )
            self._prefixes[key] = found
        return found

    def _forecast_labels(self, key: SeriesKey) -> tuple[str, str, str]:
        """The forecast's labels in name order around its horizon and quantile: (before, between, after)."""
        found = self._split.get(key)
        if found is None:
            if len(self._split) > 1_000_000:
                self._split.clear()
            c, ns = _esc(key.cluster), _esc(key.label("namespace"))
            sig, wl = _esc(key.signal), _esc(key.label("workload"))
            found = (
                f'cluster="{c}",horizon="',
                f'",namespace="{ns}",quantile="',
                f'",signal="{sig}",workload="{wl}"}}',
            )
            self._split[key] = found
        return found

    def _admitted(self, keys: Iterable[SeriesKey]) -> set[SeriesKey]:
        """The series exported: at most ``max_series_per_cluster`` per cluster, the first in key order."""
        limit = self.export.max_series_per_cluster
        per: dict[str, list[SeriesKey]] = {}
        for key in keys:
            per.setdefault(key.cluster, []).append(key)
        admitted: set[SeriesKey] = set()
        dropped: dict[str, int] = {}
        for cluster, found in per.items():
            found.sort()
            admitted.update(found[:limit])
            if len(found) > limit:
                dropped[cluster] = len(found) - limit
        for cluster, n in dropped.items():
            if self._dropped_said.get(cluster) != n:
                log.warning(
                    "/metrics: cluster %s has %d series, %d over metrics.max_series_per_cluster (%d): not exported",
                    cluster,
                    len(per[cluster]),
                    n,
                    limit,
                )
        self._dropped_said = dropped
        self.dropped = dropped
        return admitted

    def _render(self) -> list[str]:
        svc = self.service
        out: list[str] = []
        forecasts = svc.owned_forecasts()  # a sharded fleet: each replica exports its own series, so that a
        scores = svc.owned_scores()  # Prometheus scraping every replica gets each series once
        samples = svc.latest_samples()
        admitted = self._admitted({*(f.key for f in forecasts), *(s.key for s in scores), *samples})
        horizons = self.export.horizons
        step = svc.step_seconds

        _family(out, "icos_forecast", "Forecast per series, steps ahead (horizon) and quantile ('mean': the point)")
        for fc in forecasts:
            if fc.key not in admitted:
                continue
            before, between, after = self._forecast_labels(fc.key)
            qs = list(fc.quantiles)
            columns: list[tuple[str, Sequence[float]]] = []
            for q in self.export.quantiles:
                if q == "mean":
                    columns.append(("mean", fc.point))
                elif qs:
                    prob = qs[0] if q == "lower" else qs[-1]
                    columns.append((f"{prob:g}", fc.quantiles[prob]))
            for h in horizons:
                if h > len(fc.point):
                    continue
                for label, values in columns:
                    out.append(f"icos_forecast{{{before}{h}{between}{label}{after} {_num(values[h - 1])}\n")
        _family(out, "icos_forecast_horizon_seconds", "How far ahead each exported horizon is, in seconds")
        for h in horizons:
            out.append(f'icos_forecast_horizon_seconds{{horizon="{h}"}} {_num(h * step)}\n')
        _family(out, "icos_observed", "The newest sample of each series (in the signal's unit)")
        for key, (_, value) in sorted(samples.items()):
            if key in admitted:
                out.append(f"icos_observed{{{self._prefix(key)}}} {_num(value)}\n")
        _family(out, "icos_anomaly_score", "Latest anomaly score per series, in [0, 1]")
        for s in scores:
            if s.key in admitted:
                out.append(f"icos_anomaly_score{{{self._prefix(s.key)}}} {_num(s.score)}\n")
        _family(out, "icos_signal_unit", "1 for each signal, labelled with the unit of its values")
        for signal, unit in sorted(svc.units.items()):
            out.append(f"icos_signal_unit{{{_labels(signal=signal, unit=unit)}}} 1\n")

        acc = svc.live_accuracy()
        _family(out, "icos_forecast_error", "One-step mean absolute error relative to the naive forecast")
        out.append(f"icos_forecast_error {_num(acc.relative_mae)}\n")
        _family(out, "icos_forecast_interval_coverage", "Share of samples inside the prediction band")
        out.append(f"icos_forecast_interval_coverage {_num(acc.coverage)}\n")
        by_role = {"champion": svc.accuracy_by_signal(), "challenger": svc.shadow_accuracy_by_signal()}
        for name, attr, help_ in (
            ("icos_model_relative_mae", "relative_mae", "One-step MAE over the naive forecast's, per signal and role"),
            ("icos_model_mae", "mae", "One-step mean absolute error per signal and role, in the signal's unit"),
            ("icos_model_interval_coverage", "coverage", "Share of samples inside the band, per signal and role"),
        ):
            _family(out, name, help_)
            for role, accs in by_role.items():
                for signal, a in accs.items():
                    out.append(f"{name}{{{_labels(signal=signal, role=role)}}} {_num(getattr(a, attr))}\n")

        _family(out, "icos_engine_steps", "Engine steps done")
        out.append(f"icos_engine_steps {svc.engine_steps()}\n")
        _family(out, "icos_cluster_up", "1 when the cluster's last pull got an answer")
        for ch in svc.cluster_health():
            up = 1 if ch.state.value in ("up", "degraded") else 0
            out.append(f"icos_cluster_up{{{_labels(cluster=ch.cluster, state=ch.state.value)}}} {up}\n")
        _family(out, "icos_component_degraded", "1 while an optional component (MLflow, the registry) is degraded")
        for component, state in sorted(svc.component_states().items()):
            degraded = 1 if state == "degraded" else 0
            out.append(f"icos_component_degraded{{{_labels(component=component, state=state)}}} {degraded}\n")
        _family(out, "icos_cluster_capacity_cores", "Each cluster's capacity in cores (0: unknown)")
        for cluster, cores in sorted(svc.capacities().items()):
            out.append(f"icos_cluster_capacity_cores{{{_labels(cluster=cluster)}}} {_num(cores)}\n")
        recs, acts = svc.decision_counts()
        _family(out, "icos_recommendations", "Recommendations per cluster and status")
        for (cluster, status), n in sorted(recs.items()):
            out.append(f"icos_recommendations{{{_labels(cluster=cluster, status=status)}}} {n}\n")
        _family(out, "icos_actions", "Actions per cluster and state (enacted, failed, ...)")
        for (cluster, state), n in sorted(acts.items()):
            out.append(f"icos_actions{{{_labels(cluster=cluster, state=state)}}} {n}\n")
        _family(out, "icos_webhook_pending_events", "Events not yet delivered, per webhook subscriber")
        for name, lag in sorted(svc.webhook_lag().items()):
            out.append(f"icos_webhook_pending_events{{{_labels(subscriber=name)}}} {lag}\n")
        _family(out, "icos_metrics_series_dropped", "Series not exported, over metrics.max_series_per_cluster")
        for cluster, n in sorted(self.dropped.items()):
            out.append(f"icos_metrics_series_dropped{{{_labels(cluster=cluster)}}} {n}\n")
        return out
