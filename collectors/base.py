"""What every collector returns, and the interface the engine polls (batches and health are vocabulary)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from intelligence.vocabulary import ClusterHealth, SeriesBatch, SeriesKey


@dataclass(frozen=True, slots=True)
class PullResult:
    batches: Sequence[SeriesBatch]
    health: Sequence[ClusterHealth] = field(default_factory=tuple)
    removed_clusters: Sequence[str] = ()  # left the continuum since the last pull: forget their series

    @property
    def samples(self) -> int:
        return sum(len(b) for b in self.batches)


class Collector(Protocol):
    """Polled by the engine with the current time; returns only samples not returned before."""

    def pull(self, now: float) -> PullResult: ...

    def close(self) -> None: ...


class Recollecting(Protocol):
    """A collector that can return again what it has already returned (a sharded replica that takes series over
    while it runs needs their recent history, which it pulled but did not keep)."""

    def recollect(self, now: float, since: float | None = None) -> PullResult:
        """Every sample returned so far that is still within the collector's backfill window (from ``now``), again,
        from ``since`` on if given; what the next pull returns does not change."""
        ...


def normalise(key: SeriesKey, timestamps: np.ndarray, values: np.ndarray) -> SeriesBatch:
    """Sort by time, keep the last value of duplicated timestamps, map +-Inf to NaN."""
    ts = np.asarray(timestamps, dtype=np.float64)
    vs = np.asarray(values, dtype=np.float64)
    if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        keep = np.ones(ts.size, dtype=bool)
        keep[:-1] = ts[1:] != ts[:-1]  # the last of equal timestamps wins
        ts, vs = ts[keep], vs[keep]
    vs = np.where(np.isfinite(vs), vs, np.nan)
    return SeriesBatch(key, ts, vs)
