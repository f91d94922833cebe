"""Forecast history: past forecasts next to what happened, per series, bounded in memory.

For every series the last ``keep_steps`` sample times hold the value seen and, for each
tracked horizon ``h``, the forecast made ``h`` steps before that time (point and band). A
"forecast versus actual" chart and an accuracy report read it for a time range.

Why memory and not the database: it is derived data, rewritten for every series at every
step (10,000 series x 12 steps would be 120,000 rows a step), and it is cheap to rebuild:
after a restart it fills again within one horizon. What must survive a restart (decisions,
actions, events) is in the database; long-range history of forecasts is what Prometheus
keeps when it scrapes ``/metrics``. The memory is fixed per series: ``keep_steps`` x
(8 + 4 x (1 + 3 x horizons)) bytes, about 10 KiB at the defaults (288 steps, 2 horizons).

Arrays are shared by every series (one row each), so a step's vectorised forecasts are
stored without a loop over steps. Safe to read from the API's threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from intelligence.vocabulary import Forecast, SeriesBatch, SeriesKey

_EMPTY = np.int64(-1)


@dataclass(frozen=True, slots=True)
class RangeAccuracy:
    scored: int  # samples with a value and a forecast
    mae: float  # mean absolute error, in the series' unit (NaN: nothing scored)
    coverage: float  # share inside the band (NaN: no band)


@dataclass(frozen=True, slots=True)
class SeriesHistory:
    """One series over a time range: sample times (epoch s, ascending), the values seen (NaN: none yet or
    missing) and, per horizon (steps ahead), the forecast made that many steps before each time."""

    key: SeriesKey
    step_seconds: float
    timestamps: np.ndarray
    actual: np.ndarray
    forecasts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # horizon -> (point, lower, upper)

    def accuracy(self, horizon: int) -> RangeAccuracy:
        """How the forecasts made ``horizon`` steps ahead did over this range."""
        value, lower, upper = self.forecasts[horizon]
        scored = np.isfinite(self.actual) & np.isfinite(value)
        n = int(scored.sum())
        mae = float(np.abs(self.actual[scored] - value[scored]).mean()) if n else float("nan")
        banded = scored & np.isfinite(lower) & np.isfinite(upper)
        inside = (self.actual[banded] >= lower[banded]) & (self.actual[banded] <= upper[banded])
        coverage = float(inside.mean()) if banded.any() else float("nan")
        return RangeAccuracy(n, mae, coverage)


class ForecastHistory:
    def __init__(self, step_seconds: float, keep_steps: int = 288, horizons: Sequence[int] = (1, 12)) -> None:
        if step_seconds <= 0 or keep_steps < 1 or not horizons:
            raise ValueError("step_seconds and keep_steps must be positive, and one horizon at least")
        self.step_seconds = float(step_seconds)
        self.keep = int(keep_steps)
        self.horizons = tuple(sorted({int(h) for h in horizons}))
        self._lock = threading.Lock()
        self._rows: dict[SeriesKey, int] = {}
        self._free: list[int] = []
        capacity = 16
        self._slots = np.full((capacity, self.keep), _EMPTY, dtype=np.int64)  # the time slot held, -1: none
        self._actual = np.full((capacity, self.keep), np.nan, dtype=np.float32)
        self._fc = np.full((capacity, len(self.horizons), 3, self.keep), np.nan, dtype=np.float32)
        self._last = np.full((capacity, 2), np.nan, dtype=np.float64)  # latest sample: time, value

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    @property
    def nbytes(self) -> int:
        return int(self._slots.nbytes + self._actual.nbytes + self._fc.nbytes + self._last.nbytes)

    # -- writing (the engine's thread) -----------------------------------------------------------

    def _row(self, key: SeriesKey) -> int:
        row = self._rows.get(key)
        if row is not None:
            return row
        if self._free:
            row = self._free.pop()
        else:
            row = len(self._rows)
            if row >= self._slots.shape[0]:
                self._grow(2 * self._slots.shape[0])
        self._rows[key] = row
        return row

    def _grow(self, capacity: int) -> None:
        def grown(a: np.ndarray, fill: float | np.int64) -> np.ndarray:
            out = np.full((capacity, *a.shape[1:]), fill, dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        self._slots = grown(self._slots, _EMPTY)
        self._actual = grown(self._actual, np.nan)
        self._fc = grown(self._fc, np.nan)
        self._last = grown(self._last, np.nan)

    def _claim(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Positions of ``slots`` in the rings of ``rows``; a position holding another (older) time is cleared."""
        pos = slots % self.keep
        stale = self._slots[rows, pos] != slots
        if stale.any():
            r, p = rows[stale], pos[stale]
            self._slots[r, p] = slots[stale]
            self._actual[r, p] = np.nan
            self._fc[r, :, :, p] = np.nan
        return pos

    def record(self, batches: Iterable[SeriesBatch], forecasts: Iterable[object]) -> None:
        """One step: the samples learnt and the forecasts made (``Forecast`` objects or the models' row arrays)."""
        with self._lock:
            for b in batches:
                if not len(b):
                    continue
                row = self._row(b.key)
                slots = np.rint(b.timestamps / self.step_seconds).astype(np.int64)
                rows = np.full(slots.shape, row, dtype=np.int64)
                pos = self._claim(rows, slots)
                self._actual[row, pos] = b.values
                finite = np.isfinite(b.values)
                if finite.any():
                    i = int(np.flatnonzero(finite)[-1])
                    if not b.timestamps[i] < self._last[row, 0]:
                        self._last[row] = (b.timestamps[i], b.values[i])
            for fc in forecasts:
                if isinstance(fc, Forecast):
                    self._record_one(fc)
                else:
                    self._record_rows(fc)

    def _record_one(self, fc: Forecast) -> None:
        row = self._row(fc.key)
        qs = list(fc.quantiles)
        for j, h in enumerate(self.horizons):
            if h > fc.horizon:
                continue
            slot = np.array([round((fc.origin + h * fc.step_seconds) / self.step_seconds)], dtype=np.int64)
            pos = self._claim(np.array([row]), slot)[0]
            lo = fc.quantiles[qs[0]][h - 1] if qs else np.nan
            hi = fc.quantiles[qs[-1]][h - 1] if qs else np.nan
            self._fc[row, j, :, pos] = (fc.point[h - 1], lo, hi)

    def _record_rows(self, rows_: object) -> None:
        keys: Sequence[SeriesKey] = rows_.keys  # type: ignore[attr-defined]
        if not keys:
            return
        origin: np.ndarray = rows_.origin  # type: ignore[attr-defined]
        point: np.ndarray = rows_.point  # type: ignore[attr-defined]
        lower: np.ndarray = rows_.lower  # type: ignore[attr-defined]
        upper: np.ndarray = rows_.upper  # type: ignore[attr-defined]
        banded: np.ndarray = rows_.banded  # type: ignore[attr-defined]
        step: float = rows_.step_seconds  # type: ignore[attr-defined]
        rows = np.fromiter((self._row(k) for k in keys), dtype=np.int64, count=len(keys))
        for j, h in enumerate(self.horizons):
            if h > point.shape[1]:
                continue
            slots = np.rint((origin + h * step) / self.step_seconds).astype(np.int64)
            pos = self._claim(rows, slots)
            self._fc[rows, j, 0, pos] = point[:, h - 1]
            self._fc[rows, j, 1, pos] = np.where(banded, lower[:, h - 1], np.nan)
            self._fc[rows, j, 2, pos] = np.where(banded, upper[:, h - 1], np.nan)

    def drop(self, keys: Iterable[SeriesKey]) -> None:
        """Forget series that left."""
        with self._lock:
            for key in keys:
                row = self._rows.pop(key, None)
                if row is None:
                    continue
                self._slots[row] = _EMPTY
                self._actual[row] = np.nan
                self._fc[row] = np.nan
                self._last[row] = np.nan
                self._free.append(row)

    # -- reading (any thread) -------------------------------------------------------------------

    def keys(self) -> list[SeriesKey]:
        with self._lock:
            return sorted(self._rows)

    def latest(self) -> dict[SeriesKey, tuple[float, float]]:
        """The newest sample of every series: (time, value)."""
        with self._lock:
            last = self._last.copy()
            rows = dict(self._rows)
        return {k: (float(last[r, 0]), float(last[r, 1])) for k, r in rows.items() if np.isfinite(last[r, 0])}

    def query(self, key: SeriesKey, start: float, end: float) -> SeriesHistory | None:
        """What is known of ``key`` at the sample times in [start, end]; None: an unknown series."""
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return None
            slots = self._slots[row].copy()
            actual = self._actual[row].copy()
            fc = self._fc[row].copy()
        times = slots.astype(np.float64) * self.step_seconds
        held = (slots != _EMPTY) & (times >= start) & (times <= end)
        order = np.argsort(slots[held], kind="stable")
        idx = np.flatnonzero(held)[order]
        forecasts = {
            h: (fc[j, 0, idx].astype(np.float64), fc[j, 1, idx].astype(np.float64), fc[j, 2, idx].astype(np.float64))
            for j, h in enumerate(self.horizons)
        }
        return SeriesHistory(key, self.step_seconds, times[idx], actual[idx].astype(np.float64), forecasts)
