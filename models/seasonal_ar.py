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
from models.recurrence import Recurrence
from models.slots import SLOT0, FieldSpec, Round, Slotted, one
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
        recurrence: bool = True,
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
        self.recurrence = recurrence  # the surge may come from the phase of a recurring period (timer-triggered load)

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
            # [origin % h, ahead - 1]: cumulative change, in origin spreads (at most h * max_change: float16 holds it
            # to 1 part in 2,000, far below the forecast's error)
            "fc": FieldSpec((h, h), np.float16, math.nan),
            "origin": FieldSpec((h,), np.int64, NEVER),  # [origin % h]: the step of that origin
            "origin_y": FieldSpec((h,), f8, math.nan),  # [origin % h]: the value and the spread there
            "origin_spread": FieldSpec((h,), f4, 0.0),  # a scale: float32 is plenty
            **self._band.fields(),  # q_lo, q_hi, err_n, err_abs
            "ph_mean": FieldSpec((), f4, 0.0),  # Page-Hinkley on one-step |error|
            "ph_sum": FieldSpec((), f4, 0.0),
            "ph_min": FieldSpec((), f4, 0.0),
            "drifts": FieldSpec((), np.int64, 0),
            "surge": self._surge.field(),  # mean rise above the one-step forecast by time of day, in spreads
            "surge_cost": FieldSpec((), f4, 0.0),  # recent cost of the time-of-day surge as a prediction
            **self._recurrence.fields(),  # the load at each phase of candidate periods, and their recent cost
        }

    @property
    def _recurrence(self) -> Recurrence:
        return Recurrence()

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
        "q_lo",
        "q_hi",
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
    def _bins(self, steps: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
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
            self._remember(Round.of(fs, steps[first]))
        gap = steps - s["step"][slots]
        go = ~first & (gap > 0)
        fresh = first | go
        whole = Round.of(slots, steps) if fresh.all() else Round.of(slots[fresh], steps[fresh])
        self._recurrence.learn(s, whole, y if fresh.all() else y[fresh])
        if not go.all():
            slots, steps, y, gap = slots[go], steps[go], y[go], gap[go]
        if slots.size == 0:
            return
        r = whole if go.all() else Round.of(slots, steps)
        idx = r.idx
        self._score_band(r, y)
        # copies: with a slice ``idx`` these would be views, changed by the writes below
        previous, level, n, spread = (s[name][idx].copy() for name in ("y", "level", "n", "spread"))
        change = (y - previous) / gap  # a gap spreads the change evenly
        updated = spread + (np.abs(change) - spread) * np.where(n > 101, 0.01, 1.0 / n)
        scale = np.where(updated > 0, updated, 1.0)  # 0 only when nothing moved: then u is 0
        u = (change / scale).astype(np.float32)  # at most 1 / 0.01 (the spread's rate) once warm
        day, week = self._bins(r.common if r.common is not None else steps)
        x = np.empty((FEATURES, len(slots)), dtype=np.float32)
        x[0] = r.cell(s["day"], day)
        x[1] = r.cell(s["week"], week)
        x[2] = np.clip((previous - level) / scale, -MAX_LEVEL, MAX_LEVEL) if self._level_rate else 0.0
        x[3] = 1.0
        filled = n > self.p  # the lags hold p changes: only then does a sample tell the lag weights anything
        if filled.all():
            m_n = s["m_n"][idx].copy()
            self._moments.learn(s, idx, m_n, s["lags"][:, idx], x, u)
            s["m_n"][idx] = m_n + 1.0
        elif filled.any():
            some = slots[filled]
            m_n = s["m_n"][some]
            self._moments.learn(s, some, m_n, s["lags"][:, some], x[:, filled], u[filled])
            s["m_n"][some] = m_n + 1.0
        for name, bins, current in (("day", day, x[0]), ("week", week, x[1])):
            count = r.cell(s[name + "_n"], bins)
            rate = np.maximum(np.float32(self.profile_rate), 1.0 / (count + np.float32(1.0)))
            r.put(s[name], bins, current + rate * (u - current))
            r.put(s[name + "_n"], bins, np.minimum(count, 254) + 1)
        lags = s["lags"]
        lags[1:, idx] = lags[:-1, idx].copy()
        lags[0, idx] = u
        s["level"][idx] = level + np.maximum(self._level_rate, 1.0 / (n + 1.0)) * (y - level)
        s["spread"][idx], s["y"][idx], s["step"][idx] = updated, y, steps
        s["n"][idx] = n + 1
        due = (n + 1) % self.refit == 0
        if due.any():
            fit = slots[due]
            s["w"][:, fit] = self._moments.solve(s, fit)
        self._remember(r)

    def _changes(self, r: Round, horizon: int) -> np.ndarray:
        """The next ``horizon`` normalised changes of each slot, cumulated ``[horizon, slots]``: the recursion."""
        s = self._state()
        idx = r.idx
        n, p = len(r.slots), self.p
        w = s["w"][:, idx]
        spread = s["spread"][idx]
        steps_ahead = np.arange(1, horizon + 1)
        ahead = steps_ahead + r.common if r.common is not None else steps_ahead[:, None] + r.steps[None, :]
        day, week = self._bins(ahead)
        seasonal = r.cells(s["day"], day) * w[p]
        seasonal += r.cells(s["week"], week) * w[p + 1]
        seasonal += w[p + 3]
        a = np.float32(self._level_rate)
        if a:
            scale = np.where(spread > 0, spread, 1.0)
            distance = ((s["y"][idx] - s["level"][idx]) / scale).astype(np.float32)
            pull = w[p + 2]
        # changes, newest first: [predicted (filled from the top) | learnt lags], one row per step
        changes = np.empty((horizon + p, n), dtype=np.float32)
        changes[horizon:] = s["lags"][:, idx]
        lag_weights = w[:p]
        for h in range(horizon):
            u = np.einsum("in,in->n", changes[horizon - h : horizon - h + p], lag_weights)
            u += seasonal[h]
            if a:
                u += pull * np.clip(distance, -MAX_LEVEL, MAX_LEVEL)
            np.clip(u, -self.max_change, self.max_change, out=u)  # never explode
            changes[horizon - h - 1] = u
            if a:  # the level follows the forecast path
                distance += u
                distance *= 1.0 - a
        cumulative = np.cumsum(changes[horizon - 1 :: -1][:horizon], axis=0)
        cumulative[:, spread <= 0] = 0.0  # a series that has not moved yet: its last value
        return cumulative

    def _remember(self, r: Round) -> None:
        """Keep this origin's forecasts (and value and spread) in the ring, at ``origin % h``."""
        s = self._state()
        h = self.horizon
        cumulative = self._changes(r, h)
        at: int | np.ndarray
        if r.common is not None:
            at = r.common % h
            s["fc"][at][:, r.idx] = cumulative  # [at] first: an integer and an array index would swap the axes
        else:
            at = r.steps % h
            s["fc"][at, :, r.slots] = cumulative.T  # the advanced indices' dimension comes first
        r.put(s["origin"], at, r.steps)
        r.put(s["origin_y"], at, s["y"][r.idx])
        r.put(s["origin_spread"], at, s["spread"][r.idx])

    def _score_band(self, r: Round, y: np.ndarray) -> None:
        """``y`` arrived: track the band edges from the errors of the forecasts made 1..h steps before."""
        s = self._state()
        h = self.horizon
        behind = np.arange(1, h + 1)
        if r.common is not None:
            made_at = r.common - behind  # the origins of this target's forecasts, 1..h steps before
            at = made_at % h
            cumulative = s["fc"][at, behind - 1, r.idx] if isinstance(r.idx, slice) else None
            if cumulative is None:
                cumulative = s["fc"][at[:, None], (behind - 1)[:, None], r.slots]
        else:
            made_at = r.steps[None, :] - behind[:, None]
            at = made_at % h
            cumulative = s["fc"][at, (behind - 1)[:, None], r.slots]
        valid = r.cells(s["origin"], at) == (made_at if made_at.ndim == 2 else made_at[:, None])
        spread = r.cells(s["origin_spread"], at)
        valid &= spread > 0  # made before the series moved: no scale to judge the error by
        e = ((y - r.cells(s["origin_y"], at)) / np.where(valid, spread, 1.0)).astype(np.float32)
        e -= cumulative
        valid &= np.isfinite(e)
        e[~valid] = 0.0
        np.clip(e, -MAX_ERROR, MAX_ERROR, out=e)
        self._band.track(s, r.idx, e, valid)
        first = valid[0]
        if first.all():
            self._one_step(r, e[0], spread[0])
        elif first.any():
            self._one_step(r.subset(first), e[0, first], spread[0, first])

    def _one_step(self, r: Round, e: np.ndarray, spread: np.ndarray) -> None:
        """The one-step errors ``e`` (in the origin's ``spread``): the surge, its cost as a prediction, drift."""
        s = self._state()
        said = self._surge.above(s["surge"], r.shifted(-1), 1, self.step_seconds)[0] * spread  # in the series' units
        raw = e * spread
        recurrence = self._recurrence
        cost = np.maximum(raw - said, 0.0) * recurrence.miss_cost + np.maximum(said - raw, 0.0)
        cost /= np.maximum(s["recurrence_level"][r.idx], 1e-9)
        s["surge_cost"][r.idx] = recurrence.memory * s["surge_cost"][r.idx] + (1.0 - recurrence.memory) * cost
        self._surge.learn(s["surge"], r, self.step_seconds, np.maximum(e, 0.0))
        self._page_hinkley(r.slots, np.abs(e))

    def surge_many(self, slots: np.ndarray, horizon: int, point: np.ndarray | None = None) -> np.ndarray:
        """Point plus ``surge_z`` times the surge usually seen around each step's time of day (NaN while warming up).

        ``[len(slots), horizon]``, as ``point`` (the fleet passes the one it has just computed).
        """
        s = self._state()
        if point is None:
            point = self.forecast_many(slots, horizon)[0]
        r = Round.of(slots, s["step"][slots])
        above = self._surge.above(s["surge"], r, horizon, self.step_seconds)
        above *= s["spread"][r.idx]
        above[:, s["err_n"][0, r.idx] < self.min_errors] = np.nan
        surge: np.ndarray = above.T + point
        if self.recurrence:  # timer-triggered load: the phase of its period, where that has cost less lately
            recurring = self._recurrence.cost(s, r) < s["surge_cost"][r.idx]
            if recurring.any():
                surge[recurring] = self._recurrence.predict(s, r.subset(recurring), horizon).T
        return surge

    def _page_hinkley(self, slots: np.ndarray, err: np.ndarray) -> None:
        s = self._state()
        n = s["err_n"][0, slots]
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
            s["err_n"][:, d] = 0.0  # re-warm the band from the new errors
            s["ph_sum"][d] = s["ph_min"][d] = 0.0

    def _clip(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.maximum(a, 0.0) for a in arrays) if self.non_negative else arrays

    def forecast_many(self, slots: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point, lower and upper ``[len(slots), horizon]`` from each slot's last learnt sample (NaN: unknown)."""
        s = self._state()
        r = Round.of(slots, s["step"][slots])
        if horizon <= self.horizon:
            if r.common is not None:
                cumulative = s["fc"][r.common % self.horizon][:horizon, r.idx]
            else:
                cumulative = s["fc"][r.steps % self.horizon, :horizon, r.slots].T
        else:
            cumulative = self._changes(r, horizon)
        spread = s["spread"][r.idx]
        point = cumulative * spread
        point += s["y"][r.idx]
        point[:, s["n"][r.idx] == 0] = np.nan
        lo, hi = self._band.offsets(s, r.idx, horizon, spread)
        lo += point
        hi += point
        np.minimum(lo, point, out=lo)
        np.maximum(hi, point, out=hi)
        if self.non_negative:
            for a in (point, lo, hi):
                np.maximum(a, 0.0, out=a)
        return point.T, lo.T, hi.T

    def expect_many(self, slots: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each slot expects at ``t`` (within the horizon after its last sample; NaN otherwise)."""
        s = self._state()
        target = np.rint(t / self.step_seconds).astype(np.int64)
        ahead = target - s["step"][slots]
        usable = (ahead >= 1) & (ahead <= self.horizon) & (s["n"][slots] > 0)
        k = np.clip(ahead - 1, 0, self.horizon - 1)
        at = (target - 1 - k) % self.horizon  # the origin: the last learnt step
        spread = s["spread"][slots]
        point = np.where(usable, s["y"][slots] + s["fc"][at, k, slots] * spread, np.nan)
        ok = s["err_n"][k, slots] >= self.min_errors
        lo = np.where(ok, np.minimum(point + s["q_lo"][k, slots] * spread, point), np.nan)
        hi = np.where(ok, np.maximum(point + s["q_hi"][k, slots] * spread, point), np.nan)
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
