"""The embedded simulated continuum: three clusters whose workloads have daily cycles,
noise, bursts, one injected anomaly and one edge cluster that saturates.

Values are a pure function of (seed, series, time): any window can be pulled again
and gives the same samples, which makes the embedded default and tests reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from collectors.base import PullResult
from intelligence.vocabulary import ClusterHealth, HealthState, SeriesBatch, SeriesKey, Tier

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SimCluster:
    name: str
    tier: Tier
    capacity_cores: float
    demand_growth_per_day: float = 0.0  # relative growth of every workload's load per day


@dataclass(frozen=True, slots=True)
class SimWorkload:
    cluster: str
    namespace: str
    name: str
    knative: bool
    base_rps: float
    peak_rps: float
    peak_hour: float  # UTC hour of the daily peak
    cpu_per_rps: float  # cores per request/s
    base_cpu: float
    base_memory: float  # bytes
    memory_per_rps: float


@dataclass(frozen=True, slots=True)
class InjectedAnomaly:
    """A request flood on one workload: ``factor`` x its load for ``duration`` seconds."""

    cluster: str
    namespace: str
    workload: str
    offset_seconds: float  # after the simulation's origin
    duration_seconds: float
    factor: float


CLUSTERS: tuple[SimCluster, ...] = (
    SimCluster("cloud-1", Tier.CLOUD, capacity_cores=64.0),
    SimCluster("fog-1", Tier.FOG, capacity_cores=16.0),
    SimCluster("edge-1", Tier.EDGE, capacity_cores=4.0, demand_growth_per_day=0.12),
)

WORKLOADS: tuple[SimWorkload, ...] = (
    SimWorkload("cloud-1", "shop", "frontend", True, 20, 160, 13.0, 0.05, 0.5, 600e6, 4e6),
    SimWorkload("cloud-1", "shop", "checkout", True, 5, 40, 19.0, 0.08, 0.3, 400e6, 6e6),
    SimWorkload("cloud-1", "analytics", "reports", False, 1, 6, 2.0, 0.9, 1.0, 2e9, 50e6),
    SimWorkload("fog-1", "video", "transcode", True, 2, 25, 20.0, 0.25, 0.2, 900e6, 20e6),
    SimWorkload("fog-1", "city", "traffic-api", True, 8, 50, 17.0, 0.04, 0.2, 300e6, 3e6),
    SimWorkload("edge-1", "iot", "ingest", True, 15, 85, 12.0, 0.035, 0.2, 200e6, 2e6),
    SimWorkload("edge-1", "iot", "sensor-gateway", True, 5, 25, 12.5, 0.05, 0.1, 150e6, 2e6),
)

ANOMALY = InjectedAnomaly("fog-1", "city", "traffic-api", offset_seconds=2.5 * 3600, duration_seconds=1800, factor=4.0)

SIGNALS: tuple[str, ...] = ("requests", "cpu", "memory")


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a counter-based hash, vectorised."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _uniform(seed: int, stream: int, steps: np.ndarray) -> np.ndarray:
    base = np.uint64((seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) % (1 << 64))
    with np.errstate(over="ignore"):
        bits = _mix64(steps.astype(np.int64).view(np.uint64) + base)
    return (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class SimulatedContinuum:
    """The data model: demand of every workload and the resulting signals, at any time."""

    def __init__(self, seed: int, origin: float, step_seconds: int, anomaly: InjectedAnomaly | None = ANOMALY) -> None:
        self.seed = seed
        self.origin = origin  # the time the demo "starts"; growth and the anomaly are relative to it
        self.step_seconds = step_seconds
        self.anomaly = anomaly
        self.clusters = {c.name: c for c in CLUSTERS}
        self.workloads = WORKLOADS

    def keys(self) -> list[SeriesKey]:
        return [self.key(w, s) for w in self.workloads for s in SIGNALS if s != "requests" or w.knative]

    @staticmethod
    def key(w: SimWorkload, signal: str) -> SeriesKey:
        return SeriesKey.of(w.cluster, signal, {"namespace": w.namespace, "workload": w.name})

    def _demand(self, index: int, w: SimWorkload, ts: np.ndarray) -> np.ndarray:
        steps = np.floor(ts / self.step_seconds).astype(np.int64)
        hour = (ts % DAY) / 3600.0
        # a smooth daily cycle peaking at peak_hour (raised cosine, sharpened)
        phase = np.cos((hour - w.peak_hour) / 24.0 * 2.0 * math.pi)
        cycle = ((phase + 1.0) / 2.0) ** 3
        rps = w.base_rps + (w.peak_rps - w.base_rps) * cycle
        growth = self.clusters[w.cluster].demand_growth_per_day
        if growth:
            rps = rps * (1.0 + growth) ** ((ts - self.origin) / DAY)
        # multiplicative noise (log-normal, sigma 0.08) from a counter-based hash
        u1 = np.clip(_uniform(self.seed, 2 * index, steps), 1e-12, 1.0)
        u2 = _uniform(self.seed, 2 * index + 1, steps)
        normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
        rps = rps * np.exp(0.08 * normal - 0.0032)
        # bursts: about one step in 150 carries 1.5x-2.5x the load
        burst = _uniform(self.seed, 1000 + index, steps)
        rps = np.where(burst < 1.0 / 150.0, rps * (1.5 + 150.0 * burst), rps)
        a = self.anomaly
        if a and (w.cluster, w.namespace, w.name) == (a.cluster, a.namespace, a.workload):
            start = self.origin + a.offset_seconds
            rps = np.where((ts >= start) & (ts < start + a.duration_seconds), rps * a.factor, rps)
        return rps

    def values(self, ts: np.ndarray) -> dict[SeriesKey, np.ndarray]:
        """Every series at the given timestamps; CPU is capped by the cluster's capacity."""
        ts = np.asarray(ts, dtype=np.float64)
        demand = {w: self._demand(i, w, ts) for i, w in enumerate(self.workloads)}
        cpu_wanted = {w: w.base_cpu + w.cpu_per_rps * demand[w] for w in self.workloads}
        out: dict[SeriesKey, np.ndarray] = {}
        for cluster in self.clusters.values():
            members = [w for w in self.workloads if w.cluster == cluster.name]
            total = np.sum([cpu_wanted[w] for w in members], axis=0)
            share = np.minimum(1.0, cluster.capacity_cores / np.maximum(total, 1e-9))  # saturation: flat top
            for w in members:
                served = demand[w] * share  # requests beyond capacity are not served
                if w.knative:  # request counts come from Knative's queue-proxy
                    out[self.key(w, "requests")] = served
                out[self.key(w, "cpu")] = cpu_wanted[w] * share
                out[self.key(w, "memory")] = w.base_memory + w.memory_per_rps * served
        return out


