"""``seasonal_ar``: the default forecaster, vectorised over series.

Per series, in units of the series' own spread (so that what is learnt transfers
between similar series):

- ``u``: the change per step, divided by a running mean of |change|;
- two seasonal profiles of ``u``: the mean change at this time of day (``day_bins``
  bins) and of week (``week_bins`` bins), learnt online;
- the next ``u`` is a linear function of the last ``p`` changes, the daily and weekly
  profile at the step being forecast, and a constant, fitted exactly by recursive least
  squares with forgetting. Seasonality is found, not assumed: a series without a daily
  or weekly cycle gets a weight near 0 on that profile;
- multi-step forecasts iterate the recursion; the 90% band is tracked online per step
  ahead (stochastic quantile tracking of the normalised errors of this model's own past
  forecasts: no error ring);
- surges: the rise above the one-step forecast usually seen at each time of day
  (:mod:`models.surge`), so ``surge_many`` can say "point plus ``surge_z`` of the surges
  usually seen at this time of day": what the Knative floor provisions for;
- drift: least squares with forgetting and bands in units of the running spread adapt
  to a new normal by themselves; a Page-Hinkley test on the normalised one-step errors
  detects drift that outpaces them, counts it (``drifts``, reported by the bank) and
  re-warms the band from the new errors (``drift_relearn`` > 0 also widens the
  least-squares memory; off by default, it cost accuracy on the Azure traces).

All state lives in numpy arrays with one row per series (:mod:`models.slots`), so a bank
of 100,000 series costs a few vectorised operations per step. The per-series protocol
(``learn_one``, ``forecast``, ``expect``) runs the same code on a single row.

>>> f = SeasonalAR(step_seconds=60, horizon=3, p=2)
>>> for i in range(300):
...     f.learn_one(i * 60.0, 0.5 * i)
>>> np.round(f.forecast(3).point, 2).tolist()
[150.0, 150.5, 151.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from models.base import Expectation, Params, PointForecast
from models.recurrence import Recurrence
from models.slots import SLOT0, FieldSpec, Index, Slotted, as_index, as_slots, one
from models.step_ahead_band import StepAheadBand
from models.surge import SurgeProfile

DAY, WEEK = 86_400.0, 604_800.0
NEVER = np.iinfo(np.int64).min // 4


class SeasonalAR(Slotted, Params):
    def __init__(
        self,
        step_seconds: float = 60.0,
        horizon: int = 12,
        interval: float = 0.9,
        p: int = 12,
        day_bins: int = 96,
        week_bins: int = 168,
        forget: float = 0.9995,
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
        recurrence: bool = True,
    ) -> None:
        self.step_seconds = step_seconds
        self.horizon = horizon
        self.interval = interval
        self.p = p
        self.day_bins = day_bins
        self.week_bins = week_bins
        self.forget = forget
        self.prior = prior
        self.profile_rate = profile_rate
        self.band_rate = band_rate
        self.min_errors = min_errors
        self.drift_delta = drift_delta
        self.drift_threshold = drift_threshold
        self.drift_relearn = drift_relearn
        self.max_change = max_change
        self.surge_bins = surge_bins
        self.surge_rate = surge_rate  # per day: the weight of today's surge at a time of day
        self.surge_z = surge_z
        self.recurrence = recurrence  # the surge may come from the phase of a recurring period (timer-triggered load)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """For :mod:`models.checks`: the defaults, and a drift test that fires (and re-learns) in the checks' data."""
        yield {}
        yield {"p": 3, "drift_threshold": 10.0, "drift_relearn": 0.5, "surge_bins": 48}

    # -- state -----------------------------------------------------------------
    @property
    def _k(self) -> int:
        return self.p + 3  # lags, day profile, week profile, constant

    def _fields(self) -> dict[str, FieldSpec]:
        h, k, f8 = self.horizon, self._k, np.float64
        return {
            "n": FieldSpec((), np.int64, 0),  # samples learnt
            "step": FieldSpec((), np.int64, 0),  # step index of the last learnt sample
            "y": FieldSpec((), f8, math.nan),  # last learnt value
            "spread": FieldSpec((), f8, 0.0),  # running mean |change per step|
            "seconds": FieldSpec((), f8, self.step_seconds),
            "lags": FieldSpec((self.p,), f8, 0.0),  # last p normalised changes, newest first
            "day": FieldSpec((self.day_bins,), np.float32, 0.0),
            "day_n": FieldSpec((self.day_bins,), np.float32, 0.0),
            "week": FieldSpec((self.week_bins,), np.float32, 0.0),
            "week_n": FieldSpec((self.week_bins,), np.float32, 0.0),
            "w": FieldSpec((k,), f8, 0.0),
            "P": FieldSpec((k, k), f8, np.eye(k) * self.prior),
            "fc": FieldSpec((h, h), f8, math.nan),  # [target % h, ahead - 1]: forecasts awaiting their target
            "origin": FieldSpec((h,), np.int64, NEVER),
            **self._band.fields(),  # q, err_n, err_abs
            "ph_mean": FieldSpec((), f8, 0.0),  # Page-Hinkley on one-step |error|
            "ph_sum": FieldSpec((), f8, 0.0),
            "ph_min": FieldSpec((), f8, 0.0),
            "drifts": FieldSpec((), np.int64, 0),
            "surge": self._surge.field(),  # mean rise above the one-step forecast, by time of day
            "surge_cost": FieldSpec((), np.float32, 0.0),  # recent cost of the time-of-day surge as a prediction
            **self._recurrence.fields(),  # the load at each phase of candidate periods, and their recent cost
        }

    @property
    def _band(self) -> StepAheadBand:
        return StepAheadBand(self.horizon, self.interval, self.band_rate, self.min_errors)

    @property
    def _surge(self) -> SurgeProfile:
        return SurgeProfile(self.surge_bins, self.surge_rate, self.surge_z)

    @property
    def _recurrence(self) -> Recurrence:
        return Recurrence()

    #: fields that mean the same for any series of the same kind (scale-free): cold start copies them
    TRANSFERABLE = ("day", "day_n", "week", "week_n", "w", "P", "q", "err_n", "err_abs", "ph_mean")

    def seed(self, targets: np.ndarray, donors: np.ndarray) -> None:
        """Cold start ``targets`` (fresh slots) from trained ``donors`` of similar series."""
        s = self._state()
        s.copy(list(self.TRANSFERABLE), donors, targets)
        s["P"][targets] = np.maximum(s["P"][targets], np.eye(self._k) * self.prior * 0.01)  # stay open to learning

    # -- vectorised protocol -----------------------------------------------------
    def _bins(self, steps: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = steps * seconds
        day = np.minimum((np.mod(t, DAY) * (self.day_bins / DAY)).astype(np.int64), self.day_bins - 1)
        week = np.minimum((np.mod(t, WEEK) * (self.week_bins / WEEK)).astype(np.int64), self.week_bins - 1)
        return day, week

    def learn_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray) -> None:
        """Learn one sample per slot (slots distinct); NaN, duplicate and late samples are ignored."""
        s = self._state()
        ok = np.isfinite(y)
        if not ok.all():
            slots, t, y = slots[ok], t[ok], y[ok]
        steps = np.rint(t / s["seconds"][slots]).astype(np.int64)
        first = s["n"][slots] == 0
        if first.any():
            fs = slots[first]
            s["step"][fs], s["y"][fs], s["n"][fs] = steps[first], y[first], 1
            self._remember(fs)
        gap = steps - s["step"][slots]
        fresh = first | (gap > 0)
        self._recurrence.learn(s, slots[fresh], steps[fresh], y[fresh])
        go = ~first & (gap > 0)
        if not go.all():
            slots, steps, y, gap = slots[go], steps[go], y[go], gap[go]
        if slots.size == 0:
            return
        idx = as_index(slots)
        self._score_band(idx, steps, y)
        change = (y - s["y"][idx]) / gap  # a gap spreads the change evenly
        diffs = s["n"][idx] - 1
        spread = s["spread"][idx]
        spread = spread + (np.abs(change) - spread) * np.where(diffs > 100, 0.01, 1.0 / (diffs + 1.0))
        s["spread"][idx] = spread
        u = change / np.where(spread > 0, spread, 1.0)
        day, week = self._bins(steps, s["seconds"][idx])
        x = np.empty((len(slots), self._k))
        x[:, : self.p] = s["lags"][idx]
        x[:, self.p] = s["day"][slots, day]
        x[:, self.p + 1] = s["week"][slots, week]
        x[:, self.p + 2] = 1.0
        self._rls(idx, x, u)
        for name, bins in (("day", day), ("week", week)):
            profile, seen = s[name], s[name + "_n"]
            count = seen[slots, bins]
            rate = np.maximum(self.profile_rate, 1.0 / (count + 1.0))
            profile[slots, bins] += rate * (u - profile[slots, bins])
            seen[slots, bins] = count + 1
        lags = s["lags"]
        lags[idx, 1:] = lags[idx, :-1].copy()
        lags[idx, 0] = u
        s["y"][idx], s["step"][idx] = y, steps
        s["n"][idx] += 1
        self._remember(slots)

    def _rls(self, idx: Index, x: np.ndarray, target: np.ndarray) -> None:
        s = self._state()
        P, w = s["P"][idx], s["w"][idx]  # views when idx is a slice: updated in place
        px = np.matmul(P, x[:, :, None])[:, :, 0]
        gain = px / (self.forget + np.einsum("ni,ni->n", x, px))[:, None]
        w += gain * (target - np.einsum("ni,ni->n", x, w))[:, None]
        P -= gain[:, :, None] * px[:, None, :]
        P *= 1.0 / self.forget
        # no wind-up: a direction the data never excites must not grow without bound
        diag = np.einsum("nii->ni", P)
        high = np.flatnonzero(diag.max(axis=1) > self.prior)
        if high.size:
            shrink = np.sqrt(np.minimum(1.0, self.prior / np.maximum(diag[high], 1e-300)))
            P[high] *= shrink[:, :, None] * shrink[:, None, :]
        if not isinstance(idx, slice):
            s["P"][idx], s["w"][idx] = P, w

    def _points(self, slots: np.ndarray, horizon: int) -> np.ndarray:
        """Forecasts of the next ``horizon`` steps from each slot's state: the recursion, iterated."""
        s = self._state()
        n, p = len(slots), self.p
        w = s["w"][slots]
        spread = s["spread"][slots]
        scale = np.where(spread > 0, spread, 1.0)
        ahead = s["step"][slots][:, None] + np.arange(1, horizon + 1)
        day, week = self._bins(ahead, s["seconds"][slots][:, None])
        seasonal = (
            s["day"][slots[:, None], day] * w[:, p : p + 1] + s["week"][slots[:, None], week] * w[:, p + 1 : p + 2]
        )
        seasonal += w[:, p + 2 : p + 3]
        # changes, newest first: [predicted (filled from the right) | learnt lags]
        changes = np.empty((n, horizon + p))
        changes[:, horizon:] = s["lags"][slots]
        lag_weights = w[:, :p]
        for h in range(horizon):
            u = np.einsum("ni,ni->n", changes[:, horizon - h : horizon - h + p], lag_weights) + seasonal[:, h]
            changes[:, horizon - h - 1] = np.clip(u, -self.max_change, self.max_change)  # never explode
        predicted = changes[:, horizon - 1 :: -1][:, :horizon] if horizon else changes[:, :0]
        return s["y"][slots][:, None] + np.cumsum(predicted, axis=1) * scale[:, None]

    def _remember(self, slots: np.ndarray) -> None:
        """Keep this origin's forecasts where their targets will look: ``fc[target % h, ahead - 1]``."""
        s = self._state()
        h = self.horizon
        points = self._points(slots, h)
        origin = s["step"][slots]
        rows = (origin[:, None] + np.arange(1, h + 1)) % h
        s["fc"][slots[:, None], rows, np.arange(h)] = points
        s["origin"][slots, origin % h] = origin

    def _score_band(self, idx: Index, steps: np.ndarray, y: np.ndarray) -> None:
        """``y`` arrived: track the band edges from the errors of the forecasts made 1..h steps before."""
        s = self._state()
        h = self.horizon
        made_at = steps[:, None] - np.arange(1, h + 1)  # the origin of each step-ahead forecast of this target
        rows = np.arange(len(steps))[:, None]
        valid = s["origin"][idx][rows, made_at % h] == made_at
        predicted = s["fc"][idx][rows, (steps % h)[:, None], np.arange(h)]
        spread = s["spread"][idx]
        e = (y[:, None] - predicted) / np.where(spread > 0, spread, 1.0)[:, None]
        valid &= np.isfinite(e)
        e = np.where(valid, e, 0.0)
        self._band.track(s, idx, e, valid)
        first = valid[:, 0]
        if first.any():
            slots = as_slots(idx, len(steps))[first]
            raw = e[first, 0] * np.where(spread > 0, spread, 1.0)[first]  # in the series' own units
            said = self._surge.above(s["surge"], slots, steps[first][:, None], s["seconds"][slots][:, None])[:, 0]
            level = np.maximum(s["recurrence_level"][slots], 1e-9)
            recurrence = self._recurrence
            cost = (recurrence.miss_cost * np.maximum(raw - said, 0.0) + np.maximum(said - raw, 0.0)) / level
            memory = recurrence.memory
            s["surge_cost"][slots] = memory * s["surge_cost"][slots] + (1.0 - memory) * cost
            self._surge.learn(s["surge"], slots, steps[first], s["seconds"][slots], np.maximum(raw, 0.0))
            self._page_hinkley(slots, np.abs(e[first, 0]))

    def surge_many(self, slots: np.ndarray, horizon: int, point: np.ndarray | None = None) -> np.ndarray:
        """Point plus ``surge_z`` times the surge usually seen around each step's time of day (NaN while warming up)."""
        s = self._state()
        if point is None:  # the fleet passes the point it has just computed
            point = self.forecast_many(slots, horizon)[0]
        ahead = s["step"][slots][:, None] + np.arange(1, horizon + 1)
        above = self._surge.above(s["surge"], slots, ahead, s["seconds"][slots][:, None])
        warm = (s["err_n"][slots, 0] >= self.min_errors)[:, None]
        surge = np.where(warm, point + above, np.nan)
        if self.recurrence:  # timer-triggered load: the phase of its period, where that has cost less lately
            recurring = self._recurrence.cost(s, slots) < s["surge_cost"][slots]
            surge = np.where(recurring[:, None], self._recurrence.predict(s, slots, s["step"][slots], horizon), surge)
        return surge

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
            if self.drift_relearn:  # forget faster: re-learn the dynamics (off by default: RLS forgets anyway)
                s["P"][d] += np.eye(self._k) * (self.prior * self.drift_relearn)
            s["err_n"][d] = 0.0  # re-warm the band from the new errors
            s["ph_sum"][d] = s["ph_min"][d] = 0.0

    def forecast_many(self, slots: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point, lower and upper ``[len(slots), horizon]`` from each slot's last learnt sample (NaN: unknown)."""
        s = self._state()
        if horizon <= self.horizon:
            origin = s["step"][slots]
            k = np.arange(horizon)
            point = s["fc"][slots[:, None], (origin[:, None] + k + 1) % self.horizon, k]
        else:
            point = self._points(slots, horizon)
        point[s["n"][slots] == 0] = np.nan
        spread = s["spread"][slots]
        lo, hi = self._band.offsets(s, slots, horizon, np.where(spread > 0, spread, 0.0)[:, None])
        return point, np.minimum(point + lo, point), np.maximum(point + hi, point)

    def expect_many(self, slots: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each slot expects at ``t`` (within the horizon after its last sample; NaN otherwise)."""
        s = self._state()
        target = np.rint(t / s["seconds"][slots]).astype(np.int64)
        ahead = target - s["step"][slots]
        usable = (ahead >= 1) & (ahead <= self.horizon) & (s["n"][slots] > 0)
        k = np.clip(ahead - 1, 0, self.horizon - 1)
        point = np.where(usable, s["fc"][slots, target % self.horizon, k], np.nan)
        ok = s["err_n"][slots, k] >= self.min_errors
        spread = s["spread"][slots]
        q = s["q"][slots, k] * np.where(spread > 0, spread, 0.0)[:, None]
        lo = np.where(ok, np.minimum(point + q[:, 0], point), np.nan)
        hi = np.where(ok, np.maximum(point + q[:, 1], point), np.nan)
        return point, lo, hi

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
