"""Anomaly detectors. ``residual_robust`` scores forecast residuals against a robust scale."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.special import erfc

from models.base import Expectation, Params
from models.slots import FieldSpec, OneSeriesDetector, Slotted


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


class ResidualLikelihood(OneSeriesDetector, Slotted, Params):
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

    Vectorised over series (:mod:`models.slots`); ``score_one``/``learn_one`` use one slot.
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

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """For :mod:`models.checks`: the defaults, and a ring of several residuals (``short``) with short holds."""
        yield {}
        yield {"short": 5, "warmup": 20, "hold": 10}

    def _fields(self) -> dict[str, FieldSpec]:
        return {
            "n": FieldSpec((), np.int64, 0),  # residuals learnt
            "scale": FieldSpec((), np.float64, 0.0),  # online median |residual|
            "mean": FieldSpec((), np.float64, 0.0),  # long-run mean and variance of the short mean of z
            "var": FieldSpec((), np.float64, 1.0),
            "recent": FieldSpec((self.short,), np.float64, 0.0),  # ring of the last z
            "alarm_at": FieldSpec((), np.int64, -(10**9)),
        }

    def seed(self, targets: np.ndarray, donors: np.ndarray) -> None:
        """Cold start: the distribution of deviations is scale-free; the scale itself is learnt afresh."""
        self._state().copy(["mean", "var"], donors, targets)

    def _z(self, slots: np.ndarray, residual: np.ndarray) -> np.ndarray:
        scale = self._state()["scale"][slots] * 1.4826
        z = np.where(
            scale > 0.0, residual / np.where(scale > 0.0, scale, 1.0), np.where(residual == 0.0, 0.0, self.clip)
        )
        return np.minimum(z, 1e6)

    def _raw(self, slots: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self._state()
        n = s["n"][slots]
        ring = s["recent"][:, slots]
        filled = np.minimum(n, self.short)
        oldest = ring[n % self.short, np.arange(len(slots))]
        total = ring.sum(axis=0) + z - np.where(filled >= self.short, oldest, 0.0)
        short_mean = total / np.minimum(n + 1, self.short)
        spread = np.sqrt(np.maximum(s["var"][slots], 1e-12))
        tail = np.maximum(0.5 * erfc((short_mean - s["mean"][slots]) / (spread * math.sqrt(2.0))), 1e-300)
        score = np.clip(np.log(tail) / math.log(1e-10), 0.0, 1.0)
        return score, short_mean, tail

    def score_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] of ``y`` against the forecaster's ``expected`` value (NaN: cannot score, 0)."""
        s = self._state()
        usable = np.isfinite(y) & np.isfinite(expected) & (s["n"][slots] >= self.warmup)
        residual = np.abs(np.where(usable, y - expected, 0.0))
        score, _, _ = self._raw(slots, self._z(slots, residual))
        held = (score >= self.alarm_level) & (s["n"][slots] - s["alarm_at"][slots] < self.hold)
        score = np.where(held, self.alarm_level * 0.99, score)
        return np.where(usable, score, 0.0)

    def learn_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray) -> None:
        s = self._state()
        ok = np.isfinite(y) & np.isfinite(expected)
        slots, residual = slots[ok], np.abs(y[ok] - expected[ok])
        if slots.size == 0:
            return
        n = s["n"][slots]
        first = n == 0
        s["scale"][slots[first]] = residual[first]
        z = self._z(slots, residual)
        raw, short_mean, _ = self._raw(slots, z)
        fresh = (n >= self.warmup) & (n - s["alarm_at"][slots] >= self.hold) & (raw >= self.alarm_level)
        s["alarm_at"][slots[fresh]] = n[fresh]  # a new alarm: the next ones are held
        s["recent"][n % self.short, slots] = z
        # the long-run distribution of the short mean (exponentially weighted, window ~ long)
        w = 1.0 / np.minimum(n + 1, self.long)
        mean, var = s["mean"][slots], s["var"][slots]
        delta = short_mean - mean
        s["mean"][slots] = mean + w * delta
        s["var"][slots] = (1.0 - w) * (var + w * delta * delta)
        s["scale"][slots] = robust_scale_many(s["scale"][slots], n, residual, self.warmup, self.rate, self.clip)
        s["n"][slots] = n + 1

    def explain(self, slot: int, t: float, y: float, expected: float) -> str:
        s = self._state()
        n = int(s["n"][slot])
        if not (math.isfinite(y) and math.isfinite(expected)):
            return "no expectation yet"
        if n < self.warmup:
            return f"warming up ({n}/{self.warmup} residuals)"
        slots = np.array([slot])
        z = self._z(slots, np.array([abs(y - expected)]))
        _, short_mean, tail = self._raw(slots, z)
        why = (
            f"{z[0]:.1f} robust deviations; recent mean {short_mean[0]:.1f} "
            f"vs usual {s['mean'][slot]:.1f} (p={tail[0]:.1e})"
        )
        since = n - int(s["alarm_at"][slot])
        return f"{why}; alarm raised {since} samples ago, held" if since < self.hold else why


def robust_scale_many(
    scale: np.ndarray, n: np.ndarray, residual: np.ndarray, warmup: int, rate: float, clip: float
) -> np.ndarray:
    """:func:`robust_scale_update` over arrays."""
    mean = scale + (residual - scale) / (n + 1.0)
    clipped = np.where(scale > 0.0, np.minimum(residual, clip * scale * 1.4826), residual)
    step = rate * np.maximum(scale, 1e-12)
    tracked = np.where(clipped > scale, scale + step, scale - step)
    return np.where(n < warmup, mean, tracked)
