"""What the API may see and do of the running service: a small facade, so routes never walk object graphs.

Reads (health and readiness, clusters, forecasts and their history, anomalies,
recommendations, the actuator's state, the ledger and audit log, placement scores, live
accuracy, the events outbox and the webhook subscribers) and the few operator acts
(approve, reject, the kill switch, a drain), each with who did it. Times handed in are the
service's clock, which is simulated in the embedded default (``time_basis``).

In a sharded fleet any replica answers for any series: its own series' forecasts and
scores from memory, the other shards' from the rows they write to the decision database at
every step (:mod:`intelligence.storage.latest`); anomaly events, recommendations, actions
and the audit log are in that database already. ``/metrics`` exports only this replica's
series (``owned_forecasts``, ``owned_scores``), so that a Prometheus scraping every replica
gets each series once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from intelligence.actuation.actuator import ScoresState
from intelligence.actuation.adapters.base import AdapterError, Applied
from intelligence.runtime.health import (
    ComponentHealth,
    EngineHealth,
    HealthReport,
    Readiness,
    overall_status,
    readiness,
)
from intelligence.runtime.history import SeriesHistory
from intelligence.runtime.service import Service
from intelligence.storage import queries
from intelligence.storage.ledger import ActionRow, ActionState
from intelligence.storage.outbox import StoredEvent
from intelligence.storage.queries import Page
from intelligence.storage.recommendations import Revision, StoredRecommendation
from intelligence.vocabulary import (
    AnomalyScore,
    ClusterHealth,
    Forecast,
    RecommendationStatus,
    SeriesKey,
    redact_url,
    utc_now,
)
from models.bank import BankAccuracy

Keyed = TypeVar("Keyed", Forecast, AnomalyScore)


def _selected(key: SeriesKey, labels: dict[str, str]) -> bool:
    return all(key.label(name) == value for name, value in labels.items())


def _merged(own: list[Keyed], others: list[Keyed], owns: Callable[[SeriesKey], bool]) -> list[Keyed]:
    """This replica's own values, and the shared ones of the series it does not own, in key order."""
    found: list[Keyed] = own + [x for x in others if not owns(x.key)]
    return sorted(found, key=lambda x: x.key)


