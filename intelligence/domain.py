"""Domain types shared by every layer.

Frozen, typed, and free of I/O. Pydantic lives only at the HTTP and settings
boundaries; these are plain dataclasses so that models and collectors can use
them on hot paths without validation cost.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


class Tier(enum.StrEnum):
    """Where a cluster sits in the continuum."""

    CLOUD = "cloud"
    FOG = "fog"
    EDGE = "edge"


class Mode(enum.StrEnum):
    """How far the service may go for a namespace or workload."""

    OBSERVE = "observe"  # compute decisions, keep nothing but the audit trail
    RECOMMEND = "recommend"  # publish recommendations, never act
    APPROVE = "approve"  # queue for a person or the remediation loop
    ENACT = "enact"  # act through the meta-kernel adapters


class ActionKind(enum.StrEnum):
    """Remediation types, named as the ICOS job manager names them."""

    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    SCALE_OUT = "scale-out"
    SCALE_IN = "scale-in"
    PATCH = "patch"
    REALLOCATION = "reallocation"


class RecommendationStatus(enum.StrEnum):
    OPEN = "open"
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    REJECTED = "rejected"
    ENACTED = "enacted"
    EXPIRED = "expired"
    FAILED = "failed"  # enacting was refused by the API, or abandoned after a crash (see the audit log)


def _frozen_labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """Identity of one time series: (cluster, signal, workload labels).

    Hashable and stable across processes (labels are kept sorted), so it can be
    used as a dict key, a shard key and a checkpoint key.

    >>> k = SeriesKey.of("edge-1", "requests", {"workload": "ingest", "namespace": "iot"})
    >>> k.label("namespace"), str(k)
    ('iot', 'edge-1/requests{namespace="iot",workload="ingest"}')
    """

    cluster: str
    signal: str
    labels: tuple[tuple[str, str], ...] = ()

    def __deepcopy__(self, memo: dict[int, object]) -> SeriesKey:
        return self  # immutable: copies of model state share their keys

    @classmethod
    def of(cls, cluster: str, signal: str, labels: Mapping[str, str] | None = None) -> SeriesKey:
        return cls(cluster, signal, _frozen_labels(labels or {}))

    def label(self, name: str, default: str = "") -> str:
        for key, value in self.labels:
            if key == name:
                return value
        return default

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def workload(self) -> WorkloadRef:
        return WorkloadRef(self.cluster, self.label("namespace"), self.label("workload"))

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.cluster}/{self.signal}{{{inner}}}"


@dataclass(frozen=True, slots=True, order=True)
class WorkloadRef:
    """A workload in one cluster: what an action targets."""

    cluster: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation of a series. ``timestamp`` is epoch seconds (UTC)."""

    timestamp: float
    value: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """Forecast of one series made at ``origin`` (epoch seconds).

    ``point[k]`` forecasts ``origin + (k + 1) * step_seconds``; ``quantiles``
    maps a probability (e.g. 0.05, 0.95) to a tuple as long as ``point``.
    ``surge`` (empty when the model has none) is what to provision for: the point plus
    the sudden rises recently seen at that time of day. Not a calibrated quantile.
    """

    key: SeriesKey
    origin: float
    step_seconds: float
    point: tuple[float, ...]
    quantiles: Mapping[float, tuple[float, ...]] = field(default_factory=dict)
    model: str = ""
    surge: tuple[float, ...] = ()

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


@dataclass(frozen=True, slots=True)
class Explanation:
    """The audit record of a decision: inputs, the rule that fired, what was rejected."""

    rule: str
    summary: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    rejected: tuple[str, ...] = ()
    expected_effect: str = ""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A proposed action with its target, evidence and confidence.

    ``params`` holds explicit targets (e.g. ``{"min_scale": 4}``), never
    relative steps, so the ICOS job manager can apply it as is.
    """

    kind: ActionKind
    target: WorkloadRef
    params: Mapping[str, Any]
    created_at: datetime
    confidence: float
    explanation: Explanation
    valid_until: datetime | None = None

    @property
    def dedup_key(self) -> str:
        """Recommendations with the same key replace one another (a scale-down supersedes a scale-up)."""
        return recommendation_key(self.target, self.params)


@dataclass(frozen=True, slots=True)
class Action:
    """A recommendation that was enacted or refused, with its outcome."""

    recommendation_id: int
    mode: Mode
    outcome: str
    at: datetime
    detail: str = ""


def recommendation_key(target: WorkloadRef, params: Mapping[str, Any]) -> str:
    """What a recommendation is about: its target and the parameters it sets."""
    return f"{target}:{','.join(sorted(params))}"
