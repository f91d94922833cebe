from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

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


@router.get("/healthz", response_model=HealthOut, summary="Liveness and the health of every dependency")
def healthz(service: ServiceDep, response: Response) -> HealthOut:
    status = service.engine.status
    clusters = [ClusterHealthOut(**_health_fields(h)) for h in status.health]
    tracker = service.tracker.health() if service.tracker is not None else None
    mlflow = (
        ComponentHealth(state=tracker.state, detail=tracker.detail) if tracker else ComponentHealth(state="disabled")
    )
    watcher = service.champions
    registry = (
        ComponentHealth(state=watcher.state, detail=watcher.detail)
        if watcher is not None
        else ComponentHealth(state="disabled")
    )
    degraded = (
        status.last_error is not None
        or any(c.state in ("down", "degraded", "stale") for c in clusters)
        or mlflow.state == "degraded"
        or registry.state == "degraded"
    )
    overall = "starting" if status.steps == 0 else ("degraded" if degraded else "ok")
    return HealthOut(
        status=overall,
        mode=service.settings.policy.mode.value,
        embedded=service.settings.embedded,
        engine={
            "steps": status.steps,
            "samples": status.samples,
            "series": len(service.engine.bank),
            "last_step_at": datetime.fromtimestamp(status.last_step_at, UTC) if status.last_step_at else None,
            "last_step_seconds": round(status.last_step_seconds, 6),
            "last_error": status.last_error,
            "shard": f"{service.engine.shard_index}/{service.engine.shard_count}",
        },
        clusters=clusters,
        mlflow=mlflow,
        model_registry=registry,
        champions={s: c["version"] for s, c in sorted(service.active.items())},
    )


@router.get("/v1/clusters", response_model=list[ClusterOut], summary="The clusters of the continuum and their health")
def clusters(service: ServiceDep) -> list[ClusterOut]:
    configured = {c.name: c for c in service.settings.clusters}
    out = []
    for h in service.engine.status.health:
        c = configured.get(h.cluster)
        out.append(
            ClusterOut(
                **_health_fields(h),
                url=c.url if c else None,
                labels=dict(c.labels) if c else {},
                capacity_cores=c.capacity_cores if c else None,
            )
        )
    return out
