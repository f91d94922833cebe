"""Per-series forecasters: ``seasonal_holt`` (damped Holt-Winters) and ``ar_rls``. The default is ``seasonal_ar``."""

from __future__ import annotations

import math

import numpy as np

from models.base import Expectation, Params, PointForecast
from models.calibration import CalibratedForecasts, ConformalBand


class SeasonalHolt(Params):
    """Damped additive Holt-Winters on a time-indexed seasonal profile, with conformal bands.

    The seasonal phase is taken from the timestamp, so gaps do not shift the season.
    During the first season the level is the running mean and the profile what is
    left of each sample (a fast start); then a phase seen ``n`` times learns at rate
    ``max(gamma, 1/(n+1))``. Bands are empirical quantiles of the signed errors of
    this model's own past forecasts, per step ahead (split-conformal, online).

    >>> f = SeasonalHolt(step_seconds=60, season_seconds=600, horizon=3)
    >>> for i in range(100):
    ...     f.learn_one(i * 60.0, 10.0 + (i % 10))
    >>> np.round(f.forecast(3).point, 1).tolist()
    [10.0, 11.0, 12.0]
    >>> f.learn_one(6000.0, float("nan"))  # missing values are skipped
    >>> f.forecast(2).lower.shape
    (2,)
    """

    def __init__(
        self,
        step_seconds: float = 60.0,
        season_seconds: float = 86_400.0,
        alpha: float = 0.3,
        beta: float = 0.02,
        gamma: float = 0.1,
        phi: float = 0.95,
        horizon: int = 12,
        interval: float = 0.9,
        window: int = 500,
        min_errors: int = 20,
        band_refresh: int = 16,
        non_negative: bool = False,
    ) -> None:
        self.step_seconds = step_seconds
        self.season_seconds = season_seconds
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.phi = phi
        self.horizon = horizon
        self.interval = interval
        self.window = window
        self.min_errors = min_errors
        self.band_refresh = band_refresh
        self.non_negative = non_negative  # clip points and bands at 0

    # -- state -----------------------------------------------------------------
    def _init_state(self, step: int, y: float) -> None:
        period = max(1, round(self.season_seconds / self.step_seconds))
        self.period_ = period
        self.level_ = y
        self.trend_ = 0.0
        self.season_ = np.zeros(period)
        self.season_seen_ = np.zeros(period, dtype=np.int64)
        self.last_step_ = step
        self.first_step_ = step
        if period > 1:  # the first season's values, until the profile is initialised
            self.season_[step % period] = y
        self.season_seen_[step % period] = 1
        self.band_ = ConformalBand(self.horizon, self.interval, self.window, self.min_errors, self.band_refresh)
        self.ahead_ = np.arange(1, self.horizon + 1)
        self.damp_ = np.cumsum(self.phi**self.ahead_) if self.phi < 1.0 else self.ahead_.astype(float)
        self.n_ = 1

    def _remember(self, step: int) -> None:
        self.band_.remember(step, self._points(step, self.horizon))

    def _step_of(self, t: float) -> int:
        return round(t / self.step_seconds)

    def _points(self, origin: int, horizon: int) -> np.ndarray:
        if horizon <= self.horizon:
            h, damp = self.ahead_[:horizon], self.damp_[:horizon]
        else:
            h = np.arange(1, horizon + 1)
            damp = np.cumsum(self.phi**h) if self.phi < 1.0 else h.astype(float)
        return self.level_ + damp * self.trend_ + self.season_[(origin + h) % self.period_]

    # -- protocol --------------------------------------------------------------
    def learn_one(self, t: float, y: float) -> None:
        if not math.isfinite(y):
            return
        step = self._step_of(t)
        if not hasattr(self, "level_"):
            self._init_state(step, y)
            self._remember(step)
            return
        gap = step - self.last_step_
        if gap <= 0:
            return  # duplicate or out of order: the first value seen wins
        self.band_.score(step, y)
        phase = step % self.period_
        seen = self.season_seen_[phase]
        if self.n_ < self.period_:
            # first season: remember the values; at its end the level is their mean
            # and the profile what is left (classical Holt-Winters initialisation)
            self.season_[phase] = y
            if self.n_ + 1 == self.period_ or step - self.first_step_ + 1 >= self.period_:
                seen_mask = (self.season_seen_ > 0) | (np.arange(self.period_) == phase)
                self.level_ = float(self.season_[seen_mask].mean())
                self.season_ = np.where(seen_mask, self.season_ - self.level_, 0.0)
                self.n_ = self.period_ - 1
            else:
                self.level_ = y
        else:
            damp = sum(self.phi**i for i in range(1, gap + 1))
            base = self.level_ + damp * self.trend_
            previous = self.level_
            self.level_ = self.alpha * (y - self.season_[phase]) + (1.0 - self.alpha) * base
            self.trend_ = self.beta * (self.level_ - previous) / gap + (1.0 - self.beta) * self.phi**gap * self.trend_
            rate = max(self.gamma, 1.0 / (seen + 1.0))
            self.season_[phase] += rate * (y - self.level_ - self.season_[phase])
        self.season_seen_[phase] = seen + 1
        self.last_step_ = step
        self.n_ += 1
        self._remember(step)

    def forecast(self, horizon: int) -> PointForecast:
        if not hasattr(self, "level_"):
            empty = np.full(horizon, np.nan)
            return PointForecast(empty, empty.copy(), empty.copy())
        point = self._points(self.last_step_, horizon)
        lo, hi = self.band_.band(horizon)
        return PointForecast(point, point + lo, point + hi).clipped(self.non_negative)

    def expect(self, t: float) -> Expectation | None:
        if not hasattr(self, "level_"):
            return None
        ahead = self._step_of(t) - self.last_step_
        if ahead < 1:
            return None
        if ahead > self.horizon:
            fc = self.forecast(ahead)
            return Expectation(float(fc.point[-1]), float(fc.lower[-1]), float(fc.upper[-1]))
        k = ahead - 1  # the common case, in scalars
        point = self.level_ + self.damp_[k] * self.trend_ + self.season_[(self.last_step_ + ahead) % self.period_]
        lo, hi = self.band_.edges()
        return Expectation(float(point), float(point + lo[k]), float(point + hi[k])).clipped(self.non_negative)


