"""A fleet: one vectorised forecaster and detector holding many series, one slot each.

Samples of many series are processed in rounds: round ``r`` holds the ``r``-th new
sample of every series that has one, so each round is a handful of numpy operations
over all those series, whatever their number. A new series starts from a trained
series of the same workload and signal (or of the same signal) when there is one:
what the kinds learnt in scale-free units (profiles, autoregression, band shape) is
copied, the level and scale come from the new series' own data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intelligence.domain import AnomalyReason, AnomalyScore, Forecast, SeriesKey
from models.slots import FieldSpec, SlotArrays

MATURE = 288  # samples a series needs before it can seed others
DONOR_CANDIDATES = 16  # members of a group inspected when choosing a donor

Batch = tuple[SeriesKey, np.ndarray, np.ndarray]

STATS = {
    "last_t": FieldSpec((), np.float64, -math.inf),
    "last_value": FieldSpec((), np.float64, math.nan),
    "learnt": FieldSpec((), np.int64, 0),
    "scored": FieldSpec((), np.int64, 0),
    "abs_error": FieldSpec((), np.float64, 0.0),
    "abs_naive": FieldSpec((), np.float64, 0.0),
    "covered": FieldSpec((), np.int64, 0),
}


def _one_batch_per_key(batches: Sequence[Batch]) -> list[Batch]:
    """Batches with distinct keys (a key given twice gets its samples merged, in time order)."""
    merged: dict[SeriesKey, list[tuple[np.ndarray, np.ndarray]]] = {}
    for key, timestamps, values in batches:
        merged.setdefault(key, []).append((np.asarray(timestamps, float), np.asarray(values, float)))
    out = []
    for key, parts in merged.items():
        if len(parts) == 1:
            out.append((key, *parts[0]))
            continue
        t, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        order = np.argsort(t, kind="stable")
        out.append((key, t[order], y[order]))
    return out


def new_samples(timestamps: np.ndarray, values: np.ndarray, after: float) -> tuple[np.ndarray, np.ndarray]:
    """The finite samples strictly after ``after`` and after every earlier one (late and duplicate ones go)."""
    finite = np.isfinite(values) & np.isfinite(timestamps)
    t, y = timestamps[finite], values[finite]
    if t.size == 0:
        return t, y
    before = np.maximum.accumulate(np.concatenate([[after], t[:-1]]))
    keep = t > before
    return t[keep], y[keep]


@dataclass
class Fleet:
    """Series sharing one model spec; ``forecaster`` and ``detector`` are vectorised kinds."""

    forecaster: Any
    detector: Any
    forecaster_kind: str
    detector_kind: str
    slots: dict[SeriesKey, int] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)
    stats: SlotArrays = field(default_factory=lambda: SlotArrays(STATS))
    groups: dict[tuple[str, ...], set[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def model(self) -> str:
        return f"{self.detector_kind} on {self.forecaster_kind}"

    # -- slots -----------------------------------------------------------------
    @staticmethod
    def _groups_of(key: SeriesKey) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("workload", key.signal, key.label("namespace"), key.label("workload")), ("signal", key.signal)

    def _donor(self, key: SeriesKey) -> int | None:
        learnt = self.stats["learnt"]
        for group in self._groups_of(key):
            for i, slot in enumerate(self.groups.get(group, ())):
                if i >= DONOR_CANDIDATES:
                    break
                if learnt[slot] >= MATURE:
                    return slot
        return None

    def _slot(self, key: SeriesKey) -> int:
        slot = self.slots.get(key)
        if slot is not None:
            return slot
        slot = self.free.pop() if self.free else len(self.slots)
        capacity = max(slot + 1, self.stats.capacity)
        self.stats.grow(capacity)
        self.forecaster.ensure(capacity)
        self.detector.ensure(capacity)
        donor = self._donor(key)
        if donor is not None:
            target, source = np.array([slot]), np.array([donor])
            self.forecaster.seed(target, source)
            self.detector.seed(target, source)
        self.slots[key] = slot
        for group in self._groups_of(key):
            self.groups.setdefault(group, set()).add(slot)
        return slot

    def drop(self, keys: Iterable[SeriesKey]) -> int:
        gone = [(key, self.slots.pop(key)) for key in keys if key in self.slots]
        if not gone:
            return 0
        slots = np.array([slot for _, slot in gone])
        self.forecaster.reset(slots)
        self.detector.reset(slots)
        self.stats.reset(slots)
        for key, slot in gone:
            for group in self._groups_of(key):
                self.groups.get(group, set()).discard(slot)
        self.free.extend(slots.tolist())
        return len(gone)

    # -- learning ----------------------------------------------------------------
    def observe(self, batches: Sequence[Batch], report_at: float | None = None) -> list[AnomalyScore]:
        """Score then learn every new sample, round by round.

        Returns every score when ``report_at`` is None; otherwise the scores at or above
        it and the last score of each series (what the anomaly store keeps).
        """
        keys, slots, ts, ys, rounds = [], [], [], [], []
        for key, timestamps, values in _one_batch_per_key(batches):
            slot = self._slot(key)
            t, y = new_samples(timestamps, values, float(self.stats["last_t"][slot]))
            if t.size:
                keys.append(key)
                slots.append(np.full(t.size, slot))
                ts.append(t)
                ys.append(y)
                rounds.append(np.arange(t.size))
        if not keys:
            return []
        slot_all, t_all, y_all = np.concatenate(slots), np.concatenate(ts), np.concatenate(ys)
        round_all = np.concatenate(rounds)
        order = np.argsort(round_all, kind="stable")
        bounds = np.searchsorted(round_all[order], np.arange(round_all.max() + 2))
        score_all = np.empty(len(order))
        expected_all = np.empty((len(order), 3))
        for r in range(len(bounds) - 1):
            idx = order[bounds[r] : bounds[r + 1]]
            score_all[idx], expected_all[idx] = self._round(slot_all[idx], t_all[idx], y_all[idx])
        return self._scores(keys, slot_all, t_all, y_all, score_all, expected_all, report_at)

    def _round(self, slots: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        point, lower, upper = self.forecaster.expect_many(slots, t)
        scores = self.detector.score_many(slots, y, point)
        self._account(slots, y, point, lower, upper)
        self.detector.learn_many(slots, y, point)
        self.forecaster.learn_many(slots, t, y)
        st = self.stats
        st["last_t"][slots], st["last_value"][slots] = t, y
        st["learnt"][slots] += 1
        return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0), np.stack([point, lower, upper], axis=1)

    def _account(self, slots: np.ndarray, y: np.ndarray, point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        st = self.stats
        last = st["last_value"][slots]
        ok = np.isfinite(point) & np.isfinite(last)
        sl = slots[ok]
        st["scored"][sl] += 1
        st["abs_error"][sl] += np.abs(y[ok] - point[ok])
        st["abs_naive"][sl] += np.abs(y[ok] - last[ok])
        st["covered"][sl] += (lo[ok] <= y[ok]) & (y[ok] <= hi[ok])

    def _scores(
        self,
        keys: list[SeriesKey],
        slots: np.ndarray,
        t: np.ndarray,
        y: np.ndarray,
        scores: np.ndarray,
        expected: np.ndarray,
        report_at: float | None,
    ) -> list[AnomalyScore]:
        if report_at is None:
            keep = np.ones(len(t), dtype=bool)
        else:
            keep = scores >= report_at
            last_of_series = np.r_[slots[1:] != slots[:-1], True]
            keep |= last_of_series
        key_of_slot = {self.slots[k]: k for k in keys}
        out = []
        for i in np.flatnonzero(keep).tolist():
            slot = int(slots[i])
            value, (point, lower, upper) = float(y[i]), expected[i].tolist()
            detail = self.detector.explain(slot, value, point) if report_at is None or scores[i] >= report_at else ""
            finite = lambda v: v if math.isfinite(v) else None  # noqa: E731
            reason = AnomalyReason(self.model, value, finite(point), finite(lower), finite(upper), detail)
            out.append(AnomalyScore(key_of_slot[slot], float(t[i]), float(scores[i]), reason))
        return out

    # -- forecasts ---------------------------------------------------------------
    def forecast(self, keys: Sequence[SeriesKey], horizon: int, step_seconds: float, interval: float) -> list[Forecast]:
        known = [k for k in keys if k in self.slots]
        if not known:
            return []
        slots = np.array([self.slots[k] for k in known])
        point, lower, upper = self.forecaster.forecast_many(slots, horizon)
        origin = self.stats["last_t"][slots]
        tail = round((1.0 - interval) / 2.0, 6)
        banded = np.isfinite(lower).all(axis=1) & np.isfinite(upper).all(axis=1)
        usable = np.isfinite(point).all(axis=1) & (self.stats["learnt"][slots] > 0)
        out = []
        rows_p, rows_l, rows_u = point.tolist(), lower.tolist(), upper.tolist()
        for i in np.flatnonzero(usable).tolist():
            quantiles = {tail: tuple(rows_l[i]), round(1.0 - tail, 6): tuple(rows_u[i])} if banded[i] else {}
            out.append(
                Forecast(known[i], float(origin[i]), step_seconds, tuple(rows_p[i]), quantiles, self.forecaster_kind)
            )
        return out

    def latest_timestamp(self) -> float:
        used = np.array(list(self.slots.values()), dtype=np.int64)
        return float(self.stats["last_t"][used].max()) if used.size else -math.inf

    def totals(self) -> dict[str, float]:
        st = self.stats
        used = np.array(sorted(self.slots.values()), dtype=np.int64)
        arrays = self.forecaster.ensure(0).arrays
        drifts = arrays["drifts"][used].sum() if "drifts" in arrays else 0
        return {
            "scored": float(st["scored"][used].sum()),
            "abs_error": float(st["abs_error"][used].sum()),
            "abs_naive": float(st["abs_naive"][used].sum()),
            "covered": float(st["covered"][used].sum()),
            "drifts": float(drifts),
        }

    def bytes_per_series(self) -> int:
        return int(self.forecaster.bytes_per_series() + self.detector.bytes_per_series() + self.stats.bytes_per_slot())
