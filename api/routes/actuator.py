"""``/v1/actuator``: the kill switch, the action ledger, the audit log and the placement scores."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import AUTH_ERRORS, MAX_ID, CallerDep, Limit, Name, Offset, ServiceDep
from api.pagination import paged_response, set_page
from api.schemas import AuditEntryOut, ErrorOut
from intelligence.runtime.facade import ClusterRefused

router = APIRouter(prefix="/v1/actuator", tags=["actuator"])


class KillSwitchIn(BaseModel):
    on: bool
    reason: str = Field(default="", max_length=1000)


class DrainIn(BaseModel):
    """Who drained is the caller (the token's name); a ``by`` field, if sent, is ignored."""

    effect: Literal["NoSelect", "PreferNoSelect"] = "NoSelect"
    reason: str = Field(default="", max_length=1000)


class DrainOut(BaseModel):
    cluster: str
    object: str
    changed: bool = Field(description="False when the taint was already there")


class ActuatorOut(BaseModel):
    mode: str = Field(description="The default mode; overrides may differ per namespace or workload")
    modes_in_use: list[str]
    adapters: bool = Field(description="Whether the Kubernetes adapters are set up (approve or enact in use)")
    kill_switch: bool
    kill_switch_reason: str
    budget_used: int = Field(description="Actions enacted in the current budget period")
    budget_actions: int
    budget_period_minutes: float


class ActionOut(BaseModel):
    id: int
    recommendation_id: int
    target: str = Field(description="cluster/namespace/workload")
    lever: str = Field(description="What the action set: knative-floor, replicas or placement")
    kind: str
    params: dict[str, Any]
    state: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    detail: dict[str, Any]


class ScoresOut(BaseModel):
    name: str = Field(description="AddOnPlacementScore name in each ManagedCluster namespace")
    scores: dict[str, int] = Field(description="Forecast headroom per cluster, -100..100 (down or anomalous: -100)")
    computed_at: datetime | None
    published_at: datetime | None = Field(description="Last publication to OCM (enact mode only)")
    error: str | None


def _state(service: ServiceDep) -> ActuatorOut:
    return ActuatorOut(**asdict(service.actuator_state()))


@router.get("", response_model=ActuatorOut, summary="Modes, kill switch and action budget")
def actuator_state(service: ServiceDep) -> ActuatorOut:
    return _state(service)


@router.post(
    "/kill-switch",
    response_model=ActuatorOut,
    summary="Turn the kill switch on (nothing is enacted, in every replica) or off; audited with the caller",
    responses={**AUTH_ERRORS},
)
def kill_switch(service: ServiceDep, caller: CallerDep, body: KillSwitchIn) -> ActuatorOut:
    service.set_kill_switch(body.on, body.reason, caller.name)
    return _state(service)


ClusterName = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


@router.post(
    "/clusters/{cluster}/drain",
    response_model=DrainOut,
    summary="Taint a ManagedCluster (icos.eu/drain) so that OCM Placements stop selecting it",
    responses={
        **AUTH_ERRORS,
        409: {"model": ErrorOut, "description": "Adapters not set up, or the kill switch is on"},
        404: {"model": ErrorOut, "description": "No such ManagedCluster"},
        502: {"model": ErrorOut, "description": "The hub refused or failed"},
    },
)
def drain(service: ServiceDep, caller: CallerDep, cluster: ClusterName, body: DrainIn | None = None) -> DrainOut:
    body = body or DrainIn()
    try:
        applied = service.drain(cluster, caller.name, body.effect, body.reason)
    except PermissionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ClusterRefused as exc:
        code = status.HTTP_404_NOT_FOUND if exc.status == 404 else status.HTTP_502_BAD_GATEWAY
        raise HTTPException(code, str(exc)) from exc
    return DrainOut(cluster=cluster, object=applied.obj, changed=applied.changed)


ActionState = Literal["intent", "enacted", "retry", "failed", "abandoned"]


@router.get(
    "/actions",
    response_model=list[ActionOut],
    summary="Enacted, pending and failed actions, newest first",
    responses=paged_response("The page of actions"),
)
def actions(
    service: ServiceDep,
    request: Request,
    response: Response,
    state: ActionState | None = None,
    cluster: Name = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ActionOut]:
    page = service.action_page(state, cluster, limit, offset)
    set_page(response, request, page.total, offset, len(page.items))
    rows = page.items
    return [
        ActionOut(
            id=r.id,
            recommendation_id=r.recommendation_id,
            target=str(r.target),
            lever=r.lever.value,
            kind=r.kind,
            params=r.params,
            state=r.state.value,
            attempts=r.attempts,
            created_at=r.created_at,
            updated_at=r.updated_at,
            detail=r.detail,
        )
        for r in rows
    ]


@router.get(
    "/audit",
    response_model=list[AuditEntryOut],
    summary="The audit log, newest first",
    responses=paged_response("The page of audit entries"),
)
def audit(
    service: ServiceDep,
    request: Request,
    response: Response,
    event: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z-]*$")] = None,
    recommendation_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AuditEntryOut]:
    page = service.audit_page(event, recommendation_id, limit, offset)
    set_page(response, request, page.total, offset, len(page.items))
    return [AuditEntryOut(**entry) for entry in page.items]


@router.get("/placement-scores", response_model=ScoresOut, summary="Forecast headroom per cluster for OCM Placement")
def placement_scores(service: ServiceDep) -> ScoresOut:
    state = service.placement_scores()
    return ScoresOut(
        name=service.placement_score_name,
        scores=state.scores,
        computed_at=state.computed_at,
        published_at=state.published_at,
        error=state.error,
    )