class AutoRegressiveRLS(CalibratedForecasts, Params):
    """Autoregression on differences, fitted by recursive least squares with forgetting.

    ``y`` is differenced once; the next difference is a linear function of the last
    ``p`` differences (and, with ``seasonal_lag``, of the difference one season ago),
    fitted exactly online by RLS with forgetting factor ``forget`` (no learning rate to
    tune, no divergence on raw values: the inputs are scaled by a running spread).
    Multi-step forecasts iterate the recursion; bands are online conformal.

    >>> f = AutoRegressiveRLS(step_seconds=60, horizon=3, p=2, seasonal_lag=False)
    >>> for i in range(300):
    ...     f.learn_one(i * 60.0, 0.5 * i)
    >>> np.round(f.forecast(3).point, 2).tolist()
    [150.0, 150.5, 151.0]
    """

    def __init__(
        self,
        step_seconds: float = 60.0,
        season_seconds: float = 86_400.0,
        horizon: int = 12,
        interval: float = 0.9,
        p: int = 12,
        seasonal_lag: bool = True,
        forget: float = 0.9995,
        prior: float = 100.0,
        non_negative: bool = False,
    ) -> None:
        self.step_seconds = step_seconds
        self.season_seconds = season_seconds
        self.horizon = horizon
        self.interval = interval
        self.p = p
        self.seasonal_lag = seasonal_lag
        self.forget = forget
        self.prior = prior
        self.non_negative = non_negative

    @property
    def _season(self) -> int:
        return max(1, round(self.season_seconds / self.step_seconds))

    def _init_state(self, step: int, y: float) -> None:
        self.memory_ = (self._season + 1) if self.seasonal_lag else self.p
        self.diffs_ = np.zeros(self.memory_ + 1)  # ring of past differences (scaled)
        self.n_diffs_ = 0
        size = self.p + (1 if self.seasonal_lag else 0) + 1
        self.w_ = np.zeros(size)
        self.P_ = np.eye(size) * self.prior
        self.spread_ = 0.0
        self.last_y_ = y
        self.last_step_ = step
        self.band_ = ConformalBand(self.horizon, self.interval)

    def _features(self, diffs: np.ndarray, k: int) -> np.ndarray:
        """Features to predict difference number k, from the ring of past differences."""
        m = self.memory_ + 1
        lags = [diffs[(k - j) % m] for j in range(1, self.p + 1)]
        if self.seasonal_lag:
            lags.append(diffs[(k - self._season) % m])
        return np.array([*lags, 1.0])

    def learn_one(self, t: float, y: float) -> None:
        if not math.isfinite(y):
            return
        step = round(t / self.step_seconds)
        if not hasattr(self, "w_"):
            self._init_state(step, y)
            self.band_.remember(step, self._forecast_points(self.horizon))
            return
        gap = step - self.last_step_
        if gap <= 0:
            return
        self.band_.score(step, y)
        diff = (y - self.last_y_) / gap  # a gap spreads the change evenly
        self.spread_ += (abs(diff) - self.spread_) * (0.01 if self.n_diffs_ > 100 else 1.0 / (self.n_diffs_ + 1))
        scale = self.spread_ or 1.0
        k = self.n_diffs_
        if k >= self.memory_:
            x = self._features(self.diffs_, k)
            target = diff / scale
            px = self.P_ @ x
            gain = px / (self.forget + x @ px)
            self.w_ += gain * (target - x @ self.w_)
            self.P_ = (self.P_ - np.outer(gain, px)) / self.forget
        self.diffs_[k % (self.memory_ + 1)] = diff / scale
        self.n_diffs_ += 1
        self.last_y_, self.last_step_ = y, step
        self.band_.remember(step, self._forecast_points(self.horizon))

    def _forecast_points(self, horizon: int) -> np.ndarray:
        if self.n_diffs_ < self.memory_:
            return np.full(horizon, self.last_y_)  # the last value until the model has its lags
        diffs = self.diffs_.copy()
        scale = self.spread_ or 1.0
        out, level = np.empty(horizon), self.last_y_
        for h in range(horizon):
            k = self.n_diffs_ + h
            d = float(self._features(diffs, k) @ self.w_)
            diffs[k % (self.memory_ + 1)] = d
            level += d * scale
            out[h] = level
        return out
