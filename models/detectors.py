"""Anomaly detectors. ``residual_robust`` scores forecast residuals against a robust scale."""

from __future__ import annotations

import math

from models.base import Expectation, Params


def robust_scale_update(scale: float, n: int, residual: float, warmup: int, rate: float, clip: float) -> float:
    """One step of the online median of |residual|: a running mean while warming up, then
    stochastic quantile tracking with a step proportional to the scale, on residuals
    winsorised at ``clip`` robust deviations (so an anomaly does not teach that anomalies are normal)."""
    if n < warmup:
        return scale + (residual - scale) / (n + 1)
    if scale > 0.0:
        residual = min(residual, clip * scale * 1.4826)
    step = rate * max(scale, 1e-12)
    return scale + step if residual > scale else scale - step


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
        self.scale_ = robust_scale_update(self.scale_, self.n_, residual, self.warmup, self.rate, self.clip)
        self.n_ += 1


class ResidualLikelihood(Params):
    """Anomaly likelihood of forecast residuals: how unusual the recent deviations are for this series.

    The core is :class:`ResidualRobust`'s robust deviation ``z`` (winsorised online median of
    |residual|). Like Numenta's anomaly likelihood, the score then compares the mean ``z`` of
    the last ``short`` samples with the distribution of ``z`` over the last ``long`` samples
    (mean and spread tracked online): ``p`` = the Gaussian tail probability of that short
    mean, reported on a log scale, ``score = log(p) / log(1e-10)`` clipped to [0, 1], so that
    heavy-tailed series do not alarm all the time and 0.5 means p ~ 1e-5. After a score at
    or above ``alarm_level``, scores are held just below it for ``hold`` samples: the
    series is still anomalous, but it is the same alarm (NAB counts repeated alarms as
    false positives; so do people on call).
    """

    def __init__(
        self,
        short: int = 1,
        long: int = 2000,
        warmup: int = 100,
        rate: float = 0.02,
        clip: float = 6.0,
        alarm_level: float = 0.7,
        hold: int = 100,
    ) -> None:
        self.short = short
        self.long = long
        self.warmup = warmup
        self.rate = rate
        self.clip = clip
        self.alarm_level = alarm_level
        self.hold = hold

    def _z(self, y: float, expected: Expectation) -> float:
        scale = getattr(self, "scale_", 0.0) * 1.4826
        residual = abs(y - expected.value)
        if scale <= 0.0:
            return 0.0 if residual == 0.0 else self.clip
        return min(residual / scale, 1e6)

    def _raw(self, y: float, expected: Expectation) -> tuple[float, str]:
        z = self._z(y, expected)
        full = len(self.recent_) >= self.short
        recent = self.recent_sum_ + z - (self.recent_[0] if full else 0.0)
        short_mean = recent / min(self.n_ + 1, self.short)
        spread = math.sqrt(max(self.var_, 1e-12))
        tail = max(0.5 * math.erfc((short_mean - self.mean_) / (spread * math.sqrt(2.0))), 1e-300)
        score = min(1.0, max(0.0, math.log(tail) / math.log(1e-10)))
        return (
            score,
            f"{z:.1f} robust deviations; recent mean {short_mean:.1f} vs usual {self.mean_:.1f} (p={tail:.1e})",
        )

    def _usable(self, y: float, expected: Expectation | None) -> bool:
        return expected is not None and math.isfinite(y) and math.isfinite(expected.value)

    def score_one(self, t: float, y: float, expected: Expectation | None) -> tuple[float, str]:
        if expected is None or not self._usable(y, expected):
            return 0.0, "no expectation yet"
        if getattr(self, "n_", 0) < self.warmup:
            return 0.0, f"warming up ({getattr(self, 'n_', 0)}/{self.warmup} residuals)"
        score, why = self._raw(y, expected)
        since = self.n_ - self.alarm_at_
        if score >= self.alarm_level and since < self.hold:
            return self.alarm_level * 0.99, f"{why}; alarm raised {since} samples ago, held"
        return score, why

    def learn_one(self, t: float, y: float, expected: Expectation | None) -> None:
        if expected is None or not self._usable(y, expected):
            return
        residual = abs(y - expected.value)
        if not hasattr(self, "scale_"):
            self.scale_, self.n_, self.mean_, self.var_ = residual, 0, 0.0, 1.0
            self.recent_: list[float] = []
            self.recent_sum_ = 0.0
            self.alarm_at_ = -(10**9)
        fresh_alarm_possible = self.n_ >= self.warmup and self.n_ - self.alarm_at_ >= self.hold
        if fresh_alarm_possible and self._raw(y, expected)[0] >= self.alarm_level:
            self.alarm_at_ = self.n_  # a new alarm: the next ones are held
        z = self._z(y, expected)
        self.recent_.append(z)
        self.recent_sum_ += z
        if len(self.recent_) > self.short:
            self.recent_sum_ -= self.recent_.pop(0)
        # the long-run distribution of the short mean (exponentially weighted, window ~ long)
        short_mean = self.recent_sum_ / len(self.recent_)
        w = 1.0 / min(self.n_ + 1, self.long)
        delta = short_mean - self.mean_
        self.mean_ += w * delta
        self.var_ = (1.0 - w) * (self.var_ + w * delta * delta)
        self.scale_ = robust_scale_update(self.scale_, self.n_, residual, self.warmup, self.rate, self.clip)
        self.n_ += 1
