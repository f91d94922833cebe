"""The model bank: the state of every series, and the only code that knows its layout.

Series whose kinds are vectorised live in a :class:`~models.fleet.Fleet` per model spec
(numpy arrays, one slot per series); the others (river's kinds, for instance) keep one
forecaster and detector object each. Callers see one bank either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, SeriesKey
from models.base import Detector, Expectation, Forecaster
from models.fleet import Batch, Fleet, ForecastRows, ScoreRows
from models.kinds import ModelSpec

ModelFactory = Callable[[SeriesKey], ModelSpec]


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
    drifts: int = 0  # concept drifts detected (and adapted to)
    abs_error: float = 0.0  # the sums behind mae and relative_mae (to compare windows)
    abs_naive: float = 0.0

    def as_metrics(self) -> dict[str, float]:
        return {
            "series": self.series,
            "scored": self.scored,
            "mae_1step": self.mae,
            "relative_mae_1step": self.relative_mae,
            "coverage_1step": self.coverage,
            "drifts": self.drifts,
        }


@dataclass
class ModelBank:
    """A forecaster and a detector for every series; scores, then learns, each sample."""

    factory: ModelFactory
    interval: float = 0.9
    series: dict[SeriesKey, SeriesModels] = field(default_factory=dict)  # per-series kinds
    fleets: dict[ModelSpec, Fleet] = field(default_factory=dict)  # vectorised kinds
    _specs: dict[SeriesKey, ModelSpec] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.series) + sum(len(f) for f in self.fleets.values())

    def series_keys(self) -> list[SeriesKey]:
        return [*self.series, *(k for f in self.fleets.values() for k in f.slots)]

    def snapshot(self) -> dict[str, Any]:
        """The learnt state, for a checkpoint (restore with ``ModelBank(factory, interval, **snapshot)``)."""
        return {"series": self.series, "fleets": self.fleets}

    def latest_timestamp(self) -> float:
        """The newest sample learnt by any series (-inf when none)."""
        per = (m.last_timestamp for m in self.series.values())
        fleets = (f.latest_timestamp() for f in self.fleets.values())
        return max([*per, *fleets], default=-math.inf)

    def _spec(self, key: SeriesKey) -> ModelSpec:
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = self.factory(key)
        return spec

    def _fleet(self, spec: ModelSpec) -> Fleet:
        fleet = self.fleets.get(spec)
        if fleet is None:
            forecaster, detector = spec.build()
            fleet = self.fleets[spec] = Fleet(forecaster, detector, spec.forecaster, spec.detector)
        return fleet

    def _models(self, key: SeriesKey, spec: ModelSpec) -> SeriesModels:
        models = self.series.get(key)
        if models is None:
            forecaster, detector = spec.build()
            models = self.series[key] = SeriesModels(forecaster, detector, spec.forecaster, spec.detector)
        return models

    def observe_many(self, batches: Sequence[Batch], report_at: float | None = None) -> list[AnomalyScore | ScoreRows]:
        """Score then learn the new samples of many series at once.

        Samples at or before a series' last learnt timestamp are ignored (duplicates and
        late arrivals never rewrite history); NaN is a missing value. Returns every score
        when ``report_at`` is None; otherwise the scores at or above it, then the last
        score of each series (some as :class:`ScoreRows`: arrays, read lazily).
        """
        by_fleet: dict[ModelSpec, list[Batch]] = {}
        out: list[AnomalyScore | ScoreRows] = []
        per_series = self.series  # usually empty: then no lookup per key
        specs = self._specs
        for batch in batches:
            key, timestamps, values = batch
            spec = specs.get(key) or self._spec(key)
            if spec.vectorised and not (per_series and key in per_series):
                by_fleet.setdefault(spec, []).append(batch)
                continue
            scores = self._observe_one(self._models(key, spec), key, timestamps, values)
            if report_at is not None and scores:
                scores = [s for s in scores[:-1] if s.score >= report_at] + [scores[-1]]
            out.extend(scores)
        for spec, fleet_batches in by_fleet.items():
            out.extend(self._fleet(spec).observe(fleet_batches, report_at))
        return out

    def observe(self, key: SeriesKey, timestamps: np.ndarray, values: np.ndarray) -> list[AnomalyScore]:
        """Every score of one series' new samples (see :meth:`observe_many`)."""
        return [s for s in self.observe_many([(key, timestamps, values)]) if isinstance(s, AnomalyScore)]

    def _observe_one(
        self, m: SeriesModels, key: SeriesKey, timestamps: np.ndarray, values: np.ndarray
    ) -> list[AnomalyScore]:
        scores: list[AnomalyScore] = []
        for t, y in zip(np.asarray(timestamps).tolist(), np.asarray(values).tolist(), strict=True):
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

    def forecast_many(
        self, keys: Sequence[SeriesKey], horizon: int, step_seconds: float
    ) -> list[Forecast | ForecastRows]:
        """The forecasts from each series' last learnt sample (series without model or data are left out).

        Vectorised fleets answer with :class:`ForecastRows` (arrays, read lazily).
        """
        out: list[Forecast | ForecastRows] = []
        by_fleet: dict[ModelSpec, list[SeriesKey]] = {}
        per_series = self.series
        for key in keys:
            m = per_series.get(key) if per_series else None
            if m is not None:
                if (fc := self._forecast_one(key, m, horizon, step_seconds)) is not None:
                    out.append(fc)
            elif (spec := self._spec(key)) in self.fleets:
                by_fleet.setdefault(spec, []).append(key)
        for spec, fleet_keys in by_fleet.items():
            rows = self.fleets[spec].forecast(fleet_keys, horizon, step_seconds, self.interval)
            if rows is not None:
                out.append(rows)
        return out

    def forecast(self, key: SeriesKey, horizon: int, step_seconds: float) -> Forecast | None:
        for found in self.forecast_many([key], horizon, step_seconds):
            return found.row(0) if isinstance(found, ForecastRows) else found
        return None

    def _forecast_one(self, key: SeriesKey, m: SeriesModels, horizon: int, step_seconds: float) -> Forecast | None:
        if m.learnt == 0:
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
        last = m.last_value if math.isfinite(m.last_value) else None
        return Forecast(
            key, m.last_timestamp, step_seconds, tuple(fc.point.tolist()), quantiles, m.forecaster_kind, last=last
        )

    def drop(self, keys: Iterable[SeriesKey]) -> int:
        """Forget series that vanished; returns how many were dropped."""
        keys = list(keys)
        dropped = sum(self.series.pop(key, None) is not None for key in keys)
        dropped += sum(fleet.drop(keys) for fleet in self.fleets.values())
        for key in keys:
            self._specs.pop(key, None)
        return dropped

    def adopt(self, source: ModelBank, spec: ModelSpec, signal: str) -> bool:
        """Take over ``source``'s fleet for ``spec``, with what it learnt (a challenger that ran in shadow).

        Only when ``source`` has a fleet for ``spec`` that holds series of ``signal`` alone and
        this bank has no fleet for ``spec``: then this bank forgets its own series of
        ``signal``, the fleet moves here, ``source`` forgets whatever else it holds of
        ``signal``, and the answer is True. Otherwise nothing changes and the answer is False.
        As ever, this bank's factory says which spec a series runs: it must give ``spec`` for
        the series of ``signal`` before they are observed again (the service switches its
        champion first). Only model state moves: forecasts and scores kept elsewhere are the
        caller's to drop.
        """
        fleet = source.fleets.get(spec)
        if fleet is None or spec in self.fleets or any(key.signal != signal for key in fleet.slots):
            return False
        del source.fleets[spec]
        for key in fleet.slots:
            source._specs.pop(key, None)
        source.drop([key for key in source.series_keys() if key.signal == signal])
        self.drop([key for key in self.series_keys() if key.signal == signal])
        self.fleets[spec] = fleet
        return True

    def accuracy(self, signal: str | None = None) -> BankAccuracy:
        """One-step accuracy over every series (or those of ``signal``)."""
        per = [m for k, m in self.series.items() if signal is None or k.signal == signal]
        fleets = [f.totals(signal) for f in self.fleets.values()]
        scored = sum(m.scored for m in per) + int(sum(f["scored"] for f in fleets))
        err = sum(m.abs_error_sum for m in per) + sum(f["abs_error"] for f in fleets)
        naive = sum(m.abs_naive_sum for m in per) + sum(f["abs_naive"] for f in fleets)
        covered = sum(m.covered for m in per) + sum(f["covered"] for f in fleets)
        return BankAccuracy(
            series=len(self)
            if signal is None
            else len(per) + sum(sum(k.signal == signal for k in f.slots) for f in self.fleets.values()),
            scored=scored,
            mae=err / scored if scored else math.nan,
            relative_mae=err / naive if naive else math.nan,
            coverage=covered / scored if scored else math.nan,
            drifts=int(sum(f["drifts"] for f in fleets)),
            abs_error=float(err),
            abs_naive=float(naive),
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
