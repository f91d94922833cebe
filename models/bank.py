"""The model bank: the state of every series, and the only code that knows its layout."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from intelligence.domain import AnomalyReason, AnomalyScore, Forecast, SeriesKey
from models.base import Detector, Expectation, Forecaster

ModelFactory = Callable[[SeriesKey], tuple[Forecaster, Detector, str, str]]


@dataclass(slots=True)
class SeriesModels:
    """Forecaster and detector of one series, with its live one-step accuracy."""

    forecaster: Forecaster
    detector: Detector
    forecaster_kind: str
    detector_kind: str
    last_timestamp: float = -math.inf
    learnt: int = 0
    scored: int = 0
    abs_error_sum: float = 0.0
    abs_naive_sum: float = 0.0
    covered: int = 0
    last_value: float = math.nan


@dataclass(frozen=True, slots=True)
class BankAccuracy:
    """One-step-ahead accuracy over everything scored so far."""

    series: int
    scored: int
    mae: float
    relative_mae: float  # our MAE over the last-value forecast's MAE (< 1: better than naive)
    coverage: float  # share of samples inside the band

    def as_metrics(self) -> dict[str, float]:
        return {
            "series": self.series,
            "scored": self.scored,
            "mae_1step": self.mae,
            "relative_mae_1step": self.relative_mae,
            "coverage_1step": self.coverage,
        }


@dataclass
class ModelBank:
    """Holds a forecaster and a detector per series; scores, then learns, each sample."""

    factory: ModelFactory
    interval: float = 0.9
    series: dict[SeriesKey, SeriesModels] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.series)

    def _models(self, key: SeriesKey) -> SeriesModels:
        models = self.series.get(key)
        if models is None:
            forecaster, detector, fkind, dkind = self.factory(key)
            models = self.series[key] = SeriesModels(forecaster, detector, fkind, dkind)
        return models

    def observe(self, key: SeriesKey, timestamps: np.ndarray, values: np.ndarray) -> list[AnomalyScore]:
        """Score then learn each (timestamp, value) in order; returns one score per new finite sample.

        Samples at or before the last learnt timestamp are ignored (duplicates and
        late arrivals never rewrite history); NaN is a missing value.
        """
        m = self._models(key)
        scores: list[AnomalyScore] = []
        for t, y in zip(timestamps.tolist(), values.tolist(), strict=True):
            if t <= m.last_timestamp:
                continue
            if not math.isfinite(y):
                continue
            expected = m.forecaster.expect(t)
            score, why = m.detector.score_one(t, y, expected)
            score = min(1.0, max(0.0, float(score))) if math.isfinite(score) else 0.0
            self._account(m, y, expected)
            scores.append(AnomalyScore(key, t, score, _reason(m, y, expected, why)))
            m.detector.learn_one(t, y, expected)
            m.forecaster.learn_one(t, y)
            m.last_timestamp = t
            m.last_value = y
            m.learnt += 1
        return scores

    @staticmethod
    def _account(m: SeriesModels, y: float, expected: Expectation | None) -> None:
        if expected is None or not math.isfinite(expected.value) or not math.isfinite(m.last_value):
            return
        m.scored += 1
        m.abs_error_sum += abs(y - expected.value)
        m.abs_naive_sum += abs(y - m.last_value)
        if expected.lower <= y <= expected.upper:
            m.covered += 1

    def forecast(self, key: SeriesKey, horizon: int, step_seconds: float) -> Forecast | None:
        """The forecast from the last learnt sample, or None while the series has no model or data."""
        m = self.series.get(key)
        if m is None or m.learnt == 0:
            return None
        fc = m.forecaster.forecast(horizon)
        if not np.isfinite(fc.point).all():
            return None
        tail = round((1.0 - self.interval) / 2.0, 6)
        quantiles = {}
        if np.isfinite(fc.lower).all() and np.isfinite(fc.upper).all():
            quantiles = {
                tail: tuple(np.minimum(fc.lower, fc.point).tolist()),
                round(1.0 - tail, 6): tuple(np.maximum(fc.upper, fc.point).tolist()),
            }
        return Forecast(key, m.last_timestamp, step_seconds, tuple(fc.point.tolist()), quantiles, m.forecaster_kind)

    def drop(self, keys: Iterable[SeriesKey]) -> int:
        """Forget series that vanished; returns how many were dropped."""
        dropped = 0
        for key in keys:
            dropped += self.series.pop(key, None) is not None
        return dropped

    def accuracy(self) -> BankAccuracy:
        scored = sum(m.scored for m in self.series.values())
        err = sum(m.abs_error_sum for m in self.series.values())
        naive = sum(m.abs_naive_sum for m in self.series.values())
        covered = sum(m.covered for m in self.series.values())
        return BankAccuracy(
            series=len(self.series),
            scored=scored,
            mae=err / scored if scored else math.nan,
            relative_mae=err / naive if naive else math.nan,
            coverage=covered / scored if scored else math.nan,
        )


def _reason(m: SeriesModels, y: float, expected: Expectation | None, why: str) -> AnomalyReason:
    if expected is None:
        return AnomalyReason(m.detector_kind, y, detail=why)
    finite = lambda v: v if math.isfinite(v) else None  # noqa: E731
    return AnomalyReason(
        model=f"{m.detector_kind} on {m.forecaster_kind}",
        observed=y,
        expected=finite(expected.value),
        lower=finite(expected.lower),
        upper=finite(expected.upper),
        detail=why,
    )
