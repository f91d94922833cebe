"""What is measured: clusters and their tiers, series keys, workloads, samples, batches and cluster health."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


class Tier(enum.StrEnum):
    """Where a cluster sits in the continuum."""

    CLOUD = "cloud"
    FOG = "fog"
    EDGE = "edge"


def _frozen_labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """Identity of one time series: (cluster, signal, workload labels).

    Hashable and stable across processes (labels are kept sorted), so it can be
    used as a dict key, a shard key and a checkpoint key.

    >>> k = SeriesKey.of("edge-1", "requests", {"workload": "ingest", "namespace": "iot"})
    >>> k.label("namespace"), str(k)
    ('iot', 'edge-1/requests{namespace="iot",workload="ingest"}')
    """

    cluster: str
    signal: str
    labels: tuple[tuple[str, str], ...] = ()

    def __deepcopy__(self, memo: dict[int, object]) -> SeriesKey:
        return self  # immutable: copies of model state share their keys

    @classmethod
    def of(cls, cluster: str, signal: str, labels: Mapping[str, str] | None = None) -> SeriesKey:
        return cls(cluster, signal, _frozen_labels(labels or {}))

    def label(self, name: str, default: str = "") -> str:
        for key, value in self.labels:
            if key == name:
                return value
        return default

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def workload(self) -> WorkloadRef:
        return WorkloadRef(self.cluster, self.label("namespace"), self.label("workload"))

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.cluster}/{self.signal}{{{inner}}}"


@dataclass(frozen=True, slots=True, order=True)
class WorkloadRef:
    """A workload in one cluster: what an action targets."""

    cluster: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class SeriesBatch:
    """New samples of one series: strictly increasing timestamps (epoch s), float values (NaN = missing)."""

    key: SeriesKey
    timestamps: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.timestamps.shape != self.values.shape or self.timestamps.ndim != 1:
            raise ValueError(f"{self.key}: timestamps and values must be 1-d arrays of equal length")

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def after(self, timestamp: float) -> SeriesBatch:
        """The samples later than ``timestamp``."""
        first = int(np.searchsorted(self.timestamps, timestamp, side="right"))
        return self if first == 0 else SeriesBatch(self.key, self.timestamps[first:], self.values[first:])


class HealthState(enum.StrEnum):
    UP = "up"  # last pull succeeded
    DEGRADED = "degraded"  # some signals failed, or retries were needed
    DOWN = "down"  # the last pulls failed
    STALE = "stale"  # answered, but no new sample for longer than expected
    UNKNOWN = "unknown"  # not polled yet


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    cluster: str
    tier: Tier
    state: HealthState
    last_success: float | None = None
    last_error: str | None = None
    latency_seconds: float | None = None
    series: int = 0
