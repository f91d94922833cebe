"""Response schemas: the HTTP contract. Domain types are converted here, never exposed.

Every value says its unit (``unit``: the signal's, from the settings); every time is UTC
(``...Z``), on the service's clock: simulated in the embedded default, as the header
``X-ICOS-Time-Basis`` and ``/healthz``'s ``time_basis`` say.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, Field

from intelligence.runtime.history import SeriesHistory
from intelligence.storage.recommendations import StoredRecommendation
from intelligence.vocabulary import AnomalyScore, Forecast


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


class ErrorOut(BaseModel):
    detail: str | list[Any] = Field(description="What went wrong")


class SeriesRef(BaseModel):
    cluster: str
    signal: str
    labels: dict[str, str]
    id: str = Field(description="Stable text form of the series key")


class ForecastPoint(BaseModel):
    timestamp: datetime
    step: int = Field(description="Steps ahead of the origin, from 1")
    value: float | None = Field(description="The point forecast, in the series' unit (null: not a number)")
    lower: float | None = Field(None, description="Lower edge of the prediction band")
    upper: float | None = Field(None, description="Upper edge of the prediction band")
    surge: float | None = Field(
        None, description="What the Knative floor provisions for: the point plus recent sudden rises at that time"
    )


class ForecastOut(BaseModel):
    series: SeriesRef
    unit: str = Field(description="Unit of every value, e.g. cores, bytes, requests/s ('' when not configured)")
    origin: datetime = Field(description="Time of the last sample the forecast was made from")
    step_seconds: float
    model: str
    interval: list[float] | None = Field(None, description="Probabilities of the band's edges, e.g. [0.05, 0.95]")
    points: list[ForecastPoint]

    @classmethod
    def of(cls, fc: Forecast, unit: str = "") -> ForecastOut:
        qs = list(fc.quantiles)
        lo = fc.quantiles[qs[0]] if qs else None
        hi = fc.quantiles[qs[-1]] if qs else None
        points = [
            ForecastPoint(
                timestamp=_iso(t),
                step=k + 1,
                value=_finite(fc.point[k]),
                lower=_finite(lo[k]) if lo else None,
                upper=_finite(hi[k]) if hi else None,
                surge=_finite(fc.surge[k]) if fc.surge else None,
            )
            for k, t in enumerate(fc.timestamps())
        ]
        return cls(
            series=series_ref(fc.key),
            unit=unit,
            origin=_iso(fc.origin),
            step_seconds=fc.step_seconds,
            model=fc.model,
            interval=[qs[0], qs[-1]] if qs else None,
            points=points,
        )


@lru_cache(maxsize=16_384)
def _z(ts: float) -> str:
    """A time as JSON gives it (``...Z``); every series of a step shares its times, hence the cache."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def forecast_json(fc: Forecast, unit: str = "") -> dict[str, Any]:
    """``ForecastOut.of(fc, unit)`` as plain data for orjson (which writes NaN and infinities as null), built
    without a model per point: the hot path of ``/v1/forecasts``. A test keeps it equal to the model."""
    n = len(fc.point)
    qs = list(fc.quantiles)
    none = (None,) * n
    lo = fc.quantiles[qs[0]] if qs else none
    hi = fc.quantiles[qs[-1]] if qs else none
    surge = fc.surge or none
    origin, step = fc.origin, fc.step_seconds
    return {
        "series": {"cluster": fc.key.cluster, "signal": fc.key.signal, "labels": fc.key.label_dict, "id": str(fc.key)},
        "unit": unit,
        "origin": _z(origin),
        "step_seconds": step,
        "model": fc.model,
        "interval": [qs[0], qs[-1]] if qs else None,
        "points": [
            {"timestamp": _z(origin + k * step), "step": k, "value": v, "lower": lw, "upper": up, "surge": sg}
            for k, v, lw, up, sg in zip(range(1, n + 1), fc.point, lo, hi, surge, strict=True)
        ],
    }


