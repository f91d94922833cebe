"""``/v1/recommendations``: what the service proposes, and approving or rejecting it (as the token's caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import AUTH_ERRORS, MAX_ID, CallerDep, Limit, Name, Offset, ServiceDep
from api.pagination import paged_response, set_page
from api.schemas import ErrorOut, RecommendationOut, RevisionOut
from intelligence.runtime.facade import ServiceFacade
from intelligence.vocabulary import RecommendationStatus

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])

RecId = Annotated[int, Path(ge=1, le=MAX_ID, description="The recommendation's id")]


@router.get(
    "",
    response_model=list[RecommendationOut],
    summary="Recommendations for the remediation loop, newest first (default: the open ones)",
    responses=paged_response("The page of recommendations"),
)
def list_recommendations(
    service: ServiceDep,
    request: Request,
    response: Response,
    status: RecommendationStatus | None = RecommendationStatus.OPEN,
    all_statuses: bool = Query(False, alias="all", description="Ignore status and list every recommendation"),
    cluster: Name = None,
    namespace: Name = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RecommendationOut]:
    page = service.recommendation_page(None if all_statuses else status, cluster, namespace, limit, offset)
    set_page(response, request, page.total, offset, len(page.items))
    return [RecommendationOut.of(r) for r in page.items]


@router.get(
    "/{rec_id}/history",
    response_model=list[RevisionOut],
    summary="Every value a recommendation had, oldest first",
    responses={404: {"model": ErrorOut, "description": "No such recommendation"}},
)
def history(service: ServiceDep, rec_id: RecId) -> list[RevisionOut]:
    if service.recommendation(rec_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"recommendation {rec_id} does not exist")
    return [
        RevisionOut(
            revision=h.revision, kind=h.kind.value, params=h.params, confidence=h.confidence, summary=h.summary, at=h.at
        )
        for h in service.recommendation_history(rec_id)
    ]


class DecisionIn(BaseModel):
    """Who decided is the caller (the token's name); a ``by`` field, if sent, is ignored."""

    reason: str = Field(default="", max_length=1000)


def _decide(service: ServiceFacade, rec_id: int, approve: bool, by: str, body: DecisionIn) -> RecommendationOut:
    try:
        if approve:
            service.approve(rec_id, by)
        else:
            service.reject(rec_id, by, body.reason)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (PermissionError, ValueError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    stored = service.recommendation(rec_id)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"recommendation {rec_id} does not exist")
    return RecommendationOut.of(stored)


@router.post(
    "/{rec_id}/approve",
    response_model=RecommendationOut,
    summary="Approve an open recommendation: enacted at the next step, within the safety envelope",
    responses={
        **AUTH_ERRORS,
        404: {"model": ErrorOut, "description": "No such recommendation"},
        409: {"model": ErrorOut, "description": "Not open, or not enactable"},
    },
)
def approve(service: ServiceDep, caller: CallerDep, rec_id: RecId, body: DecisionIn | None = None) -> RecommendationOut:
    return _decide(service, rec_id, True, caller.name, body or DecisionIn())


@router.post(
    "/{rec_id}/reject",
    response_model=RecommendationOut,
    summary="Reject an open or approved recommendation",
    responses={
        **AUTH_ERRORS,
        404: {"model": ErrorOut, "description": "No such recommendation"},
        409: {"model": ErrorOut, "description": "Not open or approved"},
    },
)
def reject(service: ServiceDep, caller: CallerDep, rec_id: RecId, body: DecisionIn | None = None) -> RecommendationOut:
    return _decide(service, rec_id, False, caller.name, body or DecisionIn())