class SimulatedCollector:
    """Collector over :class:`SimulatedContinuum`: returns each step once, up to ``now``."""

    def __init__(self, continuum: SimulatedContinuum, history_seconds: float) -> None:
        self.continuum = continuum
        step = continuum.step_seconds
        self.history_seconds = history_seconds
        self._watermark = math.floor((continuum.origin - history_seconds) / step) * step
        self._last_pull: float | None = None

    def pull(self, now: float) -> PullResult:
        step = self.continuum.step_seconds
        first = self._watermark + step
        last = math.floor(now / step) * step
        if last < first:
            return PullResult([], self._health(now, 0))
        ts = np.arange(first, last + step / 2, step, dtype=np.float64)
        series = self.continuum.values(ts)
        self._watermark = last
        self._last_pull = now
        batches = [SeriesBatch(key, ts, values) for key, values in series.items()]
        return PullResult(batches, self._health(now, len(batches)))

    def recollect(self, now: float, since: float | None = None) -> PullResult:
        """The steps already returned within ``history_seconds`` of ``now`` (and from ``since``), again; the next
        pull is unchanged."""
        step = self.continuum.step_seconds
        first = math.floor((now - self.history_seconds) / step) * step + step
        if since is not None:
            first = max(first, math.ceil(since / step) * step)
        if self._watermark < first:
            return PullResult([], self._health(now, 0))
        ts = np.arange(first, self._watermark + step / 2, step, dtype=np.float64)
        batches = [SeriesBatch(key, ts, values) for key, values in self.continuum.values(ts).items()]
        return PullResult(batches, self._health(now, len(batches)))

    def _health(self, now: float, series: int) -> list[ClusterHealth]:
        per_cluster = max(series // max(len(self.continuum.clusters), 1), 0)
        return [
            ClusterHealth(c.name, c.tier, HealthState.UP, last_success=now, latency_seconds=0.0, series=per_cluster)
            for c in self.continuum.clusters.values()
        ]

    def close(self) -> None:
        return None
