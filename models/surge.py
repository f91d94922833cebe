"""Surges: how far a series usually rises above its one-step forecast at each time of day.

Per time of day (``bins`` bins a day: 5 minutes by default) an exponentially weighted
mean of the rises above the one-step forecast, in units of the series' spread at the
forecast's origin (so a series times 10^k has the same profile, and float16 holds it).
``point + z * usual surge * spread`` is not the calibrated band: it is wide exactly where
recent days had sudden rises, at the times they had them. The Knative floor provisions
for it, ahead of cold starts.

The profile lives in its owner's slot arrays (a ``[bins]`` field of each series, see
:mod:`models.slots`); :class:`SurgeProfile` is the arithmetic over that array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.slots import FieldSpec, Round

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SurgeProfile:
    """Learn and read the surge profiles held in a ``[bins, slot]`` float16 array.

    >>> profile = SurgeProfile(bins=4, rate=1.0, z=2.0)  # 6-hour bins, today's rise replaces the past
    >>> surge = np.zeros((4, 1), np.float16)
    >>> at_six, seconds = Round.of(np.array([0]), np.array([1])), 21_600.0  # a sample every 6 hours: step 1 is 06:00
    >>> profile.learn(surge, at_six, seconds, np.array([3.0]))  # 3 spreads above the forecast
    >>> surge[:, 0].tolist()
    [0.0, 3.0, 0.0, 0.0]
    >>> profile.above(surge, at_six, 2, seconds)[:, 0].tolist()  # the next 2 steps: 12:00 is next to 06:00, 18:00 not
    [6.0, 0.0]
    """

    bins: int = 288
    rate: float = 0.05  # per day: the weight of today's rise at a time of day
    z: float = 2.5  # surges provisioned for

    def field(self) -> FieldSpec:
        """The per-series state: the mean rise in each bin, 0 until one is seen."""
        return FieldSpec((self.bins,), np.float16, 0.0)

    def bin_of(self, steps: np.ndarray | int, seconds: float) -> np.ndarray:
        """The time-of-day bin of step ``steps`` of a series sampled every ``seconds``."""
        t = np.mod(np.asarray(steps) * seconds, DAY)
        return np.minimum((t * (self.bins / DAY)).astype(np.int64), self.bins - 1)

    def learn(self, surge: np.ndarray, r: Round, seconds: float, rise: np.ndarray) -> None:
        """Today's ``rise`` (>= 0, in spreads) at each slot's time of day joins that bin's weighted mean.

        The weight is ``rate`` per day, shared by the samples that fall in one bin each day.
        """
        bins = self.bin_of(r.common if r.common is not None else r.steps, seconds)
        per_bin_and_day = max(DAY / self.bins / seconds, 1.0)  # samples falling in one bin each day
        rate = np.float32(self.rate / per_bin_and_day)
        old = r.cell(surge, bins).astype(np.float32)
        r.put(surge, bins, old + rate * (rise - old))

    def above(self, surge: np.ndarray, r: Round, horizon: int, seconds: float) -> np.ndarray:
        """``z`` times the surge usually seen around the time of day of each of the next ``horizon`` steps.

        Around: the largest of the step's bin and its two neighbours, as the same rise
        comes a few minutes earlier or later from one day to the next. ``[horizon, slots]``.
        """
        steps_ahead = np.arange(1, horizon + 1)
        ahead = steps_ahead + r.common if r.common is not None else steps_ahead[:, None] + r.steps[None, :]
        bins = self.bin_of(ahead, seconds)
        usual = r.cells(surge, bins).astype(np.float32)
        np.maximum(usual, r.cells(surge, (bins - 1) % self.bins), out=usual)
        np.maximum(usual, r.cells(surge, (bins + 1) % self.bins), out=usual)
        usual *= np.float32(self.z)
        return usual
