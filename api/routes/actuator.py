"""``/v1/actuator``: the kill switch, the action ledger, the audit log and the placement scores."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from api.deps import Authenticated, ServiceDep
from intelligence.actuation.adapters.base import AdapterError
from intelligence.vocabulary import utc_now

router = APIRouter(prefix="/v1/actuator", tags=["actuator"])


class KillSwitchIn(BaseModel):
    on: bool
    reason: str = Field(default="", max_length=1000)


class DrainIn(BaseModel):
    effect: Literal["NoSelect", "PreferNoSelect"] = "NoSelect"
    by: str = Field(default="api", max_length=200)
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
    target: str
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
    actuator = service.engine.actuator
    envelope = actuator.envelope
    killed, reason = actuator.killed()
    now = utc_now(service.clock)
    used = len(actuator.ledger.enacted_since(now - timedelta(minutes=envelope.budget_period_minutes)))
    return ActuatorOut(
        mode=service.settings.policy.mode.value,
        modes_in_use=sorted(m.value for m in actuator.book.modes),
        adapters=actuator.kernel is not None,
        kill_switch=killed,
        kill_switch_reason=reason,
        budget_used=used,
        budget_actions=envelope.budget_actions,
        budget_period_minutes=envelope.budget_period_minutes,
    )


@router.get("", response_model=ActuatorOut, summary="Modes, kill switch and action budget")
def actuator_state(service: ServiceDep) -> ActuatorOut:
    return _state(service)


@router.post(
    "/kill-switch",
    response_model=ActuatorOut,
    dependencies=[Authenticated],
    summary="Turn the kill switch on (nothing is enacted, in every replica) or off",
)
def kill_switch(service: ServiceDep, body: KillSwitchIn) -> ActuatorOut:
    now = utc_now(service.clock)
    service.engine.actuator.set_kill_switch(body.on, body.reason, now)
    return _state(service)


@router.post(
    "/clusters/{cluster}/drain",
    response_model=DrainOut,
    dependencies=[Authenticated],
    summary="Taint a ManagedCluster (icos.eu/drain) so that OCM Placements stop selecting it",
    responses={
        409: {"description": "Adapters not set up, or the kill switch is on"},
        404: {"description": "No such ManagedCluster"},
        502: {"description": "The hub refused or failed"},
    },
)
def drain(service: ServiceDep, cluster: str, body: DrainIn | None = None) -> DrainOut:
    body = body or DrainIn()
    now = utc_now(service.clock)
    try:
        applied = service.engine.actuator.drain(cluster, now, body.by, body.effect, body.reason)
    except PermissionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except AdapterError as exc:
        code = status.HTTP_404_NOT_FOUND if exc.status == 404 else status.HTTP_502_BAD_GATEWAY
        raise HTTPException(code, str(exc)) from exc
    return DrainOut(cluster=cluster, object=applied.obj, changed=applied.changed)


@router.get("/actions", response_model=list[ActionOut], summary="Enacted, pending and failed actions, newest first")
def actions(service: ServiceDep, limit: int = Query(100, ge=1, le=5000)) -> list[ActionOut]:
    rows = service.engine.actuator.ledger.find(limit=limit)
    return [
        ActionOut(
            id=r.id,
            recommendation_id=r.recommendation_id,
            target=r.target,
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


@router.get("/audit", summary="The audit log, newest first")
def audit(service: ServiceDep, limit: int = Query(100, ge=1, le=5000)) -> list[dict[str, Any]]:
    return service.recommendations.audit_entries(limit)


@router.get("/placement-scores", response_model=ScoresOut, summary="Forecast headroom per cluster for OCM Placement")
def placement_scores(service: ServiceDep) -> ScoresOut:
    state = service.engine.actuator.scores
    return ScoresOut(
        name=service.settings.kubernetes.placement_score_name,
        scores=state.scores,
        computed_at=state.computed_at,
        published_at=state.published_at,
        error=state.error,
    )
