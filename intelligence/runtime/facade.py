"""What the API may see and do of the running service: a small facade, so routes never walk object graphs.

Reads (health, clusters, forecasts, anomalies, recommendations, the actuator's state,
the ledger and audit log, placement scores, live accuracy) and the few operator acts
(approve, reject, the kill switch, a drain). Times handed in are the service's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from intelligence.actuation.actuator import ScoresState
from intelligence.actuation.adapters.base import AdapterError, Applied
from intelligence.runtime.health import ComponentHealth, EngineHealth, HealthReport, overall_status
from intelligence.runtime.service import Service
from intelligence.storage.ledger import ActionRow
from intelligence.storage.recommendations import Revision, StoredRecommendation
from intelligence.vocabulary import AnomalyScore, ClusterHealth, Forecast, RecommendationStatus, utc_now
from models.bank import BankAccuracy


class ClusterRefused(Exception):
    """A Kubernetes API refused or failed an operator's act; ``status`` is its HTTP status (None: unreachable)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    health: ClusterHealth
    url: str | None  # the metrics endpoint (None for the simulated continuum)
    labels: dict[str, str]
    capacity_cores: float | None


@dataclass(frozen=True, slots=True)
class ActuatorState:
    mode: str  # the default mode; overrides may differ per namespace or workload
    modes_in_use: list[str]
    adapters: bool  # whether the Kubernetes adapters are set up (approve or enact in use)
    kill_switch: bool
    kill_switch_reason: str
    budget_used: int  # actions enacted in the current budget period
    budget_actions: int
    budget_period_minutes: float


class ServiceFacade:
    def __init__(self, service: Service) -> None:
        self._service = service

    # -- what the API is configured with ------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._service.settings.policy.mode.value

    @property
    def embedded(self) -> bool:
        return self._service.settings.embedded

    @property
    def token_file(self) -> Any:
        return self._service.settings.api.token_file

    @property
    def placement_score_name(self) -> str:
        return self._service.settings.kubernetes.placement_score_name

    @property
    def telemetry(self) -> CollectorRegistry:
        """The service's own metrics (collector telemetry), served on /metrics next to the forecasts."""
        return self._service.registry

    @property
    def model_registry(self) -> Any | None:
        """``models.tracking.ModelRegistry`` when MLflow is enabled."""
        return self._service.model_registry

    def now(self) -> datetime:
        return utc_now(self._service.clock)

    # -- reads ---------------------------------------------------------------------------------------

    def health(self) -> HealthReport:
        svc = self._service
        status = svc.engine.status
        engine = EngineHealth(
            steps=status.steps,
            samples=status.samples,
            series=len(svc.engine.bank),
            last_step_at=status.last_step_at,
            last_step_seconds=status.last_step_seconds,
            last_error=status.last_error,
            shard=f"{svc.engine.shard_index}/{svc.engine.shard_count}",
        )
        tracker = svc.tracker.health() if svc.tracker is not None else None
        mlflow = ComponentHealth(tracker.state, tracker.detail) if tracker else ComponentHealth("disabled")
        watcher = svc.watcher
        registry = (
            ComponentHealth(watcher.state, watcher.detail) if watcher is not None else ComponentHealth("disabled")
        )
        clusters = tuple(status.health)
        return HealthReport(
            status=overall_status(engine, clusters, (mlflow, registry)),
            engine=engine,
            clusters=clusters,
            mlflow=mlflow,
            model_registry=registry,
            champions={s: c["version"] for s, c in sorted(svc.active.items())},
        )

    def clusters(self) -> list[ClusterInfo]:
        configured = {c.name: c for c in self._service.settings.clusters}
        out = []
        for h in self._service.engine.status.health:
            c = configured.get(h.cluster)
            out.append(
                ClusterInfo(h, c.url if c else None, dict(c.labels) if c else {}, c.capacity_cores if c else None)
            )
        return out

    def forecasts(self, cluster: str | None = None, signal: str | None = None, **labels: str) -> list[Forecast]:
        return self._service.engine.forecasts.query(cluster, signal, **labels)

    def anomaly_events(
        self,
        since: float | None = None,
        min_score: float | None = None,
        cluster: str | None = None,
        signal: str | None = None,
        limit: int = 100,
    ) -> list[AnomalyScore]:
        return self._service.engine.anomalies.events(since, min_score, cluster, signal, limit)

    def latest_scores(self, cluster: str | None = None, signal: str | None = None) -> list[AnomalyScore]:
        return self._service.engine.anomalies.latest(cluster, signal)

    def live_accuracy(self) -> BankAccuracy:
        return self._service.engine.bank.accuracy()

    def engine_steps(self) -> int:
        return self._service.engine.status.steps

    def cluster_health(self) -> list[ClusterHealth]:
        return list(self._service.engine.status.health)

    def recommendations(
        self,
        status: RecommendationStatus | None = RecommendationStatus.OPEN,
        cluster: str | None = None,
        namespace: str | None = None,
        limit: int = 100,
    ) -> list[StoredRecommendation]:
        return self._service.actuator.store.find(status, cluster, namespace, limit)

    def recommendation(self, rec_id: int) -> StoredRecommendation | None:
        return self._service.actuator.store.get(rec_id)

    def recommendation_history(self, rec_id: int) -> list[Revision]:
        return self._service.actuator.store.history(rec_id)

    def actuator_state(self) -> ActuatorState:
        actuator = self._service.actuator
        envelope = actuator.envelope
        killed, reason = actuator.killed()
        used = len(actuator.ledger.enacted_since(self.now() - timedelta(minutes=envelope.budget_period_minutes)))
        return ActuatorState(
            mode=self.mode,
            modes_in_use=sorted(m.value for m in actuator.book.modes),
            adapters=actuator.kernel is not None,
            kill_switch=killed,
            kill_switch_reason=reason,
            budget_used=used,
            budget_actions=envelope.budget_actions,
            budget_period_minutes=envelope.budget_period_minutes,
        )

    def actions(self, limit: int = 100) -> list[ActionRow]:
        return self._service.actuator.ledger.find(limit=limit)

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._service.actuator.audit.entries(limit)

    def placement_scores(self) -> ScoresState:
        return self._service.actuator.scores

    # -- operator acts -------------------------------------------------------------------------------

    def approve(self, rec_id: int, by: str) -> None:
        self._service.actuator.approve(rec_id, self.now(), by)

    def reject(self, rec_id: int, by: str, reason: str = "") -> None:
        self._service.actuator.reject(rec_id, self.now(), by, reason)

    def set_kill_switch(self, on: bool, reason: str) -> None:
        self._service.actuator.set_kill_switch(on, reason, self.now())

    def drain(self, cluster: str, by: str, effect: str, reason: str) -> Applied:
        """Raises PermissionError (nothing may be enacted) or :class:`ClusterRefused` (the hub said no)."""
        try:
            return self._service.actuator.drain(cluster, self.now(), by, effect, reason)
        except AdapterError as exc:
            raise ClusterRefused(str(exc), exc.status) from exc
