from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from api.deps import ServiceDep
from api.schemas import AnomalyOut

router = APIRouter(prefix="/v1/anomalies", tags=["anomalies"])


@router.get(
    "", response_model=list[AnomalyOut], summary="Anomaly events (score at or above the threshold), newest first"
)
def list_anomalies(
    service: ServiceDep,
    cluster: str | None = None,
    signal: str | None = None,
    since: datetime | None = None,
    min_score: float | None = Query(None, ge=0.0, le=1.0),
    limit: int = Query(100, ge=1, le=5000),
) -> list[AnomalyOut]:
    events = service.anomaly_events(since.timestamp() if since else None, min_score, cluster, signal, limit)
    return [AnomalyOut.of(e) for e in events]


@router.get("/latest", response_model=list[AnomalyOut], summary="The latest score of every series")
def latest_scores(service: ServiceDep, cluster: str | None = None, signal: str | None = None) -> list[AnomalyOut]:
    return [AnomalyOut.of(s) for s in service.latest_scores(cluster, signal)]
