"""``/v1/anomalies``: anomaly events (a score at or above the threshold) and the latest score of every series."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from api.deps import Limit, Name, Offset, ServiceDep, UtcTime
from api.pagination import paged_response, set_page
from api.schemas import AnomalyOut

router = APIRouter(prefix="/v1/anomalies", tags=["anomalies"])

KEPT = 100_000  # more than any store keeps: the total is exact


@router.get(
    "",
    response_model=list[AnomalyOut],
    summary="Anomaly events (score at or above the threshold), newest first",
    responses=paged_response("The page of anomaly events"),
)
def list_anomalies(
    service: ServiceDep,
    request: Request,
    response: Response,
    cluster: Name = None,
    signal: Name = None,
    since: UtcTime | None = None,
    min_score: float | None = Query(None, ge=0.0, le=1.0),
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AnomalyOut]:
    events = service.anomaly_events(since.timestamp() if since else None, min_score, cluster, signal, KEPT)
    page = events[offset : offset + limit]
    set_page(response, request, len(events), offset, len(page))
    units = service.units
    return [AnomalyOut.of(e, units.get(e.key.signal, "")) for e in page]


@router.get(
    "/latest",
    response_model=list[AnomalyOut],
    summary="The latest score of every series, in series order",
    responses=paged_response("The page of scores"),
)
def latest_scores(
    service: ServiceDep,
    request: Request,
    response: Response,
    cluster: Name = None,
    signal: Name = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[AnomalyOut]:
    scores = service.latest_scores(cluster, signal)
    page = scores[offset : offset + limit]
    set_page(response, request, len(scores), offset, len(page))
    units = service.units
    return [AnomalyOut.of(s, units.get(s.key.signal, "")) for s in page]
