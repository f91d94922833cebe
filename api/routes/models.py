"""``/v1/models``: model kinds, registered versions, aliases and accuracy; promote and roll back."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from api.deps import AUTH_ERRORS, MAX_ID, CallerDep, ServiceDep
from api.schemas import ErrorOut
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


class AccuracyOut(BaseModel):
    """One-step-ahead accuracy of one signal's models, live (every sample scored before it is learnt)."""

    scored: int
    mae: float | None = Field(description="Mean absolute error, in the signal's unit")
    relative_mae: float | None = Field(description="MAE over the naive (last value) forecast's MAE; < 1 is better")
    coverage: float | None = Field(description="Share of the samples inside the prediction band")


class SignalModelsOut(BaseModel):
    signal: str
    unit: str
    series: int
    champion_version: int | None = Field(description="The registered version this signal runs (MLflow), if any")
    champion: AccuracyOut = Field(description="The models in charge")
    challenger: AccuracyOut | None = Field(description="The challenger run in shadow, if one runs")


class ModelsOut(BaseModel):
    forecaster_kinds: list[str]
    detector_kinds: list[str]
    live_accuracy: dict[str, float] = Field(
        description="Unitless accuracy over every series (relative MAE, coverage); per signal: /v1/models/accuracy"
    )
    registered: list[RegisteredModelOut]


class PromoteIn(BaseModel):
    version: int = Field(ge=1, le=MAX_ID)
    metric: str = Field(default="mase", max_length=64, pattern=r"^[A-Za-z0-9_.]+$")  # lower is better
    margin: float = Field(default=0.02, ge=0.0, lt=1.0)  # the challenger must beat the champion by this share


ModelName = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]
_REGISTRY_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Registry disabled (mlflow.enabled is false), or no such model"},
    503: {"model": ErrorOut, "description": "MLflow unavailable"},
}


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _accuracy(a: Any) -> AccuracyOut:
    return AccuracyOut(scored=a.scored, mae=_num(a.mae), relative_mae=_num(a.relative_mae), coverage=_num(a.coverage))


@router.get(
    "/accuracy",
    response_model=list[SignalModelsOut],
    summary="Per signal: its unit, the champion version it runs, champion and challenger live accuracy",
)
def accuracy(service: ServiceDep) -> list[SignalModelsOut]:
    champions = service.health().champions
    shadow = service.shadow_accuracy_by_signal()
    units = service.units
    return [
        SignalModelsOut(
            signal=signal,
            unit=units.get(signal, ""),
            series=acc.series,
            champion_version=champions.get(signal),
            champion=_accuracy(acc),
            challenger=_accuracy(shadow[signal]) if signal in shadow else None,
        )
        for signal, acc in service.accuracy_by_signal().items()
    ]


def _registry(service: ServiceDep) -> ModelRegistry:
    registry: ModelRegistry | None = service.model_registry
    if registry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "model registry disabled (mlflow.enabled is false)")
    return registry


def _unavailable(registry: ModelRegistry, exc: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, f"MLflow at {registry.tracking_uri} unavailable: {type(exc).__name__}"
    )


@router.get(
    "",
    response_model=ModelsOut,
    summary="Model kinds, registered versions with aliases and accuracy",
    responses=_REGISTRY_ERRORS,
)
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
    unitless = ("series", "scored", "relative_mae_1step", "coverage_1step", "drifts")  # MAE mixes units: per signal
    metrics = service.live_accuracy().as_metrics()
    live = {k: float(metrics[k]) for k in unitless if k in metrics and math.isfinite(metrics[k])}
    return ModelsOut(
        forecaster_kinds=forecaster_kinds(),
        detector_kinds=detector_kinds(),
        live_accuracy=live,
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
    summary="Make a version champion if it beats the champion by the margin (409 with the evidence if not)",
    responses={**AUTH_ERRORS, **_REGISTRY_ERRORS, 409: {"model": ErrorOut, "description": "Not better, or refused"}},
)
def promote(name: ModelName, body: PromoteIn, service: ServiceDep, caller: CallerDep) -> VersionOut:
    registry = _registry(service)
    return _act(registry, name, "promote", lambda: registry.promote(name, body.version, body.metric, body.margin))


@router.post(
    "/{name}/rollback",
    response_model=VersionOut,
    summary="Give the champion alias back to the previous champion",
    responses={**AUTH_ERRORS, **_REGISTRY_ERRORS, 409: {"model": ErrorOut, "description": "Nothing to roll back to"}},
)
def rollback(name: ModelName, service: ServiceDep, caller: CallerDep) -> VersionOut:
    registry = _registry(service)
    return _act(registry, name, "rollback", lambda: registry.rollback(name))
