"""Probes and clusters: ``/healthz`` (liveness, with the health report), ``/readyz``, ``/v1/clusters``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from api.deps import AUTH_ERRORS, CallerDep, ServiceDep
from api.schemas import ClusterHealthOut, ClusterOut, ComponentHealth, HealthOut, ReadyOut
from intelligence.vocabulary import ClusterHealth, redact_text

router = APIRouter(tags=["health"])


def _health_fields(h: ClusterHealth) -> dict[str, Any]:
    return {
        "cluster": h.cluster,
        "tier": h.tier.value,
        "state": h.state.value,
        "last_success": datetime.fromtimestamp(h.last_success, UTC) if h.last_success else None,
        "last_error": redact_text(h.last_error) if h.last_error else None,
        "latency_seconds": h.latency_seconds,
        "series": h.series,
    }


def _at(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


@router.get(
    "/healthz",
    response_model=HealthOut,
    summary="Liveness (always 200 while the process serves), with the health of every dependency",
)
def healthz(service: ServiceDep) -> HealthOut:
    report = service.health()
    engine = report.engine
    return HealthOut(
        status=report.status,
        time_basis=service.time_basis,
        mode=service.mode,
        embedded=service.embedded,
        engine={
            "steps": engine.steps,
            "samples": engine.samples,
            "series": engine.series,
            "last_step_at": _at(engine.last_step_at),
            "last_step_seconds": round(engine.last_step_seconds, 6),
            "last_error": redact_text(engine.last_error) if engine.last_error else None,
            "shard": engine.shard,
            "leader": engine.leader,
        },
        clusters=[ClusterHealthOut(**_health_fields(h)) for h in report.clusters],
        mlflow=ComponentHealth(state=report.mlflow.state, detail=report.mlflow.detail),
        model_registry=ComponentHealth(state=report.model_registry.state, detail=report.model_registry.detail),
        champions=dict(report.champions),
    )


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Readiness: 503 while starting (no engine step yet) or when no cluster answers",
    responses={503: {"model": ReadyOut, "description": "Not ready: starting, or no cluster answers"}},
)
def readyz(service: ServiceDep, response: Response) -> ReadyOut:
    r = service.readiness()
    if not r.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ReadyOut(ready=r.ready, reason=r.reason, clusters=r.clusters, answering=r.answering)


@router.get("/v1/clusters", response_model=list[ClusterOut], summary="The clusters of the continuum and their health")
def clusters(service: ServiceDep) -> list[ClusterOut]:
    return [
        ClusterOut(**_health_fields(c.health), url=c.url, labels=c.labels, capacity_cores=c.capacity_cores)
        for c in service.clusters()
    ]


class WhoAmI(BaseModel):
    name: str = Field(description="The caller's name: what approvals, rejections and switches are recorded as")


@router.get("/v1/whoami", response_model=WhoAmI, summary="Who the bearer token stands for", responses={**AUTH_ERRORS})
def whoami(caller: CallerDep) -> WhoAmI:
    return WhoAmI(name=caller.name)
