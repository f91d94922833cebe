"""Surges: how far a series usually rises above its one-step forecast at each time of day.

Per time of day (``bins`` bins a day: 5 minutes by default) an exponentially weighted
mean of the rises above the one-step forecast, in units of the series' spread at the
forecast's origin (so a series times 10^k has the same profile, and float16 holds it).
``point + z * usual surge * spread`` is not the calibrated band: it is wide exactly where
recent days had sudden rises, at the times they had them. The Knative floor provisions
for it, ahead of cold starts.

The profile lives in its owner's slot arrays (one ``[bins]`` row per series, see
:mod:`models.slots`); :class:`SurgeProfile` is the arithmetic over that array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.slots import FieldSpec

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SurgeProfile:
    """Learn and read the surge profiles held in a ``[slot, bins]`` float16 array.

    >>> profile = SurgeProfile(bins=4, rate=1.0, z=2.0)  # 6-hour bins, today's rise replaces the past
    >>> surge = np.zeros((1, 4), np.float16)
    >>> slot, seconds = np.array([0]), 21_600.0  # a sample every 6 hours
    >>> profile.learn(surge, slot, np.array([1]), seconds, np.array([3.0]))  # at 06:00, 3 spreads above the forecast
    >>> surge.tolist()
    [[0.0, 3.0, 0.0, 0.0]]
    >>> profile.above(surge, slot, np.array([[2, 3]]), seconds).tolist()  # 12:00 is next to 06:00
    [[6.0, 0.0]]
    """

    bins: int = 288
    rate: float = 0.05  # per day: the weight of today's rise at a time of day
    z: float = 2.5  # surges provisioned for

    def field(self) -> FieldSpec:
        """The per-series state: the mean rise in each bin, 0 until one is seen."""
        return FieldSpec((self.bins,), np.float16, 0.0)

    def bin_of(self, steps: np.ndarray, seconds: float) -> np.ndarray:
        """The time-of-day bin of step ``steps`` of a series sampled every ``seconds``."""
        t = np.mod(steps * seconds, DAY)
        return np.minimum((t * (self.bins / DAY)).astype(np.int64), self.bins - 1)

    def learn(self, surge: np.ndarray, slots: np.ndarray, steps: np.ndarray, seconds: float, rise: np.ndarray) -> None:
        """Today's ``rise`` (>= 0, in spreads) at this time of day joins that bin's weighted mean.

        The weight is ``rate`` per day, shared by the samples that fall in one bin each day.
        """
        bins = self.bin_of(steps, seconds)
        per_bin_and_day = max(DAY / self.bins / seconds, 1.0)  # samples falling in one bin each day
        rate = self.rate / per_bin_and_day
        old = surge[slots, bins].astype(np.float32)
        surge[slots, bins] = old + rate * (rise - old)

    def above(self, surge: np.ndarray, slots: np.ndarray, steps: np.ndarray, seconds: float) -> np.ndarray:
        """``z`` times the surge usually seen around the time of day of each of ``steps`` (``[slot, step]``).

        Around: the largest of the step's bin and its two neighbours, as the same rise
        comes a few minutes earlier or later from one day to the next.
        """
        bins = self.bin_of(steps, seconds)
        rows, n = slots[:, None], self.bins
        usual = np.maximum(np.maximum(surge[rows, (bins - 1) % n], surge[rows, bins]), surge[rows, (bins + 1) % n])
        result: np.ndarray = self.z * usual.astype(np.float64)
        return result
