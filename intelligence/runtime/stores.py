"""Stores of the latest forecasts and anomaly scores (memory), safe to read from the API thread; anomaly events
go to the decision database."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from intelligence.storage.anomalies import AnomalyEvents
from intelligence.vocabulary import AnomalyScore, Forecast, SeriesKey

T = TypeVar("T", covariant=True)


class Rows(Protocol[T]):
    """Many series' values held as arrays by the models; ``row(i)`` builds series ``keys[i]``'s object."""

    @property
    def keys(self) -> Sequence[SeriesKey]: ...

    def row(self, i: int) -> T: ...


def _put(latest: dict[SeriesKey, object], rows: Rows[object]) -> None:
    for i, key in enumerate(rows.keys):
        latest[key] = (rows, i)


def _read(value: object) -> object:
    if isinstance(value, tuple):
        rows, i = value
        return rows.row(i)
    return value


def _matches(key: SeriesKey, cluster: str | None, signal: str | None, labels: dict[str, str]) -> bool:
    if cluster is not None and key.cluster != cluster:
        return False
    if signal is not None and key.signal != signal:
        return False
    return all(key.label(name) == value for name, value in labels.items())


class ForecastStore:
    """The newest forecast of every series."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[SeriesKey, object] = {}  # a Forecast, or (rows, i) built when read

    def put_many(self, forecasts: Iterable[Forecast | Rows[Forecast]]) -> None:
        with self._lock:
            for fc in forecasts:
                if isinstance(fc, Forecast):
                    self._latest[fc.key] = fc
                else:
                    _put(self._latest, fc)

    def drop(self, keys: Iterable[SeriesKey]) -> None:
        with self._lock:
            for key in keys:
                self._latest.pop(key, None)

    def get(self, key: SeriesKey) -> Forecast | None:
        with self._lock:
            value = self._latest.get(key)
        return None if value is None else _read(value)  # type: ignore[return-value]

    def query(self, cluster: str | None = None, signal: str | None = None, **labels: str) -> list[Forecast]:
        with self._lock:
            found = [value for key, value in self._latest.items() if _matches(key, cluster, signal, labels)]
        forecasts: list[Forecast] = [_read(v) for v in found]  # type: ignore[misc]
        return sorted(forecasts, key=lambda fc: fc.key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._latest)


class AnomalyStore:
    """The latest score of every series (memory), and the anomaly events (score >= threshold) in the database."""

    def __init__(self, threshold: float, log: AnomalyEvents) -> None:
        self.threshold = threshold
        self.log = log
        self._lock = threading.Lock()
        self._latest: dict[SeriesKey, object] = {}  # an AnomalyScore, or (rows, i) built when read

    def put_many(self, scores: Iterable[AnomalyScore | Rows[AnomalyScore]]) -> list[AnomalyScore]:
        """Record scores; returns the new anomaly events among them (stored before this returns).

        Rows only update the latest scores: the models report every score at or above
        the threshold as an object too.
        """
        events: list[AnomalyScore] = []
        with self._lock:
            for s in scores:
                if not isinstance(s, AnomalyScore):
                    _put(self._latest, s)
                    continue
                self._latest[s.key] = s
                if s.score >= self.threshold:
                    events.append(s)
        self.log.append(events)
        return events

    def drop(self, keys: Iterable[SeriesKey]) -> None:
        """Forget the latest scores of series that left (their past events stay in the log)."""
        with self._lock:
            for key in keys:
                self._latest.pop(key, None)

    def latest(self, cluster: str | None = None, signal: str | None = None, **labels: str) -> list[AnomalyScore]:
        with self._lock:
            found = [value for key, value in self._latest.items() if _matches(key, cluster, signal, labels)]
        scores: list[AnomalyScore] = [_read(v) for v in found]  # type: ignore[misc]
        return sorted(scores, key=lambda s: s.key)

    def events(
        self,
        since: float | None = None,
        min_score: float | None = None,
        cluster: str | None = None,
        signal: str | None = None,
        limit: int = 100,
    ) -> list[AnomalyScore]:
        """Anomaly events, newest first (they survive restarts: see :mod:`intelligence.storage.anomalies`)."""
        return self.log.find(since, min_score, cluster, signal, limit)
