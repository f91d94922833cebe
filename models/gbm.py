"""``gbm_lags``: scikit-learn gradient boosting on lag features, retrained periodically.

One direct multi-horizon model per series: the target is the change from the origin
to ``h`` steps ahead (in units of the series' spread), the features are ``h``, the
last ``lags`` changes up to the origin and the time of day and week of the target.
It is refitted every ``retrain_every`` samples on the last ``window`` samples (a
batch model behind the online protocol); between fits it forecasts from the latest
lags. Bands are online conformal (:mod:`models.calibration`). Per series and slower
than the vectorised default: use it where its accuracy pays for its cost.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from models.base import Params
from models.calibration import CalibratedForecasts, ConformalBand

DAY, WEEK = 86_400.0, 604_800.0


class GradientBoostedLags(CalibratedForecasts, Params):
    """
    >>> f = GradientBoostedLags(step_seconds=60, horizon=3, min_train=100, retrain_every=100, max_iter=20)
    >>> for i in range(400):
    ...     f.learn_one(i * 60.0, 10.0 + (i % 2))
    >>> np.round(f.forecast(2).point).tolist()
    [10.0, 11.0]
    """

    def __init__(
        self,
        step_seconds: float = 60.0,
        horizon: int = 12,
        interval: float = 0.9,
        lags: int = 24,
        window: int = 2016,
        retrain_every: int = 288,
        min_train: int = 200,
        max_rows: int = 10_000,
        max_iter: int = 50,
        learning_rate: float = 0.1,
        seed: int = 0,
        non_negative: bool = False,
    ) -> None:
        self.step_seconds = step_seconds
        self.horizon = horizon
        self.interval = interval
        self.lags = lags
        self.window = window
        self.retrain_every = retrain_every
        self.min_train = min_train
        self.max_rows = max_rows
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.seed = seed
        self.non_negative = non_negative

    def _features(self, values: np.ndarray, origins: np.ndarray, ahead: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Rows for (origin index into ``values``, steps ahead); ``steps`` maps an index to its step number."""
        scale = self.scale_ or 1.0
        changes = np.stack([values[origins] - values[origins - j] for j in range(1, self.lags + 1)], axis=1) / scale
        t = (steps[origins] + ahead) * self.step_seconds
        day, week = 2 * np.pi * (t % DAY) / DAY, 2 * np.pi * (t % WEEK) / WEEK
        return np.column_stack([ahead, changes, np.sin(day), np.cos(day), np.sin(week), np.cos(week)])

    def learn_one(self, t: float, y: float) -> None:
        if not math.isfinite(y):
            return
        step = round(t / self.step_seconds)
        if not hasattr(self, "band_"):
            self.values_ = np.full(self.window, np.nan)
            self.count_ = 0
            self.scale_ = 0.0
            self.last_y_: float = y
            self.model_: HistGradientBoostingRegressor | None = None
            self.since_fit_ = 0
            self.band_ = ConformalBand(self.horizon, self.interval)
            self._push(step, y)
            return
        gap = step - self.last_step_
        if gap <= 0:
            return
        self.band_.score(step, y)
        for k in range(1, min(gap, self.window)):  # a gap is filled by interpolation
            self._push(self.last_step_ + 1, self.last_y_ + (y - self.last_y_) * k / gap)
        self._push(step, y)
        self.since_fit_ += 1
        if self.count_ >= self.min_train and (self.model_ is None or self.since_fit_ >= self.retrain_every):
            self._fit()

    def _push(self, step: int, y: float) -> None:
        if self.count_:
            self.scale_ += (abs(y - self.last_y_) - self.scale_) / min(self.count_, 500)
        self.values_[self.count_ % self.window] = y
        self.count_ += 1
        self.last_step_, self.last_y_ = step, y
        self.band_.remember(step, self._forecast_points(self.horizon))

    def _history(self) -> tuple[np.ndarray, np.ndarray]:
        """Values in time order and their step numbers."""
        n = min(self.count_, self.window)
        order = (np.arange(self.count_ - n, self.count_)) % self.window
        return self.values_[order], np.arange(self.last_step_ - n + 1, self.last_step_ + 1)

    def _fit(self) -> None:
        values, steps = self._history()
        origins = np.arange(self.lags, len(values) - 1)
        rows_o, rows_h = [], []
        for ahead in range(1, self.horizon + 1):
            usable = origins[origins + ahead < len(values)]
            rows_o.append(usable)
            rows_h.append(np.full(len(usable), ahead))
        o, h = np.concatenate(rows_o), np.concatenate(rows_h)
        if len(o) > self.max_rows:  # a random subsample (seeded), not a stride: strides alias with cycles
            keep = np.sort(np.random.default_rng(self.seed + self.count_).choice(len(o), self.max_rows, replace=False))
            o, h = o[keep], h[keep]
        x = self._features(values, o, h, steps)
        target = (values[o + h] - values[o]) / (self.scale_ or 1.0)
        model = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, random_state=self.seed
        )
        self.model_ = model.fit(x, target)
        self.since_fit_ = 0

    def _forecast_points(self, horizon: int) -> np.ndarray:
        if self.model_ is None or self.count_ <= self.lags:
            return np.full(horizon, self.last_y_)  # the last value until the first fit
        values, steps = self._history()
        origin = np.full(horizon, len(values) - 1)
        x = self._features(values, origin, np.minimum(np.arange(1, horizon + 1), self.horizon), steps)
        return self.last_y_ + self.model_.predict(x) * (self.scale_ or 1.0)
