"""Online split-conformal prediction bands: the empirical quantiles of a model's own past errors.

Every forecaster that can say "what I predicted h steps ago" gets calibrated bands the
same way: the signed errors per step ahead go into a ring of ``window`` values; the
band's edges are their ``(1-interval)/2`` and ``(1+interval)/2`` quantiles, recomputed
every ``refresh`` scored forecasts with one sort.
"""

from __future__ import annotations

import numpy as np

from models.base import Expectation, PointForecast


class ConformalBand:
    """Signed errors per step ahead, and the band they imply.

    >>> band = ConformalBand(horizon=2, interval=0.8, window=100, min_errors=5)
    >>> band.remember(origin=0, points=np.array([10.0, 10.0]))
    >>> for step, y in enumerate([11.0, 9.0, 12.0, 8.0, 10.0, 10.5, 9.5], start=1):
    ...     band.score(step, y)
    ...     band.remember(step, np.array([10.0, 10.0]))
    >>> lo, hi = band.edges()
    >>> bool(lo[0] < 0 < hi[0])
    True
    """

    def __init__(
        self, horizon: int, interval: float, window: int = 500, min_errors: int = 20, refresh: int = 16
    ) -> None:
        self.horizon = horizon
        self.interval = interval
        self.window = window
        self.min_errors = min_errors
        self.refresh = refresh
        self.errors = np.full((horizon, window), np.nan)
        self.positions = np.zeros(horizon, dtype=np.int64)
        # the forecasts of the last `horizon` origins, in a ring: row = origin % horizon
        self.points = np.zeros((horizon, horizon))
        self.origins = np.full(horizon, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._edges = (np.full(horizon, np.nan), np.full(horizon, np.nan))
        self._age = refresh  # stale: computed at first use

    def remember(self, origin: int, points: np.ndarray) -> None:
        """The forecasts made at step ``origin`` for the next ``horizon`` steps."""
        row = origin % self.horizon
        self.origins[row] = origin
        self.points[row] = points[: self.horizon]

    def score(self, step: int, y: float) -> None:
        """``y`` arrived at ``step``: record the errors of the forecasts made 1..horizon steps before."""
        ahead = step - self.origins
        rows = np.flatnonzero((ahead >= 1) & (ahead <= self.horizon))
        if rows.size:
            k = ahead[rows] - 1
            errors = y - self.points[rows, k]
            known = np.isfinite(errors)  # a model that could not forecast yet has no error to learn from
            k, errors = k[known], errors[known]
            self.errors[k, self.positions[k] % self.window] = errors
            self.positions[k] += 1
            self._age += 1

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Offsets (lower, upper) to add to a point forecast, per step ahead; NaN while too few errors."""
        if self._age >= self.refresh:
            tail = (1.0 - self.interval) / 2.0
            counts = np.minimum(self.positions, self.window)
            ordered = np.sort(self.errors, axis=1)  # NaN (not yet filled) sorts last
            rows = np.arange(self.horizon)
            last = np.maximum(counts - 1, 0)

            def quantile(q: float) -> np.ndarray:  # linear interpolation, as numpy's default
                pos = q * last
                below = np.floor(pos).astype(np.int64)
                above = np.minimum(below + 1, last)
                frac = pos - below
                return ordered[rows, below] * (1.0 - frac) + ordered[rows, above] * frac

            ok = counts >= self.min_errors
            self._edges = (np.where(ok, quantile(tail), np.nan), np.where(ok, quantile(1.0 - tail), np.nan))
            self._age = 0
        return self._edges

    def band(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Edges for ``horizon`` steps; beyond the tracked horizon the last band widens with sqrt(h)."""
        tracked_lo, tracked_hi = self.edges()
        usable = min(horizon, self.horizon)
        lo, hi = np.full(horizon, np.nan), np.full(horizon, np.nan)
        lo[:usable], hi[:usable] = tracked_lo[:usable], tracked_hi[:usable]
        ok = np.flatnonzero(np.isfinite(tracked_lo))
        if horizon > usable and ok.size:
            last = ok[-1]
            scale = np.sqrt(np.arange(usable + 1, horizon + 1) / (last + 1))
            lo[usable:], hi[usable:] = tracked_lo[last] * scale, tracked_hi[last] * scale
        return lo, hi


class CalibratedForecasts:
    """``forecast`` and ``expect`` for a forecaster that keeps a :class:`ConformalBand` in ``band_``.

    The forecaster provides ``step_seconds``, ``non_negative`` (clip at 0), ``last_step_`` and
    ``_forecast_points(horizon)``; both methods answer "cannot tell yet" (NaN, None) until
    the first sample was learnt.
    """

    step_seconds: float
    non_negative: bool
    last_step_: int
    band_: ConformalBand

    def _forecast_points(self, horizon: int) -> np.ndarray:
        raise NotImplementedError

    def forecast(self, horizon: int) -> PointForecast:
        if not hasattr(self, "band_"):
            empty = np.full(horizon, np.nan)
            return PointForecast(empty, empty.copy(), empty.copy())
        point = self._forecast_points(horizon)
        lo, hi = self.band_.band(horizon)
        return PointForecast(point, point + lo, point + hi).clipped(self.non_negative)

    def expect(self, t: float) -> Expectation | None:
        if not hasattr(self, "band_"):
            return None
        ahead = round(t / self.step_seconds) - self.last_step_
        if ahead < 1:
            return None
        fc = self.forecast(ahead)
        return Expectation(float(fc.point[-1]), float(fc.lower[-1]), float(fc.upper[-1]))
