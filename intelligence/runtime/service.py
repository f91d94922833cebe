"""The assembled service: the engine and what runs around it (built by :mod:`intelligence.runtime.wiring`).

Nothing here runs at import. :meth:`Service.start` starts the loop thread (and the
tracker and champion watcher threads); each step reloads the configuration if it
changed, applies a newly promoted champion, runs the engine step, then logs accuracy and
checkpoints on their cadence; :meth:`Service.stop` stops the loop, checkpoints, and closes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from intelligence.actuation.actuator import Actuator
from intelligence.runtime.challengers import ModelSelection
from intelligence.runtime.champions import ChampionWatcher
from intelligence.runtime.checkpoints import Checkpoints
from intelligence.runtime.engine import Engine, StepReport
from intelligence.runtime.events import EventPump
from intelligence.runtime.model_specs import Champions
from intelligence.runtime.reload import ConfigReloader
from intelligence.runtime.runner import Runner
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.runtime.webhooks import WebhookDeliverer
from intelligence.settings import Settings
from intelligence.storage.database import Database
from intelligence.storage.outbox import Outbox
from intelligence.vocabulary import Clock, utc_now

log = logging.getLogger(__name__)


@dataclass
class Service:
    settings: Settings
    clock: Clock
    engine: Engine
    database: Database
    registry: CollectorRegistry  # the service's own Prometheus metrics (collector telemetry)
    checkpoints: Checkpoints
    tick_seconds: float  # real seconds between engine steps
    tracker: Any | None = None  # models.tracking.MlflowTracker when MLflow is enabled
    model_registry: Any | None = None  # models.tracking.ModelRegistry when MLflow is enabled
    watcher: ChampionWatcher | None = None
    models: ModelSelection | None = None
    reloader: ConfigReloader | None = None
    active: Champions = field(default_factory=dict)  # champions in use per signal (shared with the model factory)
    outbox: Outbox | None = None  # the events of the stream and the webhooks
    pump: EventPump | None = None  # anomalies and cluster health changes into the outbox
    deliverer: WebhookDeliverer | None = None
    started_at: float = field(default_factory=time.time)
    runner: Runner = field(init=False)

    def __post_init__(self) -> None:
        self.runner = Runner(self.run_once, self.tick_seconds, self._record_error, self.due_in, self.run_due)
        self.engine.on_step = self.on_step

    @property
    def actuator(self) -> Actuator:
        return self.engine.actuator

    @property
    def forecasts(self) -> ForecastStore:
        return self.engine.forecasts

    @property
    def anomalies(self) -> AnomalyStore:
        return self.engine.anomalies

    def _record_error(self, error: str | None) -> None:
        self.engine.status.last_error = error

    def warm_up(self, progress: Callable[[str, int, int], None] | None = None) -> StepReport:
        """The first step: backfill history (waiting for every cluster), reporting progress."""
        now = self.clock.now()
        self.engine.announce(now)
        backfill = getattr(self.engine.collector, "backfill", None)
        result = backfill(now, progress) if backfill is not None else self.engine.collector.pull(now)
        return self.engine.process(result, now)

    def start(self) -> None:
        if self.tracker is not None:
            self.tracker.start()
        if self.watcher is not None:
            self.watcher.start()
        if self.deliverer is not None:
            self.deliverer.start()
        self.runner.start()

    def run_once(self) -> StepReport:
        """One tick: reload the configuration if it changed, follow the registry's champions, run the engine step."""
        if self.reloader is not None and (reloaded := self.reloader.check()) is not None:
            self.settings = reloaded
        if self.models is not None:
            self.models.apply()
        return self.engine.step(self.clock.now())

    def due_in(self) -> float | None:
        """Real seconds until a scheduled action (a warm-up) must be written, if any."""
        due = self.actuator.next_due()
        return None if due is None else (due.timestamp() - self.clock.now()) / self.clock.speed

    def run_due(self) -> None:
        self.actuator.enact_due(utc_now(self.clock))

    def on_step(self, report: StepReport) -> None:
        if self.models is not None:
            self.models.evaluate()
        if self.pump is not None:
            try:
                # every replica polls every cluster: only the fleet's leader reports a cluster's health
                health = self.engine.status.health if self.engine.leading else ()
                self.pump.after_step(report.events, health, report.now)
            except Exception:
                log.exception("events of this step not written (cluster health is reported after the next step)")
        steps = self.engine.status.steps
        if self.outbox is not None and steps % 60 == 0:
            self.prune_events()
        if self.tracker is not None and steps % self.settings.mlflow.log_every_steps == 0:
            metrics = self.engine.bank.accuracy().as_metrics()
            metrics["step_seconds"] = report.seconds
            self.tracker.log_metrics(metrics, steps)
        if steps % self.settings.models.checkpoint_every_steps == 0:
            self.checkpoint()

    def prune_events(self) -> int:
        """Delete events past their retention (wall-clock hours) that every webhook subscriber has had."""
        assert self.outbox is not None
        older = datetime.now(UTC) - timedelta(hours=self.settings.events.retention_hours)
        pending = self.deliverer.oldest_pending() if self.deliverer is not None else None
        return self.outbox.prune(older, pending)

    def checkpoint(self, wait: bool = False) -> None:
        engine = self.engine
        if engine.outgoing and engine.handover is not None:  # sharded: held until their owner's checkpoint has them
            engine.outgoing = engine.handover.release(
                engine.bank, engine.outgoing, engine.fleet_count, engine.fleet_absent
            )
        self.checkpoints.take(engine.bank, wait, shards=engine.fleet_count)  # the split its series follow now

    def stop(self) -> None:
        self.runner.stop()
        if self.deliverer is not None:
            self.deliverer.stop()
        self.checkpoint()
        self.checkpoints.close()
        if self.tracker is not None:
            self.tracker.close()
        if self.watcher is not None:
            self.watcher.close()
        self.engine.collector.close()
        if self.actuator.kernel is not None:
            self.actuator.kernel.close()
        self.engine.replica.close()  # a leader hands leadership over at once
        self.database.close()
