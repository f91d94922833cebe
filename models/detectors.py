"""Anomaly detectors. ``residual_robust`` scores forecast residuals against a robust scale."""

from __future__ import annotations

import math

from models.base import Expectation, Params


class ResidualRobust(Params):
    """Scores how far a sample falls from the forecaster's expectation, in robust units.

    The scale is an online estimate of the median absolute residual (stochastic
    quantile tracking); learning winsorises residuals at ``clip`` scales so an
    anomaly does not teach the detector that anomalies are normal.
    ``score = z^2 / (z^2 + half^2)``: 0.5 at ``half`` robust deviations.

    >>> d = ResidualRobust(warmup=5)
    >>> for i in range(50):
    ...     d.learn_one(i, 10.0 + (-1) ** i, Expectation(10.0, 8.0, 12.0))
    >>> round(d.score_one(50, 10.5, Expectation(10.0, 8.0, 12.0))[0], 2)
    0.01
    >>> d.score_one(51, 30.0, Expectation(10.0, 8.0, 12.0))[0] > 0.9
    True
    """

    def __init__(self, half: float = 4.0, warmup: int = 30, rate: float = 0.02, clip: float = 6.0) -> None:
        self.half = half
        self.warmup = warmup
        self.rate = rate
        self.clip = clip

    def _z(self, y: float, expected: Expectation) -> float | None:
        scale = getattr(self, "scale_", 0.0) * 1.4826
        if getattr(self, "n_", 0) < self.warmup or scale <= 0.0:
            return None
        return abs(y - expected.value) / scale

    def score_one(self, t: float, y: float, expected: Expectation | None) -> tuple[float, str]:
        if expected is None or not math.isfinite(y) or not math.isfinite(expected.value):
            return 0.0, "no expectation yet"
        z = self._z(y, expected)
        if z is None:
            return 0.0, f"warming up ({getattr(self, 'n_', 0)}/{self.warmup} residuals)"
        score = 1.0 / (1.0 + (self.half / z) ** 2) if z > 0.0 else 0.0  # z^2 / (z^2 + half^2), overflow-free
        return score, f"{z:.1f} robust deviations from the forecast"

    def learn_one(self, t: float, y: float, expected: Expectation | None) -> None:
        if expected is None or not math.isfinite(y) or not math.isfinite(expected.value):
            return
        residual = abs(y - expected.value)
        if not hasattr(self, "scale_"):
            self.scale_ = residual
            self.n_ = 1
            return
        if self.n_ >= self.warmup and self.scale_ > 0.0:
            residual = min(residual, self.clip * self.scale_ * 1.4826)
        # stochastic median tracking with a step proportional to the scale
        step = self.rate * max(self.scale_, 1e-12) if self.n_ >= self.warmup else residual - self.scale_
        if self.n_ < self.warmup:
            self.scale_ += step / (self.n_ + 1)  # running mean while warming up
        else:
            self.scale_ += step if residual > self.scale_ else -step
        self.n_ += 1
