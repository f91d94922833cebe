"""river's models behind our protocols: SNARIMAX and Holt-Winters forecasters, HalfSpaceTrees detector.

river is imported when a model is first built, not at import. Its forecasters have no
time index: a gap is simply not learnt, duplicates and late samples are ignored like
everywhere else. Bands come from the same online conformal calibration as ours.

river's forecasters see each series in units of its first non-zero |value| (``unit_``),
so that a series times 10^k is forecast times 10^k: river 0.26's additive ``HoltWinters``
initialises its season as ``y / level`` (a ratio, added to the level), which is not
scale-free on raw values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.base import Expectation, Params
from models.calibration import CalibratedForecasts, ConformalBand


class _RiverForecaster(CalibratedForecasts, Params):
    """Shared plumbing: step bookkeeping, target scaling is the subclass's, calibrated bands."""

    step_seconds: float
    season_seconds: float
    horizon: int
    interval: float
    non_negative: bool
    model_: Any
    unit_: float
    band_: ConformalBand
    last_step_: int

    def _model(self) -> Any:
        raise NotImplementedError

    @property
    def _season_steps(self) -> int:
        return max(1, round(self.season_seconds / self.step_seconds))

    def learn_one(self, t: float, y: float) -> None:
        if not math.isfinite(y):
            return
        step = round(t / self.step_seconds)
        if hasattr(self, "model_"):
            if step <= self.last_step_:
                return
            self.band_.score(step, y)
        else:
            self.model_ = self._model()
            self.band_ = ConformalBand(self.horizon, self.interval)
            self.unit_ = 0.0
        if self.unit_ == 0.0 and y != 0.0:
            self.unit_ = abs(y)
        self.model_.learn_one(y / self.unit_ if self.unit_ else 0.0)
        self.last_step_ = step
        self.band_.remember(step, self._forecast_points(self.horizon))

    def _forecast_points(self, horizon: int) -> np.ndarray:
        try:
            points = np.asarray(self.model_.forecast(horizon=horizon), dtype=np.float64) * self.unit_
        except (IndexError, ValueError, ZeroDivisionError):  # river before its first season is complete
            return np.full(horizon, np.nan)
        return np.where(np.isfinite(points), points, np.nan)


class RiverSnarimax(_RiverForecaster):
    """river ``SNARIMAX`` with a standardised target and clipped gradients (raw CPU values make it diverge)."""

    def __init__(
        self,
        step_seconds: float = 60.0,
        season_seconds: float = 86_400.0,
        horizon: int = 12,
        interval: float = 0.9,
        p: int = 12,
        d: int = 1,
        q: int = 0,
        sp: int = 1,
        sd: int = 0,
        sq: int = 0,
        clip_gradient: float = 1.0,
        non_negative: bool = False,
    ) -> None:
        self.non_negative = non_negative
        self.step_seconds = step_seconds
        self.season_seconds = season_seconds
        self.horizon = horizon
        self.interval = interval
        self.p, self.d, self.q, self.sp, self.sd, self.sq = p, d, q, sp, sd, sq
        self.clip_gradient = clip_gradient

    def _model(self) -> Any:
        from river import linear_model, preprocessing, time_series

        scaled = preprocessing.StandardScaler() | linear_model.LinearRegression(clip_gradient=self.clip_gradient)
        regressor = preprocessing.TargetStandardScaler(regressor=scaled)  # type: ignore[arg-type]  # a pipeline is a regressor
        return time_series.SNARIMAX(
            p=self.p, d=self.d, q=self.q, m=self._season_steps, sp=self.sp, sd=self.sd, sq=self.sq, regressor=regressor
        )


class RiverHoltWinters(_RiverForecaster):
    """river ``HoltWinters`` (additive), the season taken from ``season_seconds``."""

    def __init__(
        self,
        step_seconds: float = 60.0,
        season_seconds: float = 86_400.0,
        horizon: int = 12,
        interval: float = 0.9,
        alpha: float = 0.3,
        beta: float = 0.01,
        gamma: float = 0.1,
        non_negative: bool = False,
    ) -> None:
        self.non_negative = non_negative
        self.step_seconds = step_seconds
        self.season_seconds = season_seconds
        self.horizon = horizon
        self.interval = interval
        self.alpha, self.beta, self.gamma = alpha, beta, gamma

    def _model(self) -> Any:
        from river import time_series

        return time_series.HoltWinters(
            alpha=self.alpha, beta=self.beta, gamma=self.gamma, seasonality=self._season_steps
        )


class HalfSpaceTreesDetector(Params):
    """river ``HalfSpaceTrees`` on min-max scaled features: the value and, when known, the forecast residual."""

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed

    @staticmethod
    def _features(y: float, expected: Expectation | None) -> dict[str, float]:
        x = {"y": y}
        if expected is not None and math.isfinite(expected.value):
            x["residual"] = y - expected.value
        return x

    def _pipeline(self) -> Any:
        if not hasattr(self, "model_"):
            from river import anomaly, preprocessing

            self.model_ = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
                n_trees=self.n_trees, height=self.height, window_size=self.window_size, seed=self.seed
            )
        return self.model_

    def score_one(self, t: float, y: float, expected: Expectation | None) -> tuple[float, str]:
        if not math.isfinite(y):
            return 0.0, "missing value"
        score = float(self._pipeline().score_one(self._features(y, expected)))
        score = min(1.0, max(0.0, score)) if math.isfinite(score) else 0.0
        return score, f"half-space trees mass score {score:.2f}"

    def learn_one(self, t: float, y: float, expected: Expectation | None) -> None:
        if math.isfinite(y):
            self._pipeline().learn_one(self._features(y, expected))
