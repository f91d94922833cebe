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
    ...     lags, const = np.array([[u[t - 1]], [u[t - 2]]]), np.ones((1, 1))
    ...     lm.learn(state, SLOT0, np.array([t]), lags, const, u[t : t + 1])
    >>> np.round(lm.solve(state, SLOT0)[:2, 0], 1).tolist()
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
        """One sample per series: ``u`` [series] after ``lags`` [p, series] (newest first), features ``x`` [f, series].

        ``n`` is the number of samples each series has learnt before: the first ones weigh
        as a running mean does, later ones ``rate``.
        """
        a = np.maximum(self.rate, 1.0 / (n + 1.0)).astype(np.float32)
        keep = 1.0 - a
        u = u.astype(np.float32)
        au = a * u
        acov, cross, ff, fu = s["acov"][..., idx], s["cross"][..., idx], s["ff"][..., idx], s["fu"][..., idx]
        acov *= keep
        acov[0] += au * u
        acov[1:] += au * lags
        cross *= keep
        cross += (a * lags)[:, None, :] * x[None, :, :]
        ax = a * x
        ff *= keep
        ff += ax[:, None, :] * x[None, :, :]
        fu *= keep
        fu += ax * u
        if not isinstance(idx, slice):  # gathered copies: write them back
            s["acov"][..., idx], s["cross"][..., idx], s["ff"][..., idx], s["fu"][..., idx] = acov, cross, ff, fu

    def normal_equations(self, s: SlotArrays, slots: Index) -> tuple[np.ndarray, np.ndarray]:
        """``A w = b`` for each series: ``A`` [k, k, series] (with the ridge), ``b`` [k, series], in float64."""
        p, k = self.p, self.k
        acov = s["acov"][:, slots].astype(np.float64)  # [p + 1, series]
        cross = s["cross"][..., slots]  # [p, f, series]
        a = np.empty((k, k, acov.shape[1]))
        a[:p, :p] = acov[np.abs(np.arange(p)[:, None] - np.arange(p)[None, :])]  # Toeplitz: rows are contiguous
        a[:p, p:] = cross
        a[p:, :p] = cross.transpose(1, 0, 2)
        a[p:, p:] = s["ff"][..., slots]
        a[np.arange(k), np.arange(k)] += self.ridge
        b = np.concatenate([acov[1:], s["fu"][:, slots]])
        return a, b

    def solve(self, s: SlotArrays, slots: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """The ridge least-squares weights [k, series] (lags first, then features), ``chunk`` series at a time."""
        out = np.empty((self.k, len(slots)))
        for start in range(0, len(slots), chunk):
            part = slots[start : start + chunk]
            out[:, start : start + len(part)] = solve_spd(*self.normal_equations(s, part))
        return out


def solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``a[:, :, i] x[:, i] = b[:, i]`` for symmetric ``a`` [k, k, m], by Cholesky, vectorised over m.

    Every operation runs on rows of m values, so a system's solution never depends on
    the others in the batch (a fleet computes what single series compute), and there is
    no per-system overhead. The lag block's Yule-Walker approximation can make a system
    slightly indefinite: such a system is solved again with its diagonal loaded by a
    tenth of its mean (a stronger ridge); one that is still not positive definite, or
    whose solution is not finite, gets a zero solution: the caller's "no information".

    >>> a = np.array([[[4.0, 2.0], [2.0, 3.0]], [[1.0, 2.0], [2.0, 1.0]]]).transpose(1, 2, 0)  # 2nd: indefinite
    >>> np.round(solve_spd(a, np.array([[2.0, 1.0], [1.0, 1.0]]).T), 6).T.tolist()
    [[0.5, 0.0], [0.0, 0.0]]
    """
    k = b.shape[0]
    low, ok = _cholesky(a)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        loaded = a[..., bad].copy()
        loaded[np.arange(k), np.arange(k)] *= 1.1  # + a tenth of each diagonal entry
        low[..., bad], ok[bad] = _cholesky(loaded)
    with np.errstate(all="ignore"):  # near-singular systems overflow here: they are zeroed below
        z = np.empty_like(b)
        for j in range(k):
            z[j] = (b[j] - (low[j, :j] * z[:j]).sum(axis=0)) / low[j, j]
        x = np.empty_like(b)
        for j in reversed(range(k)):
            x[j] = (z[j] - (low[j + 1 :, j] * x[j + 1 :]).sum(axis=0)) / low[j, j]
    x[:, ~(ok & np.isfinite(x).all(axis=0))] = 0.0
    return x


def _cholesky(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of ``a`` [k, k, m] and which systems are positive definite (others: identity)."""
    k, m = a.shape[0], a.shape[2]
    low = np.zeros_like(a)
    scale = np.abs(a[np.arange(k), np.arange(k)]).max(axis=0)
    ok = np.ones(m, dtype=bool)
    with np.errstate(all="ignore"):  # a system that overflows is not positive definite: marked below
        for j in range(k):
            row = low[j, :j]
            pivot = a[j, j] - (row * row).sum(axis=0)
            ok &= pivot > 1e-12 * scale
            d = np.sqrt(np.where(ok, pivot, 1.0))
            low[j, j] = d
            if j + 1 < k:
                low[j + 1 :, j] = (a[j + 1 :, j] - (low[j + 1 :, :j] * row).sum(axis=1)) / d
        ok &= np.isfinite(low).all(axis=(0, 1))
    low[..., ~ok] = np.eye(k)[..., None]
    return low, ok