class ForecastJsonCache:
    """The JSON of each forecast, kept until the next one of its series: a forecast is made once per engine step
    and read by every request until the next, so a request for 100 series joins 100 ready fragments."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._fragments: dict[tuple[Any, ...], bytes] = {}

    def fragment(self, fc: Forecast, unit: str) -> bytes:
        key = (fc.key, fc.origin, fc.model, len(fc.point), unit)
        found = self._fragments.get(key)
        if found is None:
            if len(self._fragments) >= self.limit:
                self._fragments = {}  # older forecasts' fragments go with them
            found = self._fragments[key] = orjson.dumps(forecast_json(fc, unit))
        return found

    def list(self, forecasts: list[Forecast], units: dict[str, str]) -> bytes:
        return b"[" + b",".join(self.fragment(fc, units.get(fc.key.signal, "")) for fc in forecasts) + b"]"


class HorizonHistory(BaseModel):
    horizon: int = Field(description="Steps ahead: each value was forecast this many steps before its time")
    horizon_seconds: float
    value: list[float | None]
    lower: list[float | None]
    upper: list[float | None]
    mae: float | None = Field(description="Mean absolute error over the range, in the series' unit")
    coverage: float | None = Field(description="Share of the samples inside the band, over the range")
    scored: int = Field(description="Samples with both a value and a forecast in the range")


class HistoryOut(BaseModel):
    series: SeriesRef
    unit: str
    step_seconds: float
    timestamps: list[datetime] = Field(description="Sample times in the range, ascending")
    actual: list[float | None] = Field(description="What happened at each time (null: no sample)")
    forecasts: list[HorizonHistory]

    @classmethod
    def of(cls, h: SeriesHistory, unit: str) -> HistoryOut:
        def col(a: Any) -> list[float | None]:
            return [_finite(v) for v in a.tolist()]

        horizons = []
        for horizon, (value, lower, upper) in h.forecasts.items():
            acc = h.accuracy(horizon)
            horizons.append(
                HorizonHistory(
                    horizon=horizon,
                    horizon_seconds=horizon * h.step_seconds,
                    value=col(value),
                    lower=col(lower),
                    upper=col(upper),
                    mae=_finite(acc.mae),
                    coverage=_finite(acc.coverage),
                    scored=acc.scored,
                )
            )
        return cls(
            series=series_ref(h.key),
            unit=unit,
            step_seconds=h.step_seconds,
            timestamps=[_iso(t) for t in h.timestamps.tolist()],
            actual=col(h.actual),
            forecasts=horizons,
        )


def series_ref(key: Any) -> SeriesRef:
    return SeriesRef(cluster=key.cluster, signal=key.signal, labels=key.label_dict, id=str(key))


class AnomalyOut(BaseModel):
    series: SeriesRef
    unit: str = Field(description="Unit of observed, expected, lower and upper")
    timestamp: datetime
    score: float = Field(ge=0.0, le=1.0, description="Anomaly score, higher is more anomalous (no unit)")
    model: str
    observed: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    detail: str

    @classmethod
    def of(cls, a: AnomalyScore, unit: str = "") -> AnomalyOut:
        r = a.reason
        return cls(
            series=series_ref(a.key),
            unit=unit,
            timestamp=_iso(a.timestamp),
            score=a.score,
            model=r.model,
            observed=_finite(r.observed),
            expected=_finite(r.expected),
            lower=_finite(r.lower),
            upper=_finite(r.upper),
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


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    event: str = Field(description="recommended, approved, rejected, enacted, failed, kill-switch-on, drained, ...")
    recommendation_id: int | None
    detail: dict[str, Any] = Field(description="What was decided or done, and by whom ('by': the caller's name)")


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


class ReadyOut(BaseModel):
    ready: bool
    reason: str
    clusters: int
    answering: int = Field(description="Clusters whose last pull got an answer (up, degraded or stale)")


class HealthOut(BaseModel):
    status: str = Field(description="ok, degraded or starting")
    time_basis: str = Field(
        description="simulated (the embedded continuum: its clock runs faster than real time), replayed or real"
    )
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
