"""``/v1/models``: model kinds, registered versions, aliases and accuracy; promote and roll back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from api.deps import Authenticated, ServiceDep
from models.kinds import detector_kinds, forecaster_kinds
from models.tracking import ModelRegistry, ModelVersionInfo, RegistryError

router = APIRouter(prefix="/v1/models", tags=["models"])


class VersionOut(BaseModel):
    version: int
    aliases: list[str]
    spec: dict[str, Any]
    metrics: dict[str, float]
    run_id: str

    @classmethod
    def of(cls, v: ModelVersionInfo) -> VersionOut:
        return cls(version=v.version, aliases=list(v.aliases), spec=v.spec, metrics=v.metrics, run_id=v.run_id)


class RegisteredModelOut(BaseModel):
    name: str
    champion: int | None
    versions: list[VersionOut]


class ModelsOut(BaseModel):
    forecaster_kinds: list[str]
    detector_kinds: list[str]
    live_accuracy: dict[str, float]
    registered: list[RegisteredModelOut]


class PromoteIn(BaseModel):
    version: int = Field(ge=1)
    metric: str = "mase"  # lower is better
    margin: float = Field(default=0.02, ge=0.0, lt=1.0)  # the challenger must beat the champion by this share


def _registry(service: ServiceDep) -> ModelRegistry:
    registry: ModelRegistry | None = service.model_registry
    if registry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "model registry disabled (mlflow.enabled is false)")
    return registry


def _unavailable(registry: ModelRegistry, exc: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, f"MLflow at {registry.tracking_uri} unavailable: {type(exc).__name__}"
    )


@router.get("", response_model=ModelsOut, summary="Model kinds, registered versions with aliases and accuracy")
def list_models(service: ServiceDep) -> ModelsOut:
    registry = _registry(service)
    try:
        registered = []
        for name in registry.names():
            versions = registry.versions(name)
            champion = next((v.version for v in versions if ModelRegistry.CHAMPION in v.aliases), None)
            registered.append(
                RegisteredModelOut(name=name, champion=champion, versions=[VersionOut.of(v) for v in versions])
            )
    except Exception as exc:
        raise _unavailable(registry, exc) from exc
    accuracy = {k: float(v) for k, v in service.live_accuracy().as_metrics().items() if v == v}
    return ModelsOut(
        forecaster_kinds=forecaster_kinds(),
        detector_kinds=detector_kinds(),
        live_accuracy=accuracy,
        registered=registered,
    )


def _act(registry: ModelRegistry, name: str, action: str, call: Any) -> VersionOut:
    try:
        return VersionOut.of(call())
    except RegistryError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{name}: {action}: {exc}") from exc
        raise _unavailable(registry, exc) from exc


@router.post(
    "/{name}/promote",
    response_model=VersionOut,
    dependencies=[Authenticated],
    summary="Make a version champion if it beats the champion by the margin (409 with the evidence if not)",
)
def promote(name: str, body: PromoteIn, service: ServiceDep) -> VersionOut:
    registry = _registry(service)
    return _act(registry, name, "promote", lambda: registry.promote(name, body.version, body.metric, body.margin))


@router.post(
    "/{name}/rollback",
    response_model=VersionOut,
    dependencies=[Authenticated],
    summary="Give the champion alias back to the previous champion",
)
def rollback(name: str, service: ServiceDep) -> VersionOut:
    registry = _registry(service)
    return _act(registry, name, "rollback", lambda: registry.rollback(name))