class ClusterRefused(Exception):
    """A Kubernetes API refused or failed an operator's act; ``status`` is its HTTP status (None: unreachable)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    health: ClusterHealth
    url: str | None  # the metrics endpoint, credentials masked (None for the simulated continuum)
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
    def time_basis(self) -> str:
        """``simulated`` (the embedded continuum's clock runs faster than real time), ``replayed`` or ``real``."""
        return self._service.settings.time_basis

    @property
    def units(self) -> dict[str, str]:
        """The unit of each signal's values (from the settings; empty when not said)."""
        return {s.name: s.unit for s in self._service.settings.signals}

    @property
    def step_seconds(self) -> float:
        return self._service.engine.step_seconds

    @property
    def horizon_steps(self) -> int:
        return self._service.engine.horizon

    @property
    def history_keep_steps(self) -> int:
        history = self._service.engine.history
        return 0 if history is None else history.keep

    @property
    def event_source(self) -> str:
        return self._service.settings.events.source

    @property
    def event_extensions(self) -> dict[str, str]:
        return {"icostimebasis": self.time_basis}

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
            series=svc.engine.series,
            last_step_at=status.last_step_at,
            last_step_seconds=status.last_step_seconds,
            last_error=status.last_error or status.out_of_step,
            shard=f"{svc.engine.shard_index}/{svc.engine.shard_count}",
            leader=svc.engine.leading,
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

    def component_states(self) -> dict[str, str]:
        """The state of each optional component (``ok``, ``starting``, ``degraded`` or ``disabled``)."""
        report = self.health()
        return {"mlflow": report.mlflow.state, "model_registry": report.model_registry.state}

    def readiness(self) -> Readiness:
        status = self._service.engine.status
        return readiness(self.health().engine, tuple(status.health))

    def clusters(self) -> list[ClusterInfo]:
        configured = {c.name: c for c in self._service.settings.clusters}
        out = []
        for h in self._service.engine.status.health:
            c = configured.get(h.cluster)
            url = redact_url(c.url) if c else None
            out.append(ClusterInfo(h, url, dict(c.labels) if c else {}, c.capacity_cores if c else None))
        return out

    def forecasts(self, cluster: str | None = None, signal: str | None = None, **labels: str) -> list[Forecast]:
        """The latest forecasts selected, in key order: this replica's and (sharded) the other shards'. One series
        named by all its labels is a lookup, not a scan."""
        engine = self._service.engine
        store = engine.forecasts
        shared = engine.replica.latest
        if cluster is not None and signal is not None and labels:
            workload_labels = self._workload_labels.get(signal)
            if workload_labels is not None and set(workload_labels) == set(labels):
                key = SeriesKey.of(cluster, signal, labels)
                found = store.get(key)
                if found is None and shared is not None and not engine.owns(key):
                    found = next((fc for _, fc in shared.forecasts(cluster, signal) if fc.key == key), None)
                return [found] if found is not None else []
        own = store.query(cluster, signal, **labels)
        if shared is None:
            return own
        others = [fc for _, fc in shared.forecasts(cluster, signal) if _selected(fc.key, labels)]
        return _merged(own, others, engine.owns)

    @property
    def _workload_labels(self) -> dict[str, tuple[str, ...]]:
        return {s.name: tuple(s.workload_labels) for s in self._service.settings.signals}

    def forecast_history(self, key: SeriesKey, start: float, end: float) -> SeriesHistory | None:
        history = self._service.engine.history
        return None if history is None else history.query(key, start, end)

    def history_keys(self, cluster: str | None = None, signal: str | None = None, **labels: str) -> list[SeriesKey]:
        """The series with a history (this replica's, in a sharded fleet), in key order, those selected."""
        history = self._service.engine.history
        keys = [] if history is None else history.keys()
        return [
            k
            for k in keys
            if (cluster is None or k.cluster == cluster)
            and (signal is None or k.signal == signal)
            and all(k.label(name) == value for name, value in labels.items())
        ]

    def latest_samples(self) -> dict[SeriesKey, tuple[float, float]]:
        """The newest sample of every series this replica models: (time, value)."""
        history = self._service.engine.history
        return {} if history is None else history.latest()

    def owned_forecasts(self) -> list[Forecast]:
        """The forecasts of the series this replica models (what its /metrics exports)."""
        return self._service.engine.forecasts.query()

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
        """The latest anomaly score of every series selected, this replica's and (sharded) the other shards'."""
        engine = self._service.engine
        own = engine.anomalies.latest(cluster, signal)
        shared = engine.replica.latest
        if shared is None:
            return own
        return _merged(own, [s for _, s in shared.scores(cluster, signal)], engine.owns)

    def owned_scores(self) -> list[AnomalyScore]:
        """The latest scores of the series this replica models (what its /metrics exports)."""
        return self._service.engine.anomalies.latest()

    def live_accuracy(self) -> BankAccuracy:
        return self._service.engine.bank.accuracy()

    def accuracy_by_signal(self) -> dict[str, BankAccuracy]:
        """One-step accuracy per signal (each in its own unit; never averaged across signals)."""
        bank = self._service.engine.bank
        signals = sorted({k.signal for k in bank.series_keys()})
        return {s: bank.accuracy(s) for s in signals}

    def shadow_accuracy_by_signal(self) -> dict[str, BankAccuracy]:
        """The challengers' one-step accuracy per signal, where challengers run in shadow."""
        shadow = self._service.engine.shadow
        if shadow is None:
            return {}
        return {s: shadow.accuracy(s) for s in sorted({k.signal for k in shadow.series_keys()})}

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

    def recommendation_page(
        self,
        status: RecommendationStatus | None,
        cluster: str | None,
        namespace: str | None,
        limit: int,
        offset: int,
    ) -> Page[StoredRecommendation]:
        return queries.recommendation_page(self._service.database, status, cluster, namespace, limit, offset)

    def action_page(self, state: str | None, cluster: str | None, limit: int, offset: int) -> Page[ActionRow]:
        found = ActionState(state) if state is not None else None
        return queries.action_page(self._service.database, found, cluster, limit, offset)

    def audit_page(
        self, event: str | None, recommendation_id: int | None, limit: int, offset: int
    ) -> Page[dict[str, Any]]:
        return queries.audit_page(self._service.database, event, recommendation_id, limit, offset)

    def decision_counts(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """Recommendations per (cluster, status) and actions per (cluster, state)."""
        return queries.counts_by_cluster(self._service.database)

    def capacities(self) -> dict[str, float]:
        """Each configured cluster's capacity in cores (0: unknown), the simulated ones' too."""
        return {name: view.capacity for name, view in self._service.engine.clusters.items()}

    def webhook_lag(self) -> dict[str, int]:
        """Events not yet delivered, per webhook subscriber."""
        latest = self.latest_event_seq()
        return {w["name"]: latest - w["cursor"] for w in self.webhooks() if w["cursor"] is not None}

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

    # -- events ------------------------------------------------------------------------------------

    def events_after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        """Events after ``seq`` in order (every type; the caller filters after the gap guard)."""
        outbox = self._service.outbox
        return [] if outbox is None else outbox.after(seq, limit)

    def latest_event_seq(self) -> int:
        outbox = self._service.outbox
        return 0 if outbox is None else outbox.latest_seq()

    @property
    def event_gap_seconds(self) -> float:
        return self._service.settings.events.gap_seconds

    @property
    def event_poll_seconds(self) -> float:
        return self._service.settings.events.poll_seconds

    @property
    def event_heartbeat_seconds(self) -> float:
        return self._service.settings.events.heartbeat_seconds

    def webhooks(self) -> list[dict[str, Any]]:
        deliverer = self._service.deliverer
        return [] if deliverer is None else deliverer.status()

    # -- operator acts -------------------------------------------------------------------------------

    def approve(self, rec_id: int, by: str) -> None:
        self._service.actuator.approve(rec_id, self.now(), by)

    def reject(self, rec_id: int, by: str, reason: str = "") -> None:
        self._service.actuator.reject(rec_id, self.now(), by, reason)

    def set_kill_switch(self, on: bool, reason: str, by: str) -> None:
        self._service.actuator.set_kill_switch(on, reason, self.now(), by)

    def drain(self, cluster: str, by: str, effect: str, reason: str) -> Applied:
        """Raises PermissionError (nothing may be enacted) or :class:`ClusterRefused` (the hub said no)."""
        try:
            return self._service.actuator.drain(cluster, self.now(), by, effect, reason)
        except AdapterError as exc:
            raise ClusterRefused(str(exc), exc.status) from exc
