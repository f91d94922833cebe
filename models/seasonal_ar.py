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
- drift: a Page-Hinkley test on the normalised one-step errors; when it fires, the
  least-squares memory is widened and the band re-warmed, so the model re-learns fast
  instead of staying wrong.

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

import numpy as np
from scipy.special import ndtri

from models.base import Expectation, Params, PointForecast
from models.slots import SLOT0, FieldSpec, Slotted, one

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
        drift_threshold: float = 200.0,
        max_change: float = 5.0,
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
        self.max_change = max_change

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
            "fc": FieldSpec((h, h), f8, math.nan),  # forecasts of the last h origins, row = origin % h
            "origin": FieldSpec((h,), np.int64, NEVER),
            "q": FieldSpec((h, 2), f8, 0.0),  # band edges per step ahead, in units of spread
            "err_n": FieldSpec((h,), f8, 0.0),
            "err_abs": FieldSpec((h,), f8, 0.0),  # mean |normalised error| per step ahead
            "ph_mean": FieldSpec((), f8, 0.0),  # Page-Hinkley on one-step |error|
            "ph_sum": FieldSpec((), f8, 0.0),
            "ph_min": FieldSpec((), f8, 0.0),
            "drifts": FieldSpec((), np.int64, 0),
        }

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

    def _features(self, lags: np.ndarray, day: np.ndarray, week: np.ndarray) -> np.ndarray:
        return np.concatenate([lags, day[:, None], week[:, None], np.ones((len(lags), 1))], axis=1)

    def learn_many(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray) -> None:
        """Learn one sample per slot (slots distinct); NaN, duplicate and late samples are ignored."""
        s = self._state()
        ok = np.isfinite(y)
        slots, t, y = slots[ok], t[ok], y[ok]
        steps = np.rint(t / s["seconds"][slots]).astype(np.int64)
        first = s["n"][slots] == 0
        if first.any():
            fs = slots[first]
            s["step"][fs], s["y"][fs], s["n"][fs] = steps[first], y[first], 1
            self._remember(fs)
        gap = steps - s["step"][slots]
        go = ~first & (gap > 0)
        if not go.any():
            return
        slots, steps, y, gap = slots[go], steps[go], y[go], gap[go]
        self._score_band(slots, steps, y)
        change = (y - s["y"][slots]) / gap  # a gap spreads the change evenly
        diffs = s["n"][slots] - 1
        spread = s["spread"][slots]
        spread += (np.abs(change) - spread) * np.where(diffs > 100, 0.01, 1.0 / (diffs + 1.0))
        s["spread"][slots] = spread
        u = change / np.where(spread > 0, spread, 1.0)
        day, week = self._bins(steps, s["seconds"][slots])
        rows = np.arange(len(slots))
        day_profile, week_profile = s["day"][slots], s["week"][slots]
        x = self._features(s["lags"][slots], day_profile[rows, day], week_profile[rows, week])
        self._rls(slots, x, u)
        for name, bins in (("day", day), ("week", week)):
            profile, seen = s[name], s[name + "_n"]
            count = seen[slots, bins]
            rate = np.maximum(self.profile_rate, 1.0 / (count + 1.0))
            profile[slots, bins] += rate * (u - profile[slots, bins])
            seen[slots, bins] = count + 1
        lags = s["lags"][slots]
        s["lags"][slots] = np.concatenate([u[:, None], lags[:, :-1]], axis=1)
        s["y"][slots], s["step"][slots] = y, steps
        s["n"][slots] += 1
        self._remember(slots)

    def _rls(self, slots: np.ndarray, x: np.ndarray, target: np.ndarray) -> None:
        s = self._state()
        P, w = s["P"][slots], s["w"][slots]
        px = np.einsum("nij,nj->ni", P, x)
        gain = px / (self.forget + np.einsum("ni,ni->n", x, px))[:, None]
        w += gain * (target - np.einsum("ni,ni->n", x, w))[:, None]
        P -= gain[:, :, None] * px[:, None, :]
        P /= self.forget
        # no wind-up: a direction the data never excites must not grow without bound
        diag = np.einsum("nii->ni", P)
        shrink = np.sqrt(np.minimum(1.0, self.prior / np.maximum(diag, 1e-300)))
        P *= shrink[:, :, None] * shrink[:, None, :]
        s["P"][slots], s["w"][slots] = P, w

    def _points(self, slots: np.ndarray, horizon: int) -> np.ndarray:
        s = self._state()
        lags, w = s["lags"][slots].copy(), s["w"][slots]
        spread = s["spread"][slots]
        scale = np.where(spread > 0, spread, 1.0)
        level = s["y"][slots].copy()
        steps, seconds = s["step"][slots], s["seconds"][slots]
        rows = np.arange(len(slots))
        day_profile, week_profile = s["day"][slots], s["week"][slots]
        out = np.empty((len(slots), horizon))
        for h in range(horizon):
            day, week = self._bins(steps + h + 1, seconds)
            x = self._features(lags, day_profile[rows, day], week_profile[rows, week])
            u = np.clip(np.einsum("ni,ni->n", x, w), -self.max_change, self.max_change)  # never explode
            level += u * scale
            out[:, h] = level
            lags = np.concatenate([u[:, None], lags[:, :-1]], axis=1)
        return out

    def _remember(self, slots: np.ndarray) -> None:
        s = self._state()
        row = s["step"][slots] % self.horizon
        s["fc"][slots, row] = self._points(slots, self.horizon)
        s["origin"][slots, row] = s["step"][slots]

    def _score_band(self, slots: np.ndarray, steps: np.ndarray, y: np.ndarray) -> None:
        """``y`` arrived: track the band edges from the errors of the forecasts made 1..h steps before."""
        s = self._state()
        ahead = steps[:, None] - s["origin"][slots]  # [n, h] per remembered origin
        hit = (ahead >= 1) & (ahead <= self.horizon)
        i, r = np.nonzero(hit)
        if i.size == 0:
            return
        k = ahead[i, r] - 1
        sl = slots[i]
        spread = s["spread"][sl]
        e = (y[i] - s["fc"][sl, r, k]) / np.where(spread > 0, spread, 1.0)
        known = np.isfinite(e)
        sl, k, e, i = sl[known], k[known], e[known], i[known]
        n, mean_abs = s["err_n"][sl, k], s["err_abs"][sl, k]
        mean_abs += (np.abs(e) - mean_abs) * np.maximum(1.0 / (n + 1.0), 0.01)
        tail = (1.0 - self.interval) / 2.0
        q = s["q"][sl, k]  # [m, 2]
        warm = n < self.min_errors
        z = float(ndtri(1.0 - tail)) * 1.25  # normal quantile from the mean |error|
        lr = self.band_rate * np.maximum(mean_abs, 1e-9)
        lo = np.where(warm, -z * mean_abs, q[:, 0] + lr * (tail - (e < q[:, 0])))
        hi = np.where(warm, z * mean_abs, q[:, 1] + lr * ((e > q[:, 1]) - tail))
        s["q"][sl, k] = np.stack([lo, hi], axis=1)
        s["err_n"][sl, k], s["err_abs"][sl, k] = n + 1.0, mean_abs
        one_step = k == 0
        if one_step.any():
            self._page_hinkley(sl[one_step], np.abs(e[one_step]))

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
            s["P"][d] += np.eye(self._k) * (self.prior * 0.01)  # forget faster: re-learn
            s["err_n"][d] = 0.0  # re-warm the band from the new errors
            s["ph_sum"][d] = s["ph_min"][d] = 0.0

    def forecast_many(self, slots: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point, lower and upper ``[len(slots), horizon]`` from each slot's last learnt sample (NaN: unknown)."""
        s = self._state()
        n = len(slots)
        if horizon <= self.horizon:
            point = s["fc"][slots, s["step"][slots] % self.horizon, :horizon].copy()
        else:
            point = self._points(slots, horizon)
        point[s["n"][slots] == 0] = np.nan
        spread = s["spread"][slots]
        scale = np.where(spread > 0, spread, 0.0)[:, None]
        ok = s["err_n"][slots] >= self.min_errors
        q = np.where(ok[:, :, None], s["q"][slots], np.nan) * scale[:, :, None]
        lo, hi = np.full((n, horizon), np.nan), np.full((n, horizon), np.nan)
        used = min(horizon, self.horizon)
        lo[:, :used], hi[:, :used] = q[:, :used, 0], q[:, :used, 1]
        if horizon > used:  # beyond the tracked horizon the last band widens with sqrt(h)
            widen = np.sqrt(np.arange(used + 1, horizon + 1) / used)
            lo[:, used:], hi[:, used:] = q[:, -1:, 0] * widen, q[:, -1:, 1] * widen
        lo = np.minimum(point + lo, point)
        hi = np.maximum(point + hi, point)
        return point, lo, hi

    def expect_many(self, slots: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each slot expects at ``t`` (within the horizon after its last sample; NaN otherwise)."""
        s = self._state()
        ahead = np.rint(t / s["seconds"][slots]).astype(np.int64) - s["step"][slots]
        usable = (ahead >= 1) & (ahead <= self.horizon) & (s["n"][slots] > 0)
        k = np.clip(ahead - 1, 0, self.horizon - 1)
        point, lo, hi = self.forecast_many(slots, self.horizon)
        rows = np.arange(len(slots))
        pick = lambda a: np.where(usable, a[rows, k], np.nan)  # noqa: E731
        return pick(point), pick(lo), pick(hi)

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
