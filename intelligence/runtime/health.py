"""The health rule: how the engine, the clusters, MLflow and the model registry add up to one status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from intelligence.vocabulary import ClusterHealth, HealthState

UNHEALTHY_CLUSTER = frozenset({HealthState.DOWN, HealthState.DEGRADED, HealthState.STALE})


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    state: str  # starting, ok, degraded or disabled
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EngineHealth:
    steps: int
    samples: int
    series: int
    last_step_at: float | None
    last_step_seconds: float
    last_error: str | None
    shard: str  # "index/count"
    leader: bool = True  # leads the fleet (a single replica always does)


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: str  # starting, ok or degraded
    engine: EngineHealth
    clusters: Sequence[ClusterHealth]
    mlflow: ComponentHealth
    model_registry: ComponentHealth
    champions: Mapping[str, int] = field(default_factory=dict)  # registered model version run per signal


def overall_status(
    engine: EngineHealth, clusters: Sequence[ClusterHealth], components: Sequence[ComponentHealth]
) -> str:
    """``starting`` until the first step; ``degraded`` when the last step failed, a cluster is down, degraded or
    stale, or MLflow or the registry is degraded; else ``ok``."""
    if engine.steps == 0:
        return "starting"
    degraded = (
        engine.last_error is not None
        or any(c.state in UNHEALTHY_CLUSTER for c in clusters)
        or any(c.state == "degraded" for c in components)
    )
    return "degraded" if degraded else "ok"


ANSWERING = frozenset({HealthState.UP, HealthState.DEGRADED, HealthState.STALE})


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    clusters: int
    answering: int  # clusters whose last pull got an answer (up, degraded or stale)


def readiness(engine: EngineHealth, clusters: Sequence[ClusterHealth]) -> Readiness:
    """Ready to serve (the readiness probe): the first step is done and at least one cluster answers.

    Not ready while starting (no step yet: nothing to serve), or when no cluster answers (every one down
    or not yet polled): the forecasts would be stale. Liveness is another matter: the process works.
    """
    answering = sum(1 for c in clusters if c.state in ANSWERING)
    if engine.steps == 0:
        return Readiness(False, "starting: no engine step yet", len(clusters), answering)
    if answering == 0:
        return Readiness(False, f"no cluster answers ({len(clusters)} configured)", len(clusters), answering)
    return Readiness(True, f"{answering} of {len(clusters)} clusters answer", len(clusters), answering)
