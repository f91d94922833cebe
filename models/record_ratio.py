"""``record_ratio``: the default anomaly detector, vectorised over series.

Per sample it measures eight kinds of surprise, each robust-normalised so that one
configuration fits every series (server and service metrics: CPU, memory, network,
disk, request rates, latency and errors):

====== ===========================================================================
fast   ``|y - fast EWMA|`` over that residual's mean absolute deviation (spikes)
slow   ``|y - slow winsorised baseline|`` over its MAD (level excursions)
season ``|y - time-of-day profile|`` over its MAD (a broken daily pattern)
week   ``|y - time-of-week profile|`` over its MAD (a broken weekly pattern: a
       weekday that looks like a Sunday, a holiday, a periodic job that did not run)
range  how far ``y`` leaves the running [min, max], over the range (new extremes)
shift  the medium EWMA's distance from the slow baseline over its MAD (level shift)
burst  the recent rate of samples more than ``dens_thr`` MADs from the baseline
vol    the recent mean |change| over its long-run mean, minus 1 (noise that grows:
       a flapping service, a thrashing disk, load that became erratic)
====== ===========================================================================

The time scales run from about two samples (``fast``) through tens (``shift``,
``vol``) and hundreds (``slow``) to a day and a week (the profiles). Each surprise is
divided by its own *record*: a running maximum of its past values that decays slowly
(``decay`` per sample) and grows at most ``mcap`` times per sample, so one early outlier
does not blind the detector. ``r`` is the largest ratio; the score is ``r / (1 + r)``:
0.5 means "as surprising as the recent record". After an alarm (score at or above
``alarm``) scores are damped by ``damp`` for ``hold`` samples: it is the same incident
(NAB counts repeated alarms as false positives; so do people on call).

Concept drift: every baseline and spread is an exponentially weighted estimate and the
records decay, so a new normal stops being surprising after roughly ``1 / a_slow``
samples instead of being flagged forever.

The season channel's spread is half global, half per time of day, because load is
noisier at its peak (a flood at night must not look like noise at noon).

It ignores the forecaster's expectation for scoring; the bank still reports that
expectation and band with every score, so the reason shows what was expected. The
numbers it scores on NAB, in-sample and held out, are in docs/evaluation.md.
State: one column per series (:mod:`models.slots`), float32 where the values are
relative (profiles of spreads, records), float64 for levels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.base import Params
from models.detectors import ResidualLikelihood
from models.slots import FieldSpec, Index, OneSeriesDetector, SlotArrays, Slotted, as_index, one

CHANNELS = ("fast", "slow", "season", "range", "shift", "burst", "vol", "week")
WHY = {
    "fast": "a spike against the last values",
    "slow": "far from the usual level",
    "season": "unusual for this time of day",
    "range": "outside the range seen so far",
    "shift": "the level is shifting",
    "burst": "a burst of large deviations",
    "vol": "noisier than usual",
    "week": "unusual for this time of the week",
}
FLOORS = {"range": 0.05, "burst": 0.1}  # records never below these (the others: 1e-9)
DAY, WEEK = 86_400.0, 604_800.0
LEVELS = ("fast", "slow", "med", "lo", "hi", "prev")  # in the series' units (float64)
SPREADS = ("mad_f", "mad_s", "mad_p", "mad_w", "vs", "vl")
MAX_VALUE = 1e30  # larger values are not learnt (the profiles are float32); they still score


class RecordRatio(OneSeriesDetector, Slotted, Params):
    def __init__(
        self,
        a_fast: float = 0.5,
        a_slow: float = 0.01,
        a_med: float = 0.1,
        a_mad: float = 0.003,
        a_dens: float = 0.05,
        a_seas: float = 0.2,
        nbins: int = 144,
        clip: float = 5.0,
        dens_thr: float = 5.0,
        decay: float = 3e-4,
        mcap: float = 1.6,
        floors: tuple[float, ...] | None = None,
        floor_frac: float = 1e-3,
        warmup: int = 150,
        record_start: int = 30,
        cap_start: int = 60,
        learn_start: int = 10,
        alarm: float = 0.55,
        hold: int = 120,
        damp: float = 0.8,
        a_vs: float = 0.1,
        a_vl: float = 0.003,
        week_bins: int = 168,
        a_week: float = 0.2,
        channels: tuple[str, ...] = CHANNELS,
    ) -> None:
        self.a_fast = a_fast  # fast EWMA (the next value's naive forecast)
        self.a_slow = a_slow  # slow winsorised baseline
        self.a_med = a_med  # medium EWMA of the shift channel
        self.a_mad = a_mad  # rate of the mean-absolute-deviation trackers
        self.a_dens = a_dens  # rate of the burst density
        self.a_seas = a_seas  # time-of-day profile rate
        self.nbins = nbins  # time-of-day bins
        self.clip = clip  # residuals winsorised at clip x MAD when learning
        self.dens_thr = dens_thr  # slow deviation counted by the burst channel
        self.decay = decay  # per-sample decay of the records
        self.mcap = mcap  # a record grows at most this factor per sample
        self.floors = floors  # lower bounds of the records, per channel of ``channels`` (None: FLOORS)
        self.floor_frac = floor_frac  # scale floor, as a fraction of the observed range
        self.warmup = warmup  # samples before any score
        self.record_start = record_start  # samples before records are updated
        self.cap_start = cap_start  # samples before record growth is capped
        self.learn_start = learn_start  # samples before residuals are winsorised
        self.alarm = alarm  # score that starts a hold
        self.hold = hold  # samples damped after an alarm
        self.damp = damp  # score multiplier during a hold
        self.a_vs = a_vs  # recent mean |change| (the vol channel's numerator)
        self.a_vl = a_vl  # long-run mean |change| (its denominator)
        self.week_bins = week_bins  # time-of-week bins
        self.a_week = a_week  # time-of-week profile rate
        self.channels = tuple(channels)  # the surprises measured (a subset of CHANNELS)

    def _fields(self) -> dict[str, FieldSpec]:
        f4, f8 = np.float32, np.float64
        return {
            "n": FieldSpec((), np.int64, 0),
            **{name: FieldSpec((), f8, 0.0) for name in (*LEVELS, *SPREADS)},
            "dens": FieldSpec((), f4, 0.0),
            "prof": FieldSpec((self.nbins,), f4, 0.0),
            "seen": FieldSpec((self.nbins,), np.uint8, 0),  # visits of each bin (saturating)
            "mad_b": FieldSpec((self.nbins,), f4, 0.0),  # spread of the profile residual per time of day
            "wprof": FieldSpec((self.week_bins,), f4, 0.0),
            "wseen": FieldSpec((self.week_bins,), np.uint8, 0),
            "rec": FieldSpec((len(self.channels),), f4, 0.0),
            "alarm_at": FieldSpec((), np.int64, -(10**9)),
        }

    def seed(self, targets: np.ndarray, donors: np.ndarray) -> None:
        """Cold start: the records are scale-free; levels and spreads come from the series itself."""
        self._state().copy(["rec"], donors, targets)

    def _floors(self) -> np.ndarray:
        floors = self.floors if self.floors is not None else tuple(FLOORS.get(c, 1e-9) for c in self.channels)
        return np.asarray(floors, dtype=np.float32)[:, None]

    def _bins(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        day = np.minimum((np.mod(t, DAY) * (self.nbins / DAY)).astype(np.int64), self.nbins - 1)
        week = np.minimum((np.mod(t, WEEK) * (self.week_bins / WEEK)).astype(np.int64), self.week_bins - 1)
        return day, week

    def _surprise(self, idx: Index, slots: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """The surprises ``[channels, n]`` of ``y`` before learning it, the slow z, the bins and the scale floor."""
        s = self._state()
        lo, hi = s["lo"][idx], s["hi"][idx]
        eps = 1e-12 + self.floor_frac * (hi - lo)
        day, week = self._bins(t)
        slow, mad_s = s["slow"][idx], s["mad_s"][idx] + eps
        zs = np.abs(y - slow) / mad_s
        x = np.zeros((len(self.channels), len(slots)), dtype=np.float32)
        with np.errstate(over="ignore"):  # a surprise beyond float32 is infinite: a score of 1
            self._fill(x, idx, slots, y, zs, slow, mad_s, lo, hi, eps, day, week)
        return x, zs, day, week, eps

    def _fill(
        self,
        x: np.ndarray,
        idx: Index,
        slots: np.ndarray,
        y: np.ndarray,
        zs: np.ndarray,
        slow: np.ndarray,
        mad_s: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        eps: np.ndarray,
        day: np.ndarray,
        week: np.ndarray,
    ) -> None:
        s = self._state()
        for c, name in enumerate(self.channels):
            if name == "fast":
                x[c] = np.abs(y - s["fast"][idx]) / (s["mad_f"][idx] + eps)
            elif name == "slow":
                x[c] = zs
            elif name == "season":
                seen = s["seen"][day, slots] > 0
                value = np.abs(y - s["prof"][day, slots]) / (self._season_scale(idx, slots, day) + eps)
                x[c] = np.where(seen, value, 0.0)
            elif name == "week":
                seen = s["wseen"][week, slots] > 0
                x[c] = np.where(seen, np.abs(y - s["wprof"][week, slots]) / (s["mad_w"][idx] + eps), 0.0)
            elif name == "range":
                x[c] = np.maximum(np.maximum(y - hi, lo - y), 0.0) / (hi - lo + eps)
            elif name == "shift":
                med = s["med"][idx]
                x[c] = np.abs(med + self.a_med * (y - med) - slow) / mad_s
            elif name == "burst":
                dens = s["dens"][idx]
                x[c] = dens + self.a_dens * ((zs > self.dens_thr) - dens)
            elif name == "vol":
                vs = s["vs"][idx]
                recent = vs + self.a_vs * (np.abs(y - s["prev"][idx]) - vs)
                x[c] = np.maximum(recent / (s["vl"][idx] + eps) - 1.0, 0.0)

    def _season_scale(self, idx: Index, slots: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The profile residual's spread: half global, half this time of day's (load is noisier at peak)."""
        s = self._state()
        mad_p = s["mad_p"][idx]
        return np.where(s["seen"][day, slots] > 1, 0.5 * (mad_p + s["mad_b"][day, slots]), mad_p)

    def _ratios(self, idx: Index, x: np.ndarray) -> np.ndarray:
        return x / np.maximum(self._state()["rec"][:, idx], self._floors())

    def score_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] (0 while warming up or for a missing value)."""
        s = self._state()
        idx = as_index(slots)
        n = s["n"][idx]
        usable = np.isfinite(y) & (n >= self.warmup)
        values = np.where(usable, y, s["fast"][idx])
        x, *_ = self._surprise(idx, slots, t, values)
        r = self._ratios(idx, x).max(axis=0)
        score = 1.0 - 1.0 / (1.0 + r)  # r / (1 + r), and 1 for an infinite surprise
        score = np.where(n - s["alarm_at"][idx] < self.hold, score * self.damp, score)
        return np.where(usable, np.nan_to_num(score, nan=0.0), 0.0)

    def learn_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray) -> None:
        ok = np.abs(y) < MAX_VALUE  # NaN is missing; a value beyond float32 would poison the profiles
        if not ok.all():
            slots, t, y = slots[ok], t[ok], y[ok]
        if slots.size == 0:
            return
        s = self._state()
        idx = as_index(slots)
        n = s["n"][idx].copy()
        first = n == 0
        if first.any():
            f = slots[first]
            for name in LEVELS:
                s[name][f] = y[first]
        x, zs, day, week, eps = self._surprise(idx, slots, t, y)
        r = self._ratios(idx, x).max(axis=0)
        fresh = (n >= self.warmup) & (n - s["alarm_at"][idx] >= self.hold) & (1.0 - 1.0 / (1.0 + r) >= self.alarm)
        s["alarm_at"][slots[fresh]] = n[fresh]
        # records: decay, then grow towards x (at most mcap times per sample once capped)
        rec = s["rec"][:, idx]
        capped = np.where(n >= self.cap_start, np.minimum(x, self.mcap * np.maximum(rec, 0.1)), x)
        s["rec"][:, idx] = np.where(n >= self.record_start, np.maximum(capped, rec * (1.0 - self.decay)), rec)
        a = np.maximum(self.a_mad, 1.0 / (n + 1.0))
        w = 1.0 / (n + 1.0)
        winsorise = n > self.learn_start

        def deviation(residual: np.ndarray, mad: np.ndarray) -> np.ndarray:
            return np.where(winsorise, np.minimum(residual, self.clip * mad), residual)

        dens = s["dens"][idx]
        s["dens"][idx] = dens + self.a_dens * ((zs > self.dens_thr) - dens)
        med = s["med"][idx]
        s["med"][idx] = med + np.maximum(self.a_med, w) * (y - med)
        step = np.abs(y - s["prev"][idx])
        vs, vl = s["vs"][idx], s["vl"][idx]
        s["vs"][idx] = vs + self.a_vs * (step - vs)
        calm = np.where(winsorise, np.minimum(step, self.clip * vl + eps), step)  # a jump does not teach noise
        s["vl"][idx] = vl + np.maximum(self.a_vl, w) * (calm - vl)
        s["prev"][idx] = y
        fast, mad_f = s["fast"][idx], s["mad_f"][idx]
        s["mad_f"][idx] = mad_f + a * (deviation(np.abs(y - fast), mad_f) - mad_f)
        s["fast"][idx] = fast + np.maximum(self.a_fast, w) * (y - fast)
        slow, mad_s = s["slow"][idx], s["mad_s"][idx]
        rs = deviation(np.abs(y - slow), mad_s)
        s["mad_s"][idx] = mad_s + a * (rs - mad_s)
        s["slow"][idx] = slow + np.maximum(self.a_slow, w) * np.copysign(rs, y - slow)
        seen, prof, mad_p = s["seen"][day, slots], s["prof"][day, slots], s["mad_p"][idx]
        scale_b = self._season_scale(idx, slots, day)
        rp = deviation(np.abs(y - prof), mad_p)
        mad_b = s["mad_b"][day, slots]
        rate_b = np.maximum(self.a_seas, 1.0 / np.maximum(seen, 1.0))
        learnt_b = mad_b + rate_b * (deviation(np.abs(y - prof), scale_b) - mad_b)
        s["mad_b"][day, slots] = np.where(seen > 0, learnt_b, 0.0)
        s["mad_p"][idx] = np.where(seen > 0, mad_p + a * (rp - mad_p), mad_p)
        s["prof"][day, slots] = prof + np.maximum(self.a_seas, 1.0 / (seen + 1.0)) * (y - prof)
        s["seen"][day, slots] = np.minimum(seen, 254) + 1
        wseen, wprof, mad_w = s["wseen"][week, slots], s["wprof"][week, slots], s["mad_w"][idx]
        s["mad_w"][idx] = np.where(wseen > 0, mad_w + a * (deviation(np.abs(y - wprof), mad_w) - mad_w), mad_w)
        s["wprof"][week, slots] = wprof + np.maximum(self.a_week, 1.0 / (wseen + 1.0)) * (y - wprof)
        s["wseen"][week, slots] = np.minimum(wseen, 254) + 1
        s["hi"][idx] = np.maximum(y, s["hi"][idx])
        s["lo"][idx] = np.minimum(y, s["lo"][idx])
        s["n"][idx] = n + 1

    def explain(self, slot: int, t: float, y: float, expected: float) -> str:
        s = self._state()
        n = int(s["n"][slot])
        if not math.isfinite(y):
            return "missing value"
        if n < self.warmup:
            return f"warming up ({n}/{self.warmup} samples)"
        slots = np.array([slot])
        x, *_ = self._surprise(slots, slots, one(t), one(y))
        ratios = self._ratios(slots, x)[:, 0]
        top = int(np.argmax(ratios))
        name = self.channels[top]
        why = f"{WHY[name]}: {name} surprise {x[top, 0]:.3g}, {ratios[top]:.2f}x its recent record"
        since = n - int(s["alarm_at"][slot])
        return f"{why}; alarm raised {since} samples ago, damped" if since < self.hold else why


class RecordOrResidual(OneSeriesDetector, Slotted, Params):
    """``combined``: the larger of :class:`RecordRatio` and a forecast-residual detector's scores.

    The record ratio judges a sample against the series' own history; the residual
    likelihood judges it against the forecaster's expectation (seasonal, with trend). The
    combination flags what either finds; the reason comes from the one that scored higher.
    """

    def __init__(self, record: dict[str, Any] | None = None, residual: dict[str, Any] | None = None) -> None:
        self.record = record
        self.residual = residual

    def _parts(self) -> tuple[RecordRatio, ResidualLikelihood]:
        parts: tuple[RecordRatio, ResidualLikelihood] | None = getattr(self, "parts_", None)
        if parts is None:
            parts = self.parts_ = (RecordRatio(**(self.record or {})), ResidualLikelihood(**(self.residual or {})))
        return parts

    def ensure(self, capacity: int) -> SlotArrays:
        record, residual = self._parts()
        residual.ensure(capacity)
        return record.ensure(capacity)

    def reset(self, slots: np.ndarray) -> None:
        for part in self._parts():
            part.reset(slots)

    def seed(self, targets: np.ndarray, donors: np.ndarray) -> None:
        for part in self._parts():
            part.seed(targets, donors)

    def slot_arrays(self) -> list[SlotArrays]:
        return [arrays for part in self._parts() for arrays in part.slot_arrays()]

    def bytes_per_series(self) -> int:
        return sum(part.bytes_per_series() for part in self._parts())

    def _both(
        self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        record, residual = self._parts()
        return record.score_many(slots, t, y, expected), residual.score_many(slots, t, y, expected)

    def score_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray) -> np.ndarray:
        return np.maximum(*self._both(slots, t, y, expected))

    def learn_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, expected: np.ndarray) -> None:
        for part in self._parts():
            part.learn_many(slots, t, y, expected)

    def explain(self, slot: int, t: float, y: float, expected: float) -> str:
        a, b = self._both(np.array([slot]), one(t), one(y), one(expected))
        record, residual = self._parts()
        if a[0] >= b[0]:
            return f"record_ratio: {record.explain(slot, t, y, expected)}"
        return f"residual_likelihood: {residual.explain(slot, t, y, expected)}"
