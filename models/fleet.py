"""A fleet: one vectorised forecaster and detector holding many series, one slot each.

Samples of many series are processed in rounds: round ``r`` holds the ``r``-th new
sample of every series that has one, so each round is a handful of numpy operations
over all those series, whatever their number. A new series starts from a trained
series of the same workload and signal (or of the same signal) when there is one:
what the kinds learnt in scale-free units (profiles, autoregression, band shape) is
copied, the level and scale come from the new series' own data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, SeriesKey
from models.slots import FieldSpec, SlotArrays, copy_slots

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


@dataclass(frozen=True, slots=True)
class ForecastRows:
    """Forecasts of many series as arrays; ``row(i)`` builds the :class:`Forecast` when someone reads it."""

    keys: list[SeriesKey]
    origin: np.ndarray
    step_seconds: float
    point: np.ndarray  # [series, horizon]
    lower: np.ndarray
    upper: np.ndarray
    banded: np.ndarray  # [series] bool: the band is known
    tail: float
    model: str
    surge: np.ndarray | None = None  # [series, horizon]: what to provision for (see SeasonalAR.surge_many)
    last: np.ndarray | None = None  # [series]: the value observed at the origin

    def row(self, i: int) -> Forecast:
        quantiles = {}
        if self.banded[i]:
            quantiles = {
                self.tail: tuple(self.lower[i].tolist()),
                round(1.0 - self.tail, 6): tuple(self.upper[i].tolist()),
            }
        surge = ()
        if self.surge is not None and np.isfinite(self.surge[i]).all():
            surge = tuple(self.surge[i].tolist())
        return Forecast(
            self.keys[i],
            float(self.origin[i]),
            self.step_seconds,
            tuple(self.point[i].tolist()),
            quantiles,
            self.model,
            surge,
            float(self.last[i]) if self.last is not None and np.isfinite(self.last[i]) else None,
        )


@dataclass(frozen=True, slots=True)
class ScoreRows:
    """The latest anomaly score of many series as arrays; ``row(i)`` builds the :class:`AnomalyScore`."""

    keys: list[SeriesKey]
    timestamp: np.ndarray
    value: np.ndarray
    score: np.ndarray
    expected: np.ndarray  # [series, 3]: point, lower, upper (NaN: no expectation)
    model: str

    def row(self, i: int) -> AnomalyScore:
        point, lower, upper = (None if v != v else v for v in self.expected[i].tolist())  # NaN -> None
        reason = AnomalyReason(self.model, float(self.value[i]), point, lower, upper)
        return AnomalyScore(self.keys[i], float(self.timestamp[i]), float(self.score[i]), reason)


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

    def __deepcopy__(self, memo: dict[int, object]) -> Fleet:
        """A snapshot for a checkpoint: arrays copied with memcpy, keys (immutable) shared."""
        return Fleet(
            copy.deepcopy(self.forecaster, memo),
            copy.deepcopy(self.detector, memo),
            self.forecaster_kind,
            self.detector_kind,
            dict(self.slots),
            list(self.free),
            copy.deepcopy(self.stats, memo),
            {group: set(members) for group, members in self.groups.items()},
        )

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
        slot = self._new_slot(key)
        donor = self._donor(key)
        if donor is not None:
            target, source = np.array([slot]), np.array([donor])
            self.forecaster.seed(target, source)
            self.detector.seed(target, source)
        self._join(key, slot)
        return slot

    def _new_slot(self, key: SeriesKey) -> int:
        slot = self.free.pop() if self.free else len(self.slots)
        self.stats.grow(slot + 1)
        self.forecaster.ensure(slot + 1)
        self.detector.ensure(slot + 1)
        return slot

    def _join(self, key: SeriesKey, slot: int) -> None:
        self.slots[key] = slot
        for group in self._groups_of(key):
            self.groups.setdefault(group, set()).add(slot)

    def take(self, source: Fleet, keys: Iterable[SeriesKey]) -> int:
        """Take ``keys`` over from ``source`` (a fleet of the same spec, e.g. read from another replica's
        checkpoint) with everything they learnt; what this fleet held of them is replaced. ``source`` is not
        changed. Returns how many series moved."""
        moving = [(key, source.slots[key]) for key in keys if key in source.slots]
        if not moving:
            return 0
        self.drop([key for key, _ in moving])
        targets = np.empty(len(moving), dtype=np.int64)
        for i, (key, _) in enumerate(moving):
            targets[i] = slot = self._new_slot(key)
            self._join(key, slot)
        sources = np.array([slot for _, slot in moving], dtype=np.int64)
        self.forecaster.transplant(source.forecaster, targets, sources)
        self.detector.transplant(source.detector, targets, sources)
        copy_slots(self.stats, source.stats, targets, sources)
        return len(moving)

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
    def observe(self, batches: Sequence[Batch], report_at: float | None = None) -> list[AnomalyScore | ScoreRows]:
        """Score then learn every new sample, round by round.

        Returns every score when ``report_at`` is None; otherwise the scores at or above it,
        then the last score of each series as :class:`ScoreRows` (what the anomaly store keeps).
        """
        if not batches:
            return []
        keys = [key for key, _, _ in batches]
        slot_of = np.array([self._slot(key) for key in keys], dtype=np.int64)
        if len(np.unique(slot_of)) < len(slot_of):  # a key given twice: merge its samples first
            return self.observe(_one_batch_per_key(batches), report_at)
        lengths = np.array([len(t) for _, t, _ in batches], dtype=np.int64)
        t = np.concatenate([np.asarray(t, float) for _, t, _ in batches])
        y = np.concatenate([np.asarray(y, float) for _, _, y in batches])
        slots = np.repeat(slot_of, lengths)
        t, y, slots = self._new_samples(t, y, slots)
        if t.size == 0:
            return []
        starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
        rounds = np.arange(t.size) - np.repeat(starts, np.diff(np.r_[starts, t.size]))
        scores = np.empty(t.size)
        expected = np.empty((t.size, 3))
        details: dict[int, str] = {}
        order = np.argsort(rounds, kind="stable")
        bounds = np.searchsorted(rounds[order], np.arange(rounds.max() + 2))
        for r in range(len(bounds) - 1):
            idx = order[bounds[r] : bounds[r + 1]]
            scores[idx], expected[idx], why = self._round(slots[idx], t[idx], y[idx], report_at)
            details.update((int(idx[i]), text) for i, text in why.items())
        key_of_slot = dict(zip(slot_of.tolist(), keys, strict=True))
        return self._scores(key_of_slot, slots, t, y, scores, expected, details, report_at)

    def _new_samples(
        self, t: np.ndarray, y: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The finite samples after the series' last learnt one and after every earlier one in the batch."""
        segment_start = np.r_[True, slots[1:] != slots[:-1]] if slots.size else np.zeros(0, bool)
        learnt = self.stats["last_t"][slots]
        previous = np.where(segment_start, learnt, np.r_[-math.inf, t[:-1]])
        finite = np.isfinite(t) & np.isfinite(y)
        keep = finite & (t > previous) & (t > learnt)
        disorder = (~segment_start & (t <= previous)) | ~finite
        if disorder.any():  # rare: late, duplicate or missing samples inside a batch; exact rule per series
            for slot in np.unique(slots[disorder]).tolist():
                where = np.flatnonzero(slots == slot)
                tt, yy = t[where], y[where]
                ok = np.isfinite(tt) & np.isfinite(yy)
                before = np.maximum.accumulate(np.r_[self.stats["last_t"][slot], np.where(ok, tt, -math.inf)])[:-1]
                keep[where] = ok & (tt > before)
        return t[keep], y[keep], slots[keep]

    def _round(
        self, slots: np.ndarray, t: np.ndarray, y: np.ndarray, report_at: float | None
    ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Score, then learn, one sample of each slot; reasons for the reported scores, before learning."""
        point, lower, upper = self.forecaster.expect_many(slots, t)
        scores = self.detector.score_many(slots, t, y, point)
        reported = np.flatnonzero(scores >= report_at) if report_at is not None else np.arange(len(slots))
        why = {
            int(i): self.detector.explain(int(slots[i]), float(t[i]), float(y[i]), float(point[i]))
            for i in reported.tolist()
        }
        self._account(slots, y, point, lower, upper)
        self.detector.learn_many(slots, t, y, point)
        self.forecaster.learn_many(slots, t, y)
        st = self.stats
        st["last_t"][slots], st["last_value"][slots] = t, y
        st["learnt"][slots] += 1
        return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0), np.stack([point, lower, upper], axis=1), why

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
        key_of_slot: dict[int, SeriesKey],
        slots: np.ndarray,
        t: np.ndarray,
        y: np.ndarray,
        scores: np.ndarray,
        expected: np.ndarray,
        details: dict[int, str],
        report_at: float | None,
    ) -> list[AnomalyScore | ScoreRows]:
        chosen = np.flatnonzero(scores >= report_at) if report_at is not None else np.arange(len(t))
        cells = expected[chosen].tolist()
        out: list[AnomalyScore | ScoreRows] = []
        model = self.model
        for i, slot, stamp, value, score, (point, lower, upper) in zip(
            chosen.tolist(),
            slots[chosen].tolist(),
            t[chosen].tolist(),
            y[chosen].tolist(),
            scores[chosen].tolist(),
            cells,
            strict=True,
        ):
            reason = AnomalyReason(
                model,
                value,
                None if point != point else point,  # NaN: no expectation
                None if lower != lower else lower,
                None if upper != upper else upper,
                details.get(i, ""),
            )
            out.append(AnomalyScore(key_of_slot[slot], stamp, score, reason))
        if report_at is not None:
            last = np.flatnonzero(np.r_[slots[1:] != slots[:-1], True])
            keys = [key_of_slot[slot] for slot in slots[last].tolist()]
            out.append(ScoreRows(keys, t[last], y[last], scores[last], expected[last], model))
        return out

    # -- forecasts ---------------------------------------------------------------
    def forecast(
        self, keys: Sequence[SeriesKey], horizon: int, step_seconds: float, interval: float
    ) -> ForecastRows | None:
        slot_of = [self.slots.get(k, -1) for k in keys]
        known = [k for k, slot in zip(keys, slot_of, strict=True) if slot >= 0]
        if not known:
            return None
        slots = np.array([slot for slot in slot_of if slot >= 0], dtype=np.int64)
        point, lower, upper = self.forecaster.forecast_many(slots, horizon)
        usable = np.isfinite(point).all(axis=1) & (self.stats["learnt"][slots] > 0)
        if not usable.any():
            return None
        if not usable.all():
            keep = np.flatnonzero(usable)
            known = [known[i] for i in keep.tolist()]
            slots, point, lower, upper = slots[keep], point[keep], lower[keep], upper[keep]
        banded = np.isfinite(lower).all(axis=1) & np.isfinite(upper).all(axis=1)
        tail = round((1.0 - interval) / 2.0, 6)
        origin = self.stats["last_t"][slots]
        surge_many = getattr(self.forecaster, "surge_many", None)
        surge = surge_many(slots, horizon, point) if surge_many is not None else None
        last = self.stats["last_value"][slots]
        return ForecastRows(
            known, origin, step_seconds, point, lower, upper, banded, tail, self.forecaster_kind, surge, last
        )

    def progress(self) -> dict[SeriesKey, tuple[float, int]]:
        """Each series' last learnt timestamp and the number of samples it learnt."""
        last_t, learnt = self.stats["last_t"], self.stats["learnt"]
        return {key: (float(last_t[slot]), int(learnt[slot])) for key, slot in self.slots.items()}

    def latest_timestamp(self) -> float:
        used = np.array(list(self.slots.values()), dtype=np.int64)
        return float(self.stats["last_t"][used].max()) if used.size else -math.inf

    def totals(self, signal: str | None = None) -> dict[str, float]:
        """Accuracy counters summed over the series (of ``signal`` only, if given)."""
        st = self.stats
        chosen = self.slots.values() if signal is None else (v for k, v in self.slots.items() if k.signal == signal)
        used = np.array(sorted(chosen), dtype=np.int64)
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
