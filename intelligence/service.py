"""The composition root: builds the engine and everything around it from settings.

Nothing here runs at import. :func:`build_service` wires; :meth:`Service.start`
starts the loop thread; :meth:`Service.stop` stops it, checkpoints, and closes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collectors.base import Collector
from intelligence.actuator import Actuator
from intelligence.clock import Clock, ScaledClock, SystemClock
from intelligence.domain import SeriesKey
from intelligence.engine import Engine, StepReport
from intelligence.recommendations import RecommendationStore
from intelligence.settings import Settings
from intelligence.stores import AnomalyStore, ForecastStore
from models import checkpoint
from models.bank import ModelBank, ModelFactory
from models.registry import make_detector, make_forecaster

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot start with this configuration or state; the message says why."""


def simulation_origin(settings: Settings, today: datetime) -> float:
    """Where the embedded continuum's clock starts: today (UTC) at ``simulation.start_hour_utc``."""
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight + timedelta(hours=settings.simulation.start_hour_utc)).timestamp()


def model_spec(settings: Settings, signal: str) -> dict[str, Any]:
    """Kinds and params of the models of one signal (per-signal overrides applied)."""
    m = settings.models
    over = m.per_signal.get(signal, {})
    fparams = {
        "step_seconds": float(settings.step_seconds),
        "horizon": m.horizon_steps,
        "interval": m.interval,
        **m.forecaster_params,
        **over.get("forecaster_params", {}),
    }
    dparams = {**m.detector_params, **over.get("detector_params", {})}
    return {
        "forecaster": over.get("forecaster", m.forecaster),
        "forecaster_params": fparams,
        "detector": over.get("detector", m.detector),
        "detector_params": dparams,
    }


def model_factory(settings: Settings) -> ModelFactory:
    def build(key: SeriesKey) -> tuple[Any, Any, str, str]:
        spec = model_spec(settings, key.signal)
        return (
            make_forecaster(spec["forecaster"], **spec["forecaster_params"]),
            make_detector(spec["detector"], **spec["detector_params"]),
            spec["forecaster"],
            spec["detector"],
        )

    return build


def model_signature(settings: Settings) -> dict[str, Any]:
    """What a checkpoint must match to be loaded."""
    signals = sorted({s.name for s in settings.signals} | {"requests", "cpu", "memory"})
    return {s: model_spec(settings, s) for s in signals}


def build_collector(settings: Settings, origin: float) -> Collector:
    if settings.embedded:
        from collectors.simulated import SimulatedCollector, SimulatedContinuum

        sim = settings.simulation
        return SimulatedCollector(SimulatedContinuum(sim.seed, origin, sim.step_seconds), sim.history_hours * 3600.0)
    from collectors.prometheus import PrometheusCollector

    return PrometheusCollector.from_settings(settings)


@dataclass
class Service:
    settings: Settings
    clock: Clock
    engine: Engine
    forecasts: ForecastStore
    anomalies: AnomalyStore
    recommendations: RecommendationStore
    tracker: Any | None
    checkpoint_path: Path
    signature: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def tick_seconds(self) -> float:
        """Real seconds between engine steps."""
        if self.settings.embedded:
            return self.settings.simulation.step_seconds / self.settings.simulation.speed
        return float(self.settings.collection.step_seconds)

    def start(self) -> None:
        if self.tracker is not None:
            self.tracker.start()
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            begun = time.monotonic()
            try:
                self.engine.step(self.clock.now())
                self.engine.status.last_error = None
            except Exception as exc:
                self.engine.status.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("engine step failed")
            self._stop.wait(max(0.0, self.tick_seconds - (time.monotonic() - begun)))

    def on_step(self, report: StepReport) -> None:
        steps = self.engine.status.steps
        if self.tracker is not None and steps % self.settings.mlflow.log_every_steps == 0:
            metrics = self.engine.bank.accuracy().as_metrics()
            metrics["step_seconds"] = report.seconds
            self.tracker.log_metrics(metrics, steps)
        if steps % self.settings.models.checkpoint_every_steps == 0:
            self.checkpoint()

    def checkpoint(self) -> None:
        payload = checkpoint.dump(self.engine.bank.series, self.signature)
        checkpoint.write_atomically(self.checkpoint_path, payload)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.checkpoint()
        except OSError as exc:
            log.error("final checkpoint to %s failed: %s", self.checkpoint_path, exc)
        if self.tracker is not None:
            self.tracker.close()
        self.engine.collector.close()
        self.recommendations.close()


def _tracker(settings: Settings) -> Any | None:
    if not settings.mlflow.enabled:
        return None
    from models.tracking import MlflowTracker

    uri = settings.mlflow_uri
    params = {f"{signal}.{k}": v for signal, spec in model_signature(settings).items() for k, v in spec.items()}
    params["embedded"] = settings.embedded
    return MlflowTracker(
        uri,
        settings.mlflow.experiment,
        f"online-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
        params,
        tags={"icos.shard": f"{settings.engine.shard_index}/{settings.engine.shard_count}"},
        timeout_seconds=settings.mlflow.timeout_seconds,
    )


def build_service(settings: Settings, clock: Clock | None = None, with_tracker: bool = True) -> Service:
    """Wire the service. Restores the model bank from the state directory when it can."""
    state_dir = settings.storage.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"storage.state_dir {str(state_dir)!r} cannot be created: {exc.strerror}") from exc
    bank = ModelBank(model_factory(settings), interval=settings.models.interval)
    signature = model_signature(settings)
    checkpoint_path = state_dir / "checkpoints" / f"bank-shard{settings.engine.shard_index}.pkl"
    if checkpoint_path.exists():
        try:
            bank.series = checkpoint.load(checkpoint_path, signature)
            log.info("restored %d series from %s", len(bank.series), checkpoint_path)
        except checkpoint.CheckpointError as exc:
            raise StartupError(str(exc)) from exc
    origin = simulation_origin(settings, datetime.fromtimestamp(clock.now(), UTC) if clock else datetime.now(UTC))
    if clock is None:
        if settings.embedded:
            resume = max((m.last_timestamp for m in bank.series.values()), default=-math.inf)
            clock = ScaledClock(max(origin, resume), settings.simulation.speed)
        else:
            clock = SystemClock()
    try:
        store = RecommendationStore(settings.storage.resolved_database_url())
    except Exception as exc:
        raise StartupError(f"storage.database_url: cannot open the database: {exc}") from exc
    ttl = timedelta(minutes=settings.policy.recommendation_ttl_minutes)
    try:
        actuator = Actuator(store, settings.policy.mode, settings.policy.knative, ttl)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    forecasts = ForecastStore()
    anomalies = AnomalyStore(settings.models.anomaly_threshold, settings.engine.anomaly_events_kept)
    engine = Engine(
        collector=build_collector(settings, origin),
        bank=bank,
        forecasts=forecasts,
        anomalies=anomalies,
        actuator=actuator,
        policy=settings.policy.knative,
        horizon=settings.models.horizon_steps,
        step_seconds=settings.step_seconds,
        recommendation_ttl=ttl,
        shard_index=settings.engine.shard_index,
        shard_count=settings.engine.shard_count,
    )
    service = Service(
        settings,
        clock,
        engine,
        forecasts,
        anomalies,
        store,
        _tracker(settings) if with_tracker else None,
        checkpoint_path,
        signature,
    )
    engine.on_step = service.on_step
    return service
