"""The model contract, in river's shape: predict or score first, then learn.

Hyper-parameters are exactly the constructor arguments (scikit-learn style: no
logic in ``__init__`` beyond storing them; learnt state is created lazily and
ends in ``_``), so :func:`clone` rebuilds an untrained twin from ``get_params``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True)
class PointForecast:
    """``point``, ``lower`` and ``upper`` have one entry per step ahead (NaN: cannot tell yet)."""

    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def clipped(self, non_negative: bool) -> PointForecast:
        """Points and band edges at 0 or above when the signal cannot go negative (NaN stays NaN)."""
        if not non_negative:
            return self
        return PointForecast(*(np.maximum(a, 0.0) for a in (self.point, self.lower, self.upper)))


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the forecaster expected for the sample being scored (one step ahead)."""

    value: float
    lower: float
    upper: float

    def clipped(self, non_negative: bool) -> Expectation:
        """The expectation at 0 or above when the signal cannot go negative (NaN stays NaN)."""
        if not non_negative:
            return self
        return Expectation(*(v if v != v else max(v, 0.0) for v in (self.value, self.lower, self.upper)))


class Params:
    """``get_params`` / ``clone`` for classes whose constructor arguments are their params."""

    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters if name != "self"}

    def clone(self, **overrides: Any) -> Self:
        """An untrained twin with the same (or overridden) hyper-parameters."""
        return type(self)(**{**self.get_params(), **overrides})


@runtime_checkable
class Forecaster(Protocol):
    """Online forecaster of one series sampled every ``step_seconds``."""

    def learn_one(self, t: float, y: float) -> None:
        """Learn the sample (t, y); NaN values and out-of-order timestamps are ignored."""

    def forecast(self, horizon: int) -> PointForecast:
        """Forecast the ``horizon`` steps after the last learnt sample."""
        ...

    def expect(self, t: float) -> Expectation | None:
        """What the model expects at time ``t`` (after the last learnt sample), if it can tell."""
        ...

    def get_params(self) -> dict[str, Any]: ...

    def clone(self, **overrides: Any) -> Self: ...


@runtime_checkable
class Detector(Protocol):
    """Online anomaly detector: ``score_one`` before ``learn_one``."""

    def score_one(self, t: float, y: float, expected: Expectation | None) -> tuple[float, str]:
        """Score in [0, 1] (higher is more anomalous) and a one-line reason."""
        ...

    def learn_one(self, t: float, y: float, expected: Expectation | None) -> None: ...

    def get_params(self) -> dict[str, Any]: ...

    def clone(self, **overrides: Any) -> Self: ...
