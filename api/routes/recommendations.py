from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import ServiceDep
from api.schemas import RecommendationOut
from intelligence.domain import RecommendationStatus

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])


@router.get(
    "",
    response_model=list[RecommendationOut],
    summary="Recommendations for the remediation loop, newest first (default: the open ones)",
)
def list_recommendations(
    service: ServiceDep,
    status: RecommendationStatus | None = RecommendationStatus.OPEN,
    all_statuses: bool = Query(False, alias="all", description="Ignore status and list every recommendation"),
    cluster: str | None = None,
    namespace: str | None = None,
    limit: int = Query(100, ge=1, le=5000),
) -> list[RecommendationOut]:
    rows = service.recommendations.find(None if all_statuses else status, cluster, namespace, limit)
    return [RecommendationOut.of(r) for r in rows]
