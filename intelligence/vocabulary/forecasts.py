"""What the models say about a series: forecasts with their bands, anomaly scores with their reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from intelligence.vocabulary.series import SeriesKey


@dataclass(frozen=True, slots=True)
class Forecast:
    """Forecast of one series made at ``origin`` (epoch seconds).

    ``point[k]`` forecasts ``origin + (k + 1) * step_seconds``; ``quantiles``
    maps a probability (e.g. 0.05, 0.95) to a tuple as long as ``point``.
    ``surge`` (empty when the model has none) is what to provision for: the point plus
    the sudden rises recently seen at that time of day. Not a calibrated quantile.
    ``last`` is the value observed at ``origin`` (what a reactive autoscaler holds pods for now).
    """

    key: SeriesKey
    origin: float
    step_seconds: float
    point: tuple[float, ...]
    quantiles: Mapping[float, tuple[float, ...]] = field(default_factory=dict)
    model: str = ""
    surge: tuple[float, ...] = ()
    last: float | None = None

    def __post_init__(self) -> None:
        if self.surge and len(self.surge) != len(self.point):
            raise ValueError(f"surge of {self.key} has {len(self.surge)} steps, point has {len(self.point)}")
        for q, values in self.quantiles.items():
            if not 0.0 < q < 1.0:
                raise ValueError(f"quantile {q} of {self.key} is outside (0, 1)")
            if len(values) != len(self.point):
                raise ValueError(f"quantile {q} of {self.key} has {len(values)} steps, point has {len(self.point)}")
        object.__setattr__(self, "quantiles", MappingProxyType(dict(sorted(self.quantiles.items()))))

    @property
    def horizon(self) -> int:
        return len(self.point)

    def timestamps(self) -> tuple[float, ...]:
        return tuple(self.origin + (k + 1) * self.step_seconds for k in range(self.horizon))

    def upper(self, q: float = 0.95) -> tuple[float, ...]:
        """The band's upper edge at probability ``q`` (the point if absent)."""
        return tuple(self.quantiles.get(q, self.point))

    def lower(self, q: float = 0.05) -> tuple[float, ...]:
        return tuple(self.quantiles.get(q, self.point))


@dataclass(frozen=True, slots=True)
class AnomalyReason:
    """Why a sample got its score: what was expected and what was seen."""

    model: str
    observed: float
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AnomalyScore:
    """Anomaly score in [0, 1] of one sample of a series; higher is more anomalous."""

    key: SeriesKey
    timestamp: float
    score: float
    reason: AnomalyReason

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"anomaly score {self.score} of {self.key} is outside [0, 1]")
