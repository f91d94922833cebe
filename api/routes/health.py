from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from api.deps import ServiceDep
from api.schemas import ClusterHealthOut, ClusterOut, ComponentHealth, HealthOut
from intelligence.vocabulary import ClusterHealth

router = APIRouter(tags=["health"])


def _health_fields(h: ClusterHealth) -> dict[str, Any]:
    return {
        "cluster": h.cluster,
        "tier": h.tier.value,
        "state": h.state.value,
        "last_success": datetime.fromtimestamp(h.last_success, UTC) if h.last_success else None,
        "last_error": h.last_error,
        "latency_seconds": h.latency_seconds,
        "series": h.series,
    }


def _at(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


@router.get("/healthz", response_model=HealthOut, summary="Liveness and the health of every dependency")
def healthz(service: ServiceDep) -> HealthOut:
    report = service.health()
    engine = report.engine
    return HealthOut(
        status=report.status,
        mode=service.mode,
        embedded=service.embedded,
        engine={
            "steps": engine.steps,
            "samples": engine.samples,
            "series": engine.series,
            "last_step_at": _at(engine.last_step_at),
            "last_step_seconds": round(engine.last_step_seconds, 6),
            "last_error": engine.last_error,
            "shard": engine.shard,
            "leader": engine.leader,
        },
        clusters=[ClusterHealthOut(**_health_fields(h)) for h in report.clusters],
        mlflow=ComponentHealth(state=report.mlflow.state, detail=report.mlflow.detail),
        model_registry=ComponentHealth(state=report.model_registry.state, detail=report.model_registry.detail),
        champions=dict(report.champions),
    )


@router.get("/v1/clusters", response_model=list[ClusterOut], summary="The clusters of the continuum and their health")
def clusters(service: ServiceDep) -> list[ClusterOut]:
    return [
        ClusterOut(**_health_fields(c.health), url=c.url, labels=c.labels, capacity_cores=c.capacity_cores)
        for c in service.clusters()
    ]
