"""One cluster's polls: watermarks, chunked range queries, the circuit breaker and the health state.

Each signal is pulled from just after its watermark (the last step returned) to now,
aligned to the step, so nothing is returned twice. After an outage the gap is backfilled
from the watermark, within the backfill window (a longer gap is logged and its start
lost). A range is split into queries under Prometheus' 11,000 points per series. A pull
where every signal failed with a temporary error counts towards the breaker; while it
is open the cluster is skipped and reported down. A cluster that answers without new
samples for ``stale_after_steps`` steps is stale.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from collectors.base import normalise
from collectors.errors import CollectorError
from collectors.prometheus.parsing import convert_matrix, render_query
from collectors.prometheus.specs import ClusterTarget, CollectionSpec, Signal
from collectors.resilience import BreakerState, CircuitBreaker
from collectors.telemetry import CollectorTelemetry
from intelligence.vocabulary import ClusterHealth, HealthState, SeriesBatch, SeriesKey, redact_text

log = logging.getLogger(__name__)

MAX_POINTS_PER_QUERY = 11_000  # Prometheus refuses range queries returning more points per series

Progress = Callable[[str, int, int], None]  # (cluster, chunks done, chunks planned)


class Transport(Protocol):
    """What a poller needs of its cluster's HTTP (:class:`~collectors.prometheus.transport.PrometheusTransport`).

    ``query_range`` returns a matrix result for :func:`convert_matrix` and raises only
    :class:`CollectorError`, retries already spent.
    """

    def query_range(self, signal: Signal, query: str, start: float, end: float, step: int) -> Any: ...

    def close(self) -> None: ...


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class ClusterPoller:
    """Pulls every signal of one cluster from its watermarks; owns the cluster's breaker and health."""

    def __init__(
        self,
        target: ClusterTarget,
        transport: Transport,
        signals: Sequence[Signal],
        spec: CollectionSpec,
        telemetry: CollectorTelemetry,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.target = target
        self.transport = transport
        self.signals = list(signals)
        self.spec = spec
        self.step = spec.step_seconds
        self.stale_after = spec.stale_after_steps * spec.step_seconds
        self.telemetry = telemetry
        self._timer = timer
        self.watermarks: dict[str, float] = {}
        self.breaker = CircuitBreaker(target.breaker_failures, target.breaker_cooldown_seconds)
        self.newest_sample: float | None = None
        self.progress: Progress | None = None
        self.health = ClusterHealth(target.name, target.tier, HealthState.UNKNOWN)
        self._reported_empty: set[str] = set()
        self._has_data: set[str] = set()  # signals that have returned samples: silence later is staleness

    def _window(self, signal: str, now: float) -> tuple[float, float]:
        end = math.floor(now / self.step) * self.step
        earliest = math.floor((now - self.spec.backfill_seconds) / self.step) * self.step
        mark = self.watermarks.get(signal)
        if mark is None:
            return earliest, end
        if mark + self.step < earliest:
            log.warning(
                "cluster %r, signal %r: gap since %s is longer than the backfill window; samples before %s are lost",
                self.target.name,
                signal,
                _iso(mark),
                _iso(earliest),
            )
            return earliest, end
        return mark + self.step, end

    def poll(self, now: float) -> list[SeriesBatch]:
        name = self.target.name
        if not self.breaker.allows(now):
            self.telemetry.pulls.labels(name, "skipped").inc()
            until = datetime.fromtimestamp(self.breaker.retry_at, UTC).isoformat()
            self.health = ClusterHealth(
                name,
                self.target.tier,
                HealthState.DOWN,
                self.health.last_success,
                f"circuit open until {until}; last error: {self.health.last_error}",
                self.health.latency_seconds,
                self.health.series,
            )
            return []
        started = self._timer()
        batches: list[SeriesBatch] = []
        errors: list[CollectorError] = []
        plans = [(s, *self._window(s.name, now)) for s in self.signals]
        planned = sum(self._chunks(start, end) for _, start, end in plans)
        done = 0
        for signal, start, end in plans:
            if start > end:
                continue
            query = render_query(signal.query, self.target.selector, self.spec.rate_window)
            done += self._chunks(start, end)
            try:
                got = self._range(signal, query, start, end)
            except CollectorError as exc:
                errors.append(exc)
                self.telemetry.errors.labels(name, signal.name, exc.kind).inc()
                log.warning("%s", exc)
                continue
            finally:
                if self.progress is not None:
                    self.progress(name, done, planned)
            self.watermarks[signal.name] = end
            batches.extend(got)
            samples = sum(len(b) for b in got)
            if samples:
                self.telemetry.samples.labels(name, signal.name).inc(samples)
                newest = max(float(b.timestamps[-1]) for b in got if len(b))
                self.newest_sample = max(self.newest_sample or newest, newest)
                self._has_data.add(signal.name)
            elif signal.name not in self._has_data and signal.name not in self._reported_empty:
                self._reported_empty.add(signal.name)
                log.info("cluster %r, signal %r: the query matches no series; nothing to model", name, signal.name)
        latency = self._timer() - started
        self.telemetry.latency.labels(name).observe(latency)
        self._update_health(now, errors, latency, batches)
        return batches

    def recollect(self, now: float, since: float | None = None) -> list[SeriesBatch]:
        """What earlier polls returned, within the backfill window from ``now`` (and from ``since``), again.
        Watermarks, health and the breaker are untouched: the next poll goes on where the last one ended."""
        earliest = math.floor((now - self.spec.backfill_seconds) / self.step) * self.step
        if since is not None:
            earliest = max(earliest, math.floor(since / self.step) * self.step)
        batches: list[SeriesBatch] = []
        for signal in self.signals:
            end = self.watermarks.get(signal.name)
            if end is None or end < earliest:
                continue
            query = render_query(signal.query, self.target.selector, self.spec.rate_window)
            try:
                batches.extend(self._range(signal, query, earliest, end))
            except CollectorError as exc:
                log.warning(
                    "%s: history since %s not recollected; the series taken over go on from their saved state",
                    exc,
                    _iso(earliest),
                )
        return batches

    def _update_health(
        self, now: float, errors: list[CollectorError], latency: float, batches: list[SeriesBatch]
    ) -> None:
        name, previous = self.target.name, self.health
        failed_all = bool(errors) and len(errors) >= len(self.signals)
        self.breaker.record(not failed_all or not any(e.temporary for e in errors), now)
        if self.newest_sample is not None:
            self.telemetry.lag.labels(name).set(max(0.0, now - self.newest_sample))
        if failed_all:
            outcome, state, last_success = "failed", HealthState.DOWN, previous.last_success
        elif errors:
            outcome, state, last_success = "partial", HealthState.DEGRADED, now
        elif self.newest_sample is not None and now - self.newest_sample > self.stale_after:
            outcome, state, last_success = "ok", HealthState.STALE, now
        else:
            outcome, state, last_success = "ok", HealthState.UP, now
        self.telemetry.pulls.labels(name, outcome).inc()
        last_error = redact_text(str(errors[-1])) if errors else None
        if state is HealthState.STALE:
            age = now - (self.newest_sample or now)
            last_error = f"cluster {name!r}: answers, but its newest sample is {age:.0f}s old"
        if self.breaker.state is BreakerState.OPEN:
            last_error = f"{last_error}; circuit open for {self.breaker.retry_at - now:.0f}s"
        series = len({b.key for b in batches}) or previous.series
        self.health = ClusterHealth(name, self.target.tier, state, last_success, last_error, latency, series)
        if state is not previous.state and previous.state is not HealthState.UNKNOWN:
            log.info(
                "cluster %r is %s (was %s)%s",
                name,
                state.value,
                previous.state.value,
                f": {last_error}" if last_error else "",
            )

    @property
    def _chunk_seconds(self) -> int:
        return (MAX_POINTS_PER_QUERY - 1) * self.step

    def _chunks(self, start: float, end: float) -> int:
        return max(0, math.ceil((end - start + self.step) / (self._chunk_seconds + self.step)))

    def _range(self, signal: Signal, query: str, start: float, end: float) -> list[SeriesBatch]:
        """Range queries in chunks under Prometheus' points-per-series limit, merged per series."""
        chunk = self._chunk_seconds
        merged: dict[SeriesKey, list[SeriesBatch]] = {}
        lo = start
        while lo <= end:
            hi = min(end, lo + chunk)
            raw = self.transport.query_range(signal, query, lo, hi, self.step)
            for b in convert_matrix(self.target.name, signal, raw):
                merged.setdefault(b.key, []).append(b)
            lo = hi + self.step
        out = []
        for key, parts in merged.items():
            if len(parts) == 1:
                out.append(parts[0])
                continue
            out.append(
                normalise(key, np.concatenate([p.timestamps for p in parts]), np.concatenate([p.values for p in parts]))
            )
        return out
