"""Response schemas: the HTTP contract. Domain types are converted here, never exposed."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from intelligence.storage.recommendations import StoredRecommendation
from intelligence.vocabulary import AnomalyScore, Forecast


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


class SeriesRef(BaseModel):
    cluster: str
    signal: str
    labels: dict[str, str]
    id: str = Field(description="Stable text form of the series key")


class ForecastPoint(BaseModel):
    timestamp: datetime
    step: int = Field(description="Steps ahead of the origin, from 1")
    value: float
    lower: float | None = Field(None, description="Lower edge of the prediction band")
    upper: float | None = Field(None, description="Upper edge of the prediction band")


class ForecastOut(BaseModel):
    series: SeriesRef
    origin: datetime = Field(description="Time of the last sample the forecast was made from")
    step_seconds: float
    model: str
    interval: list[float] | None = Field(None, description="Probabilities of the band's edges, e.g. [0.05, 0.95]")
    points: list[ForecastPoint]

    @classmethod
    def of(cls, fc: Forecast) -> ForecastOut:
        qs = list(fc.quantiles)
        lo = fc.quantiles[qs[0]] if qs else None
        hi = fc.quantiles[qs[-1]] if qs else None
        points = [
            ForecastPoint(
                timestamp=_iso(t),
                step=k + 1,
                value=fc.point[k],
                lower=_finite(lo[k]) if lo else None,
                upper=_finite(hi[k]) if hi else None,
            )
            for k, t in enumerate(fc.timestamps())
        ]
        return cls(
            series=series_ref(fc.key),
            origin=_iso(fc.origin),
            step_seconds=fc.step_seconds,
            model=fc.model,
            interval=[qs[0], qs[-1]] if qs else None,
            points=points,
        )


def series_ref(key: Any) -> SeriesRef:
    return SeriesRef(cluster=key.cluster, signal=key.signal, labels=key.label_dict, id=str(key))


class AnomalyOut(BaseModel):
    series: SeriesRef
    timestamp: datetime
    score: float = Field(ge=0.0, le=1.0)
    model: str
    observed: float
    expected: float | None
    lower: float | None
    upper: float | None
    detail: str

    @classmethod
    def of(cls, a: AnomalyScore) -> AnomalyOut:
        r = a.reason
        return cls(
            series=series_ref(a.key),
            timestamp=_iso(a.timestamp),
            score=a.score,
            model=r.model,
            observed=r.observed,
            expected=r.expected,
            lower=r.lower,
            upper=r.upper,
            detail=r.detail,
        )


class TargetOut(BaseModel):
    cluster: str
    namespace: str
    workload: str


class ExplanationOut(BaseModel):
    rule: str
    summary: str
    inputs: dict[str, Any]
    rejected: list[str]
    expected_effect: str


class RecommendationOut(BaseModel):
    id: int
    status: str
    revision: int = Field(description="1 when opened, +1 each time its value was revised in place")
    kind: str = Field(
        description="ICOS remediation type: scale-up, scale-down, scale-out, scale-in, patch, reallocation"
    )
    lever: str = Field(description="What it sets: knative-floor (min_scale), replicas or placement (cluster)")
    target: TargetOut
    params: dict[str, Any] = Field(description='Explicit target values, e.g. {"min_scale": 4}')
    confidence: float
    created_at: datetime
    updated_at: datetime
    valid_until: datetime | None
    in_force_at: datetime | None = Field(
        None, description="When the value is needed (a warm-up is written then); none: as soon as possible"
    )
    explanation: ExplanationOut

    @classmethod
    def of(cls, s: StoredRecommendation) -> RecommendationOut:
        r = s.recommendation
        e = r.explanation
        return cls(
            id=s.id,
            status=s.status.value,
            revision=s.revision,
            kind=r.kind.value,
            lever=r.lever.value,
            target=TargetOut(cluster=r.target.cluster, namespace=r.target.namespace, workload=r.target.name),
            params=dict(r.params),
            confidence=r.confidence,
            created_at=r.created_at,
            updated_at=s.updated_at,
            valid_until=r.valid_until,
            in_force_at=r.in_force_at,
            explanation=ExplanationOut(
                rule=e.rule,
                summary=e.summary,
                inputs=dict(e.inputs),
                rejected=list(e.rejected),
                expected_effect=e.expected_effect,
            ),
        )


class ClusterHealthOut(BaseModel):
    cluster: str
    tier: str
    state: str
    last_success: datetime | None
    last_error: str | None
    latency_seconds: float | None
    series: int


class ClusterOut(ClusterHealthOut):
    url: str | None = Field(None, description="Prometheus / Thanos endpoint (none for the simulated continuum)")
    labels: dict[str, str] = {}
    capacity_cores: float | None = None


class ComponentHealth(BaseModel):
    state: str
    detail: str = ""


class HealthOut(BaseModel):
    status: str = Field(description="ok, degraded or starting")
    mode: str
    embedded: bool
    engine: dict[str, Any]
    clusters: list[ClusterHealthOut]
    mlflow: ComponentHealth
    model_registry: ComponentHealth = Field(description="the champion watcher: ok, degraded, starting or disabled")
    champions: dict[str, int] = Field(default_factory=dict, description="registered model version run per signal")


class RevisionOut(BaseModel):
    revision: int
    kind: str
    params: dict[str, Any]
    confidence: float
    summary: str
    at: datetime = Field(description="When this value was published")
