"""``seasonal_ar``: the default forecaster, vectorised over series.

Per series, in units of the series' own spread (so that what is learnt transfers
between similar series, and any series times 10^k is forecast times 10^k):

- ``u``: the change per step, divided by a running mean of |change| (the spread);
- two seasonal profiles of ``u``: the mean change at this time of day (``day_bins``
  bins) and of week (``week_bins`` bins), learnt online;
- a slow level (the mean of about the last ``level_seconds``) and how far the series is
  above it: where a series returns to its usual level, this is what says so;
- the next ``u`` is a linear function of the last ``p`` changes, the daily and weekly
  profile at the step being forecast, the distance from the slow level and a constant.
  The weights are least squares with forgetting, learnt online per series from
  exponentially weighted moments (:mod:`models.lag_moments`: the lag block has the
  Yule-Walker structure, so a sample costs ``O(p)``, not ``O(p^2)``) and refitted every
  ``refit`` samples. Seasonality and mean reversion are found, not assumed: a series
  without a daily cycle gets a weight near 0 on that profile;
- multi-step forecasts iterate the recursion, once per learnt sample: they are kept
  (as cumulative changes in units of the spread at their origin) until their targets
  arrive, and ``forecast_many`` reads them;
- the 90% band is tracked online per step ahead (stochastic quantile tracking of the
  normalised errors of this model's own past forecasts: no error ring,
  :mod:`models.step_ahead_band`). A forecast made while the spread was still 0 (a series
  that has not moved yet) teaches the band nothing;
- surges: the rise above the one-step forecast usually seen at each time of day, in
  units of the spread (:mod:`models.surge`), so ``surge_many`` can say "point plus
  ``surge_z`` of the surges usually seen at this time of day": what the Knative floor
  provisions for;
- drift: forgetting and bands in units of the running spread adapt to a new normal by
  themselves; a Page-Hinkley test on the normalised one-step errors detects drift that
  outpaces them, counts it (``drifts``, reported by the bank) and re-warms the band from
  the new errors (``drift_relearn`` > 0 also shortens the moments' memory);
- ``non_negative``: points, bands and surges are clipped at 0 (most metrics cannot go
  below it).

All state lives in numpy arrays with one row per series (:mod:`models.slots`), mostly
float32, so a bank of 100,000 series costs a few vectorised operations per step. The
per-series protocol (``learn_one``, ``forecast``, ``expect``) runs the same code on a
single row.

>>> f = SeasonalAR(step_seconds=60, horizon=3, p=2)
>>> for i in range(2000):  # past a day, so that every time-of-day bin has been seen
...     f.learn_one(i * 60.0, 0.5 * i)
>>> np.round(f.forecast(3).point, 1).tolist()
[1000.0, 1000.5, 1001.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from models.base import Expectation, Params, PointForecast
from models.lag_moments import LagMoments
from models.slots import SLOT0, FieldSpec, Index, Slotted, as_index, one
from models.step_ahead_band import StepAheadBand
from models.surge import SurgeProfile

DAY, WEEK = 86_400.0, 604_800.0
NEVER = np.iinfo(np.int64).min // 4
FEATURES = 4  # day profile, week profile, distance from the slow level, constant
MAX_LEVEL = 20.0  # the distance from the slow level is clipped here (spreads): one outage must not dominate
MAX_ERROR = 50.0  # band errors are clipped here (spreads): a level shift must not blow the band up for days
SEED_MEMORY = 200.0  # a cold-started series weighs the donor's moments like this many of its own samples


class SeasonalAR(Slotted, Params):
    def __init__(
        self,
        step_seconds: float = 60.0,
        horizon: int = 12,
        interval: float = 0.9,
        p: int = 12,
        day_bins: int = 96,
        week_bins: int = 168,
        forget: float = 0.999,
        prior: float = 100.0,
        profile_rate: float = 0.05,
        band_rate: float = 0.3,
        min_errors: int = 20,
        drift_delta: float = 0.5,
        drift_threshold: float = 50.0,
        drift_relearn: float = 0.0,
        max_change: float = 5.0,
        surge_bins: int = 288,
        surge_rate: float = 0.05,
        surge_z: float = 2.5,
        level_seconds: float = 604_800.0,
        refit: int = 12,
        non_negative: bool = False,
    ) -> None:
        self.step_seconds = step_seconds
        self.horizon = horizon
        self.interval = interval
        self.p = p  # lags of the autoregression
        self.day_bins = day_bins
        self.week_bins = week_bins
        self.forget = forget  # per sample: the moments' memory is about 1 / (1 - forget) samples
        self.prior = prior  # the ridge is 1 / prior (the weights' prior variance, in units of the moments)
        self.profile_rate = profile_rate
        self.band_rate = band_rate
        self.min_errors = min_errors
        self.drift_delta = drift_delta
        self.drift_threshold = drift_threshold
        self.drift_relearn = drift_relearn
        self.max_change = max_change  # a forecast change per step is clipped here (spreads): never explode
        self.surge_bins = surge_bins
        self.surge_rate = surge_rate  # per day: the weight of today's surge at a time of day
        self.surge_z = surge_z
        self.level_seconds = level_seconds  # the slow level's memory (0: no mean reversion)
        self.refit = refit  # samples between two least-squares solves of a series
        self.non_negative = non_negative

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """For :mod:`models.checks`: the defaults, and a drift test that fires (and re-learns) in the checks' data."""
        yield {}
        yield {"p": 3, "drift_threshold": 10.0, "drift_relearn": 0.5, "surge_bins": 48, "refit": 1}
        yield {"non_negative": True, "level_seconds": 0.0}

    # -- state -----------------------------------------------------------------
    @property
    def _k(self) -> int:
        return self.p + FEATURES

    @property
    def _moments(self) -> LagMoments:
        return LagMoments(self.p, FEATURES, 1.0 - self.forget, 1.0 / self.prior)

    @property
    def _band(self) -> StepAheadBand:
        return StepAheadBand(self.horizon, self.interval, self.band_rate, self.min_errors)

    @property
    def _surge(self) -> SurgeProfile:
        return SurgeProfile(self.surge_bins, self.surge_rate, self.surge_z)

    @property
    def _level_rate(self) -> float:
        return min(1.0, self.step_seconds / self.level_seconds) if self.level_seconds > 0 else 0.0

    def _fields(self) -> dict[str, FieldSpec]:
        h, f4, f8 = self.horizon, np.float32, np.float64
        return {
            "n": FieldSpec((), np.int64, 0),  # samples learnt
            "step": FieldSpec((), np.int64, 0),  # step index of the last learnt sample
            "y": FieldSpec((), f8, math.nan),  # last learnt value
            "spread": FieldSpec((), f8, 0.0),  # running mean |change per step|
            "level": FieldSpec((), f8, 0.0),  # slow level
            "lags": FieldSpec((self.p,), f4, 0.0),  # last p normalised changes, newest first
            "day": FieldSpec((self.day_bins,), f4, 0.0),
            "day_n": FieldSpec((self.day_bins,), np.uint8, 0),  # visits of each bin (saturating)
            "week": FieldSpec((self.week_bins,), f4, 0.0),
            "week_n": FieldSpec((self.week_bins,), np.uint8, 0),
            **self._moments.fields(),  # acov, cross, ff, fu
            "m_n": FieldSpec((), f4, 0.0),  # samples in the moments (a seeded series starts with some)
            "w": FieldSpec((self._k,), f4, 0.0),
            "fc": FieldSpec((h, h), f4, math.nan),  # [target % h, ahead - 1]: cumulative change, in origin spreads
            "origin": FieldSpec((h,), np.int64, NEVER),  # [origin % h]: the step of that origin
            "origin_y": FieldSpec((h,), f8, math.nan),  # [origin % h]: the value and the spread there
            "origin_spread": FieldSpec((h,), f8, 0.0),
            **self._band.fields(),  # q, err_n, err_abs
            "ph_mean": FieldSpec((), f4, 0.0),  # Page-Hinkley on one-step |error|
            "ph_sum": FieldSpec((), f4, 0.0),
            "ph_min": FieldSpec((), f4, 0.0),
            "drifts": FieldSpec((), np.int64, 0),
            "surge": self._surge.field(),  # mean rise above the one-step forecast by time of day, in spreads
        }

    #: fields that mean the same for any series of the same kind (scale-free): cold start copies them
    TRANSFERABLE = (
        "day",
        "day_n",
        "week",
        "week_n",
        "acov",
        "cross",
        "ff",
        "fu",
        "w",
        "q",
        "err_n",
        "err_abs",
        "ph_mean",
    )

    def seed(self, targets: np.ndarray, donors: np.ndarray) -> None:
        """Cold start ``targets`` (fresh slots) from trained ``donors`` of similar series."""
        s = self._state()
        s.copy(list(self.TRANSFERABLE), donors, targets)
        s["m_n"][targets] = np.minimum(s["m_n"][donors], SEED_MEMORY)  # its own samples soon outweigh the donor's

    # -- vectorised protocol -----------------------------------------------------
    def _bins(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = steps * self.step_seconds
        day = np.minimum((np.mod(t, DAY) * (self.day_bins / DAY)).astype(np.int64), self.day_bins - 1)
        week = np.minimum((np.mod(t, WEEK) * (self.week_bins / WEEK)).astype(np.int64), self.week_bins - 1)
        return day, week

    def learn_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray) -> None:
        """Learn one sample per slot (slots distinct); NaN, duplicate and late samples are ignored."""
        s = self._state()
        ok = np.isfinite(y)
        if not ok.all():
            slots, t, y = slots[ok], t[ok], y[ok]
        steps = np.rint(t / self.step_seconds).astype(np.int64)
        first = s["n"][slots] == 0
        if first.any():
            fs = slots[first]
            s["step"][fs], s["y"][fs], s["level"][fs], s["n"][fs] = steps[first], y[first], y[first], 1
            self._remember(fs)
        gap = steps - s["step"][slots]
        go = ~first & (gap > 0)
        if not go.all():
            slots, steps, y, gap = slots[go], steps[go], y[go], gap[go]
        if slots.size == 0:
            return
        idx = as_index(slots)
        self._score_band(idx, slots, steps, y)
        # copies: with a slice ``idx`` these would be views, changed by the writes below
        previous, level, n, spread = (s[name][idx].copy() for name in ("y", "level", "n", "spread"))
        change = (y - previous) / gap  # a gap spreads the change evenly
        updated = spread + (np.abs(change) - spread) * np.where(n > 101, 0.01, 1.0 / n)
        scale = np.where(updated > 0, updated, 1.0)  # 0 only when nothing moved: then u is 0
        u = change / scale  # at most 1 / 0.01 (the spread's rate) once warm
        day, week = self._bins(steps)
        x = np.empty((len(slots), FEATURES), dtype=np.float32)
        x[:, 0] = s["day"][slots, day]
        x[:, 1] = s["week"][slots, week]
        x[:, 2] = np.clip((previous - level) / scale, -MAX_LEVEL, MAX_LEVEL) if self._level_rate else 0.0
        x[:, 3] = 1.0
        filled = n > self.p  # the lags hold p changes: only then does a sample tell the lag weights anything
        if filled.all():
            m_n = s["m_n"][idx].copy()
            self._moments.learn(s, idx, m_n, s["lags"][idx], x, u)
            s["m_n"][idx] = m_n + 1.0
        elif filled.any():
            some = slots[filled]
            m_n = s["m_n"][some]
            self._moments.learn(s, some, m_n, s["lags"][some], x[filled], u[filled])
            s["m_n"][some] = m_n + 1.0
        for name, bins in (("day", day), ("week", week)):
            profile, seen = s[name], s[name + "_n"]
            count = seen[slots, bins]
            rate = np.maximum(self.profile_rate, 1.0 / (count + 1.0))
            profile[slots, bins] += (rate * (u - profile[slots, bins])).astype(np.float32)
            seen[slots, bins] = np.minimum(count, 254) + 1
        lags = s["lags"]
        lags[idx, 1:] = lags[idx, :-1].copy()
        lags[idx, 0] = u
        s["level"][idx] = level + np.maximum(self._level_rate, 1.0 / (n + 1.0)) * (y - level)
        s["spread"][idx], s["y"][idx], s["step"][idx] = updated, y, steps
        s["n"][idx] = n + 1
        due = (n + 1) % self.refit == 0
        if due.any():
            fit = slots[due]
            s["w"][fit] = self._moments.solve(s, fit)
        self._remember(slots)

    def _changes(self, slots: np.ndarray, horizon: int) -> np.ndarray:
        """The next ``horizon`` normalised changes of each slot, cumulated: the recursion, iterated."""
        s = self._state()
        n, p = len(slots), self.p
        w = s["w"][slots]
        spread = s["spread"][slots]
        scale = np.where(spread > 0, spread, 1.0)
        ahead = s["step"][slots][:, None] + np.arange(1, horizon + 1)
        day, week = self._bins(ahead)
        rows = slots[:, None]
        seasonal = s["day"][rows, day] * w[:, p : p + 1] + s["week"][rows, week] * w[:, p + 1 : p + 2]
        seasonal += w[:, p + 3 : p + 4]
        a = self._level_rate
        distance = (s["y"][slots] - s["level"][slots]) / scale if a else np.zeros(n)
        pull = w[:, p + 2]
        # changes, newest first: [predicted (filled from the right) | learnt lags]
        changes = np.empty((n, horizon + p), dtype=np.float32)
        changes[:, horizon:] = s["lags"][slots]
        lag_weights = w[:, :p]
        for h in range(horizon):
            u = np.einsum("ni,ni->n", changes[:, horizon - h : horizon - h + p], lag_weights) + seasonal[:, h]
            if a:
                u += pull * np.clip(distance, -MAX_LEVEL, MAX_LEVEL)
            u = np.clip(u, -self.max_change, self.max_change)  # never explode
            changes[:, horizon - h - 1] = u
            if a:
                distance = (1.0 - a) * (distance + u)  # the level follows the forecast path
        predicted = changes[:, horizon - 1 :: -1][:, :horizon] if horizon else changes[:, :0]
        cumulative: np.ndarray = np.cumsum(predicted, axis=1, dtype=np.float64)
        return np.where((spread > 0)[:, None], cumulative, 0.0)  # a series that has not moved yet: its last value

    def _remember(self, slots: np.ndarray) -> None:
        """Keep this origin's forecasts where their targets will look: ``fc[target % h, ahead - 1]``."""
        s = self._state()
        h = self.horizon
        changes = self._changes(slots, h)
        origin = s["step"][slots]
        rows = (origin[:, None] + np.arange(1, h + 1)) % h
        s["fc"][slots[:, None], rows, np.arange(h)] = changes
        at = origin % h
        s["origin"][slots, at] = origin
        s["origin_y"][slots, at] = s["y"][slots]
        s["origin_spread"][slots, at] = s["spread"][slots]

    def _score_band(self, idx: Index, slots: np.ndarray, steps: np.ndarray, y: np.ndarray) -> None:
        """``y`` arrived: track the band edges from the errors of the forecasts made 1..h steps before."""
        s = self._state()
        h = self.horizon
        made_at = steps[:, None] - np.arange(1, h + 1)  # the origin of each step-ahead forecast of this target
        rows = slots[:, None]
        at = made_at % h
        valid = s["origin"][rows, at] == made_at
        spread = s["origin_spread"][rows, at]
        valid &= spread > 0  # made before the series moved: no scale to judge the error by
        cumulative = s["fc"][rows, (steps % h)[:, None], np.arange(h)]
        e = ((y[:, None] - s["origin_y"][rows, at]) / np.where(valid, spread, 1.0) - cumulative).astype(np.float32)
        valid &= np.isfinite(e)
        e = np.clip(np.where(valid, e, 0.0), -MAX_ERROR, MAX_ERROR)
        self._band.track(s, idx, e, valid)
        first = valid[:, 0]
        if first.any():
            mine = slots[first]
            self._surge.learn(s["surge"], mine, steps[first], self.step_seconds, np.maximum(e[first, 0], 0.0))
            self._page_hinkley(mine, np.abs(e[first, 0]))

    def surge_many(self, slots: np.ndarray, horizon: int, point: np.ndarray | None = None) -> np.ndarray:
        """Point plus ``surge_z`` times the surge usually seen around each step's time of day (NaN while warming up)."""
        s = self._state()
        if point is None:  # the fleet passes the point it has just computed
            point = self.forecast_many(slots, horizon)[0]
        ahead = s["step"][slots][:, None] + np.arange(1, horizon + 1)
        above = self._surge.above(s["surge"], slots, ahead, self.step_seconds) * s["spread"][slots][:, None]
        warm = (s["err_n"][slots, 0] >= self.min_errors)[:, None]
        return np.where(warm, point + above, np.nan)

    def _page_hinkley(self, slots: np.ndarray, err: np.ndarray) -> None:
        s = self._state()
        n = s["err_n"][slots, 0]
        mean = s["ph_mean"][slots]
        mean += (err - mean) * np.maximum(1.0 / n, 0.002)
        total = s["ph_sum"][slots] + err - mean - self.drift_delta
        low = np.minimum(s["ph_min"][slots], total)
        drift = (total - low > self.drift_threshold) & (n > 3 * self.min_errors)
        s["ph_mean"][slots], s["ph_sum"][slots], s["ph_min"][slots] = mean, total, low
        if drift.any():
            d = slots[drift]
            s["drifts"][d] += 1
            if self.drift_relearn:  # forget faster: the new dynamics outweigh the old sooner
                s["m_n"][d] = np.minimum(s["m_n"][d], 1.0 / (self.drift_relearn * (1.0 - self.forget)))
            s["err_n"][d] = 0.0  # re-warm the band from the new errors
            s["ph_sum"][d] = s["ph_min"][d] = 0.0

    def _clip(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.maximum(a, 0.0) for a in arrays) if self.non_negative else arrays

    def forecast_many(self, slots: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point, lower and upper ``[len(slots), horizon]`` from each slot's last learnt sample (NaN: unknown)."""
        s = self._state()
        if horizon <= self.horizon:
            origin = s["step"][slots]
            k = np.arange(horizon)
            cumulative = s["fc"][slots[:, None], (origin[:, None] + k + 1) % self.horizon, k].astype(np.float64)
        else:
            cumulative = self._changes(slots, horizon)
        spread = s["spread"][slots]
        point = s["y"][slots][:, None] + cumulative * spread[:, None]
        point[s["n"][slots] == 0] = np.nan
        lo, hi = self._band.offsets(s, slots, horizon, spread[:, None])
        point, lower, upper = point, np.minimum(point + lo, point), np.maximum(point + hi, point)
        return self._clip(point, lower, upper)  # type: ignore[return-value]

    def expect_many(self, slots: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each slot expects at ``t`` (within the horizon after its last sample; NaN otherwise)."""
        s = self._state()
        target = np.rint(t / self.step_seconds).astype(np.int64)
        ahead = target - s["step"][slots]
        usable = (ahead >= 1) & (ahead <= self.horizon) & (s["n"][slots] > 0)
        k = np.clip(ahead - 1, 0, self.horizon - 1)
        spread = s["spread"][slots]
        point = np.where(usable, s["y"][slots] + s["fc"][slots, target % self.horizon, k] * spread, np.nan)
        ok = s["err_n"][slots, k] >= self.min_errors
        q = s["q"][slots, k] * spread[:, None]
        lo = np.where(ok, np.minimum(point + q[:, 0], point), np.nan)
        hi = np.where(ok, np.maximum(point + q[:, 1], point), np.nan)
        return self._clip(point, lo, hi)  # type: ignore[return-value]

    # -- per-series protocol (one slot) ------------------------------------------
    def learn_one(self, t: float, y: float) -> None:
        self.ensure(1)
        self.learn_many(SLOT0, one(t), one(y))

    def forecast(self, horizon: int) -> PointForecast:
        self.ensure(1)
        point, lo, hi = self.forecast_many(SLOT0, horizon)
        return PointForecast(point[0], lo[0], hi[0])

    def expect(self, t: float) -> Expectation | None:
        state = self.ensure(1)
        if state["n"][0] == 0:
            return None
        point, lo, hi = self.expect_many(SLOT0, one(t))
        if not math.isfinite(point[0]):
            return None
        return Expectation(float(point[0]), float(lo[0]), float(hi[0]))
