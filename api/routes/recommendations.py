from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from api.deps import Authenticated, ServiceDep
from api.schemas import RecommendationOut, RevisionOut
from intelligence.runtime.facade import ServiceFacade
from intelligence.vocabulary import RecommendationStatus

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
    rows = service.recommendations(None if all_statuses else status, cluster, namespace, limit)
    return [RecommendationOut.of(r) for r in rows]


@router.get(
    "/{rec_id}/history",
    response_model=list[RevisionOut],
    summary="Every value a recommendation had, oldest first",
    responses={404: {"description": "No such recommendation"}},
)
def history(service: ServiceDep, rec_id: int) -> list[RevisionOut]:
    if service.recommendation(rec_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"recommendation {rec_id} does not exist")
    return [
        RevisionOut(
            revision=h.revision, kind=h.kind.value, params=h.params, confidence=h.confidence, summary=h.summary, at=h.at
        )
        for h in service.recommendation_history(rec_id)
    ]


class DecisionIn(BaseModel):
    by: str = Field(default="api", max_length=200, description="Who decided (a person or the remediation loop)")
    reason: str = Field(default="", max_length=1000)


def _decide(service: ServiceFacade, rec_id: int, approve: bool, body: DecisionIn) -> RecommendationOut:
    try:
        if approve:
            service.approve(rec_id, body.by)
        else:
            service.reject(rec_id, body.by, body.reason)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except PermissionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    stored = service.recommendation(rec_id)
    assert stored is not None
    return RecommendationOut.of(stored)


@router.post(
    "/{rec_id}/approve",
    response_model=RecommendationOut,
    dependencies=[Authenticated],
    summary="Approve an open recommendation: enacted at the next step, within the safety envelope",
    responses={404: {"description": "No such recommendation"}, 409: {"description": "Not open, or not enactable"}},
)
def approve(service: ServiceDep, rec_id: int, body: DecisionIn | None = None) -> RecommendationOut:
    return _decide(service, rec_id, True, body or DecisionIn())


@router.post(
    "/{rec_id}/reject",
    response_model=RecommendationOut,
    dependencies=[Authenticated],
    summary="Reject an open or approved recommendation",
    responses={404: {"description": "No such recommendation"}, 409: {"description": "Not open or approved"}},
)
def reject(service: ServiceDep, rec_id: int, body: DecisionIn | None = None) -> RecommendationOut:
    return _decide(service, rec_id, False, body or DecisionIn())
