"""Least squares for an autoregression with extra regressors, from exponentially weighted moments.

The next normalised change ``u_t`` is regressed on the last ``p`` changes and ``f``
other features. Recursive least squares would keep a ``k x k`` matrix per series and
touch all of it at every sample; with 100,000 series that is most of a step's time.
Here the lag block of the normal equations has the Yule-Walker structure (the
covariance of ``u_{t-i}`` and ``u_{t-j}`` depends on ``|i - j|`` only), so per sample
only ``p + 1`` autocovariances, the ``p x f`` lag-feature cross moments and the small
``f x f`` feature block are updated: ``O(p f)`` instead of ``O((p + f)^2)``. The
normal equations, with a ridge, are solved now and then (every ``refit`` samples per
series) by a Cholesky factorisation vectorised over series.

The state lives in its owner's slot arrays (see :mod:`models.slots`); :class:`LagMoments`
is the arithmetic over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.slots import FieldSpec, Index, SlotArrays


@dataclass(frozen=True, slots=True)
class LagMoments:
    """Moments of ``(u_t, u_{t-1..t-p}, features)`` and the least-squares weights they imply.

    >>> from models.slots import SLOT0
    >>> lm = LagMoments(p=2, features=1, rate=0.001, ridge=1e-3)
    >>> state = SlotArrays(lm.fields(), capacity=1)
    >>> rng = np.random.default_rng(0)
    >>> u = np.zeros(3000)
    >>> for t in range(2, 3000):  # an AR(2): u_t = 0.5 u_{t-1} - 0.3 u_{t-2} + noise
    ...     u[t] = 0.5 * u[t - 1] - 0.3 * u[t - 2] + rng.normal()
    ...     lags, const = np.array([[u[t - 1], u[t - 2]]]), np.ones((1, 1))
    ...     lm.learn(state, SLOT0, np.array([t]), lags, const, u[t : t + 1])
    >>> np.round(lm.solve(state, SLOT0)[0, :2], 1).tolist()
    [0.5, -0.3]
    """

    p: int  # lags of the target
    features: int  # other regressors
    rate: float  # weight of a new sample in the moments (1 - forgetting factor)
    ridge: float  # added to the diagonal of the normal equations (the moments are means, not sums)

    @property
    def k(self) -> int:
        return self.p + self.features

    def fields(self) -> dict[str, FieldSpec]:
        """The per-series state: autocovariances, lag-feature and feature moments, and the target's."""
        p, f, f4 = self.p, self.features, np.float32
        return {
            "acov": FieldSpec((p + 1,), f4, 0.0),  # E[u_t u_{t-l}], l = 0..p
            "cross": FieldSpec((p, f), f4, 0.0),  # E[u_{t-1-i} x_j]
            "ff": FieldSpec((f, f), f4, 0.0),  # E[x_i x_j]
            "fu": FieldSpec((f,), f4, 0.0),  # E[x_j u_t]
        }

    def learn(self, s: SlotArrays, idx: Index, n: np.ndarray, lags: np.ndarray, x: np.ndarray, u: np.ndarray) -> None:
        """One sample per series: ``u`` [series] after ``lags`` [series, p] (newest first) and features ``x``.

        ``n`` is the number of samples each series has learnt before: the first ones weigh
        as a running mean does, later ones ``rate``.
        """
        a = np.maximum(self.rate, 1.0 / (n + 1.0)).astype(np.float32)[:, None]
        u = u.astype(np.float32)[:, None]
        acov = s["acov"][idx]
        acov[:, :1] += a * (u * u - acov[:, :1])
        acov[:, 1:] += a * (u * lags - acov[:, 1:])
        cross, ff, fu = s["cross"][idx], s["ff"][idx], s["fu"][idx]
        cross += a[:, :, None] * (lags[:, :, None] * x[:, None, :] - cross)
        ff += a[:, :, None] * (x[:, :, None] * x[:, None, :] - ff)
        fu += a * (x * u - fu)
        if not isinstance(idx, slice):  # gathered copies: write them back
            s["acov"][idx], s["cross"][idx], s["ff"][idx], s["fu"][idx] = acov, cross, ff, fu

    def normal_equations(self, s: SlotArrays, slots: Index) -> tuple[np.ndarray, np.ndarray]:
        """``A w = b`` for each series: ``A`` [series, k, k] (with the ridge), ``b`` [series, k], in float64."""
        p, k = self.p, self.k
        acov = s["acov"][slots].astype(np.float64)
        cross = s["cross"][slots].astype(np.float64)
        m = len(acov)
        a = np.empty((m, k, k))
        toeplitz = np.abs(np.arange(p)[:, None] - np.arange(p)[None, :])
        a[:, :p, :p] = acov[:, toeplitz]
        a[:, :p, p:] = cross
        a[:, p:, :p] = cross.transpose(0, 2, 1)
        a[:, p:, p:] = s["ff"][slots]
        a[:, np.arange(k), np.arange(k)] += self.ridge
        b = np.concatenate([acov[:, 1:], s["fu"][slots].astype(np.float64)], axis=1)
        return a, b

    def solve(self, s: SlotArrays, slots: Index) -> np.ndarray:
        """The ridge least-squares weights [series, k] (lags first, then features)."""
        a, b = self.normal_equations(s, slots)
        return solve_spd(a, b)


def solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a[i] x[i] = b[i]`` for symmetric positive definite ``a`` [m, k, k], by Cholesky, vectorised over m.

    A system that is not positive definite (a pivot at or below 1e-12 of its diagonal's
    scale) gets a zero solution: the caller's "no information" answer.

    >>> a = np.array([[[4.0, 2.0], [2.0, 3.0]]])
    >>> np.round(solve_spd(a, np.array([[2.0, 1.0]])), 6).tolist()
    [[0.5, 0.0]]
    """
    m, k = b.shape
    low = np.zeros_like(a)
    scale = np.maximum(np.abs(np.einsum("mii->mi", a)).max(axis=1), 1e-300)
    ok = np.ones(m, dtype=bool)
    for j in range(k):
        row = low[:, j, :j]
        pivot = a[:, j, j] - np.einsum("mi,mi->m", row, row)
        ok &= pivot > 1e-12 * scale
        d = np.sqrt(np.where(ok, pivot, 1.0))
        low[:, j, j] = d
        if j + 1 < k:
            below = a[:, j + 1 :, j] - np.einsum("mri,mi->mr", low[:, j + 1 :, :j], row)
            low[:, j + 1 :, j] = below / d[:, None]
    z = np.empty_like(b)
    for j in range(k):
        z[:, j] = (b[:, j] - np.einsum("mi,mi->m", low[:, j, :j], z[:, :j])) / low[:, j, j]
    x = np.empty_like(b)
    for j in reversed(range(k)):
        x[:, j] = (z[:, j] - np.einsum("mi,mi->m", low[:, j + 1 :, j], x[:, j + 1 :])) / low[:, j, j]
    x[~(ok & np.isfinite(x).all(axis=1))] = 0.0
    return x
