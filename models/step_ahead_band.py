"""A forecaster's band per step ahead, tracked online from the errors of its own past forecasts.

The errors are normalised by the series' spread (so the band transfers between similar
series at a cold start). While a step ahead has fewer than ``min_errors`` errors its
edges are ``±z`` times the mean |error| (``z`` the normal quantile of the interval,
widened by a quarter); then each error nudges each edge towards its quantile
(stochastic quantile tracking, with a step of ``rate`` times the mean |error|). No ring
of past errors: three numbers per step ahead and series.

The state lives in its owner's slot arrays (see :mod:`models.slots`); :class:`StepAheadBand`
is the arithmetic over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from models.slots import FieldSpec, Index, SlotArrays


@dataclass(frozen=True, slots=True)
class StepAheadBand:
    """Band edges for ``horizon`` steps ahead, in units of the series' spread (arrays ``[step ahead, slot]``).

    >>> from models.slots import SLOT0
    >>> band = StepAheadBand(horizon=1, interval=0.8, rate=0.3, min_errors=5)
    >>> state = SlotArrays(band.fields(), capacity=1)
    >>> for e in np.random.default_rng(0).normal(0.0, 1.0, 5000):  # errors of N(0, 1): edges near -1.28, 1.28
    ...     band.track(state, SLOT0, np.array([[e]], np.float32), np.array([[True]]))
    >>> lo, hi = band.offsets(state, SLOT0, 1, scale=np.ones(1))
    >>> bool(-1.5 < lo[0, 0] < -1.1 and 1.1 < hi[0, 0] < 1.5)
    True
    """

    horizon: int
    interval: float  # the share of samples the band should hold
    rate: float  # step of the quantile tracking, in mean |error|
    min_errors: int  # errors a step ahead needs before its band is known

    def fields(self) -> dict[str, FieldSpec]:
        """The per-series state: edges, error count and mean |error| per step ahead."""
        h, f4 = self.horizon, np.float32
        return {
            "q_lo": FieldSpec((h,), f4, 0.0),  # band edges per step ahead, in units of spread
            "q_hi": FieldSpec((h,), f4, 0.0),
            "err_n": FieldSpec((h,), f4, 0.0),
            "err_abs": FieldSpec((h,), f4, 0.0),  # mean |normalised error| per step ahead
        }

    def track(self, s: SlotArrays, idx: Index, e: np.ndarray, valid: np.ndarray) -> None:
        """Learn the normalised errors ``e`` ``[step ahead, series]`` where ``valid`` (0 elsewhere)."""
        n, mean_abs = s["err_n"][:, idx], s["err_abs"][:, idx]  # views when idx is a slice
        lo, hi = s["q_lo"][:, idx], s["q_hi"][:, idx]
        all_valid = bool(valid.all())
        rate = np.maximum(1.0 / (n + np.float32(1.0)), np.float32(0.01))
        if not all_valid:
            rate *= valid
        mean_abs += rate * (np.abs(e) - mean_abs)
        tail = np.float32((1.0 - self.interval) / 2.0)
        lr = np.float32(self.rate) * np.maximum(mean_abs, np.float32(1e-9))
        if not all_valid:
            lr *= valid
        lo += lr * (tail - (e < lo))
        hi += lr * ((e > hi) - tail)
        warm = n < self.min_errors
        if warm.any():  # normal quantiles from the mean |error| until enough errors were seen
            warm &= valid
            z = np.float32(float(ndtri(1.0 - tail)) * 1.25)
            lo[warm], hi[warm] = -z * mean_abs[warm], z * mean_abs[warm]
        n += valid
        if not isinstance(idx, slice):  # gathered copies: write them back
            s["err_n"][:, idx], s["err_abs"][:, idx], s["q_lo"][:, idx], s["q_hi"][:, idx] = n, mean_abs, lo, hi

    def offsets(self, s: SlotArrays, idx: Index, horizon: int, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offsets ``[horizon, len(idx)]`` to add to the point forecasts, times ``scale`` ``[len(idx)]``.

        NaN while too few errors; beyond the tracked horizon the last band widens with sqrt(h).
        """
        used = min(horizon, self.horizon)
        ok = s["err_n"][:used, idx] >= self.min_errors
        lo = s["q_lo"][:used, idx] * scale
        hi = s["q_hi"][:used, idx] * scale
        lo[~ok] = np.nan
        hi[~ok] = np.nan
        if horizon > used:
            widen = np.sqrt(np.arange(used + 1, horizon + 1) / used)[:, None]
            lo = np.concatenate([lo, lo[-1:] * widen])
            hi = np.concatenate([hi, hi[-1:] * widen])
        return lo, hi
