"""The composition root: builds the engine and everything around it from settings.

Nothing here runs at import. :func:`build_service` wires; :meth:`Service.start`
starts the loop thread; :meth:`Service.stop` stops it, checkpoints, and closes.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from collectors.base import Collector
from collectors.telemetry import CollectorTelemetry
from intelligence.actuation.actuator import Actuator
from intelligence.actuation.adapters.base import MetaKernel
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.rescheduling import ClusterView
from intelligence.runtime.champions import ChampionWatcher, load_active, registry_name, save_active
from intelligence.runtime.engine import Engine, StepReport
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.settings import ConfigError, Settings, load_settings
from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import Clock, Mode, ScaledClock, SeriesKey, SystemClock, utc_now
from models import checkpoint
from models.bank import ModelBank, ModelFactory
from models.kinds import BadModelParams, ModelSpec, UnknownModelKind, make_detector, make_forecaster

log = logging.getLogger(__name__)

RELOADABLE = ("clusters", "signals")


class StartupError(Exception):
    """The service cannot start with this configuration or state; the message says why."""


def simulation_origin(settings: Settings, today: datetime) -> float:
    """Where the embedded continuum's clock starts: today (UTC) at ``simulation.start_hour_utc``."""
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight + timedelta(hours=settings.simulation.start_hour_utc)).timestamp()


def model_spec(settings: Settings, signal: str, step_seconds: float) -> dict[str, Any]:
    """Kinds and params of the models of one signal (per-signal overrides applied)."""
    m = settings.models
    over = m.per_signal.get(signal, {})
    fparams = {
        "step_seconds": float(step_seconds),
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


def model_factory(
    settings: Settings, step_seconds: float, active: dict[str, dict[str, Any]] | None = None
) -> ModelFactory:
    """Models per series: the signal's champion in ``active`` (read at every build), else the settings'."""

    def build(key: SeriesKey) -> ModelSpec:
        champion = (active or {}).get(key.signal)
        return ModelSpec.from_dict(champion["spec"] if champion else model_spec(settings, key.signal, step_seconds))

    return build


def model_signals(settings: Settings) -> list[str]:
    return sorted({s.name for s in settings.signals} | {"requests", "cpu", "memory"} | set(settings.models.per_signal))


def model_signature(
    settings: Settings, step_seconds: float, active: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What a checkpoint must match to be loaded: the spec every signal runs."""
    active = active or {}
    return {
        s: active[s]["spec"] if s in active else model_spec(settings, s, step_seconds) for s in model_signals(settings)
    }


@dataclass
class Source:
    """Where samples come from, the spacing of the series, and the clock that fits."""

    collector: Collector
    step_seconds: float
    clock: Clock
    tick_seconds: float  # real seconds between engine steps


def build_source(settings: Settings, clock: Clock | None, telemetry: CollectorTelemetry, resume: float) -> Source:
    if settings.replaying:
        from collectors.replay import ReplayCollector, ReplayFormatError, infer_step

        assert settings.replay.path is not None
        try:
            replay = ReplayCollector.from_file(settings.replay.path, settings.replay.cluster)
        except ReplayFormatError as exc:
            raise StartupError(f"replay.path: {exc}") from exc
        step = infer_step(replay.timestamps())
        warm = min((replay.end - replay.start) / 2, settings.simulation.history_hours * 3600.0)
        start = max(replay.start + warm, resume)
        return Source(replay, step, clock or ScaledClock(start, settings.replay.speed), step / settings.replay.speed)
    if settings.embedded:
        from collectors.simulated import SimulatedCollector, SimulatedContinuum

        sim = settings.simulation
        origin = simulation_origin(settings, utc_now(clock) if clock else datetime.now(UTC))
        collector = SimulatedCollector(SimulatedContinuum(sim.seed, origin, sim.step_seconds), sim.history_hours * 3600)
        return Source(
            collector,
            sim.step_seconds,
            clock or ScaledClock(max(origin, resume), sim.speed),
            sim.step_seconds / sim.speed,
        )
    from collectors.prometheus import PrometheusCollector
    from intelligence.runtime import collector_specs

    step = settings.collection.step_seconds
    targets = [collector_specs.cluster_target(c) for c in settings.clusters]
    signals, spec = collector_specs.signals(settings), collector_specs.collection_spec(settings)
    return Source(PrometheusCollector(targets, signals, spec, telemetry), step, clock or SystemClock(), step)


@dataclass
class Service:
    settings: Settings
    clock: Clock
    engine: Engine
    forecasts: ForecastStore
    anomalies: AnomalyStore
    recommendations: RecommendationStore
    tracker: Any | None
    registry: CollectorRegistry
    checkpoint_path: Path
    signature: dict[str, Any]
    tick_seconds: float
    config_path: Path | None = None
    started_at: float = field(default_factory=time.time)
    _config_mtime: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _writer: checkpoint.CheckpointWriter | None = None
    model_registry: Any | None = None  # models.tracking.ModelRegistry when MLflow is enabled
    champions: ChampionWatcher | None = None
    active: dict[str, dict[str, Any]] = field(default_factory=dict)  # champions in use, per signal
    challengers: dict[str, dict[str, Any]] = field(default_factory=dict)  # run in shadow, per signal
    _windows: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = field(default_factory=dict)
    last_checkpoint_pause: float = 0.0  # seconds the engine spent copying its state for the last checkpoint

    @property
    def writer(self) -> checkpoint.CheckpointWriter:
        if self._writer is None:
            self._writer = checkpoint.CheckpointWriter(self.checkpoint_path, self.signature, self._written)
        return self._writer

    def warm_up(self, progress: Callable[[str, int, int], None] | None = None) -> StepReport:
        """The first step: backfill history (waiting for every cluster), reporting progress."""
        now = self.clock.now()
        backfill = getattr(self.engine.collector, "backfill", None)
        result = backfill(now, progress) if backfill is not None else self.engine.collector.pull(now)
        return self.engine.process(result, now)

    def start(self) -> None:
        if self.tracker is not None:
            self.tracker.start()
        if self.champions is not None:
            self.champions.start()
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            begun = time.monotonic()
            try:
                self.reload_if_changed()
                self.apply_champions()
                self.engine.step(self.clock.now())
                self.engine.status.last_error = None
            except Exception as exc:
                self.engine.status.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("engine step failed")
            self._stop.wait(max(0.0, self.tick_seconds - (time.monotonic() - begun)))

    def reload_if_changed(self) -> bool:
        """Re-read the configuration file when it changed; apply clusters and signals without a restart.

        A file with errors is refused (each problem logged) and the running configuration kept.
        """
        if self.config_path is None or not self.settings.collection.reload_config:
            return False
        try:
            mtime = self.config_path.stat().st_mtime_ns
        except OSError as exc:
            if self._config_mtime != -1:
                log.error("configuration %s cannot be read (%s); keeping the running one", self.config_path, exc)
                self._config_mtime = -1
            return False
        if mtime == self._config_mtime:
            return False
        self._config_mtime = mtime
        try:
            new = load_settings(self.config_path)
        except ConfigError as exc:
            log.error("configuration reload refused, keeping the running one: %s", exc)
            return False
        if new.embedded != self.settings.embedded:
            log.error(
                "%s: switching between the embedded continuum and real clusters needs a restart", self.config_path
            )
            return False
        later = [
            g for g in type(new).model_fields if g not in RELOADABLE and getattr(new, g) != getattr(self.settings, g)
        ]
        if later:
            log.warning("%s: changes to %s take effect at the next restart", self.config_path, ", ".join(later))
        if all(getattr(new, g) == getattr(self.settings, g) for g in RELOADABLE):
            return False
        from collectors.prometheus import PrometheusCollector
        from intelligence.runtime import collector_specs

        collector = self.engine.collector
        if isinstance(collector, PrometheusCollector):
            targets = [collector_specs.cluster_target(c) for c in new.clusters]
            collector.reconfigure(targets, collector_specs.signals(new))
        kept_signals = {s.name for s in new.signals}
        self.engine.forget(lambda k: k.signal not in kept_signals)
        self.settings = self.settings.model_copy(update={g: getattr(new, g) for g in RELOADABLE})
        log.info(
            "configuration reloaded from %s: %d cluster(s), %d signal(s)",
            self.config_path,
            len(new.clusters),
            len(new.signals),
        )
        return True

    def apply_champions(self) -> list[str]:
        """Switch every signal whose champion changed in the registry; returns those signals.

        A challenger that ran in shadow keeps the state it learnt there; otherwise the
        signal's series restart on the new model. The checkpoint signature follows, and
        ``champions.json`` keeps the choice for the next start.
        """
        if self.champions is None:
            return []
        changed = self.champions.changes(self.active)
        for signal, champion in sorted(changed.items()):
            known = signal in self.active
            self.active[signal] = champion
            if self._adopt_shadow(signal, champion):
                log.info(
                    "signal %s now runs its challenger, version %d, with the state it learnt in shadow",
                    signal,
                    champion["version"],
                )
            elif known or champion["spec"] != model_spec(self.settings, signal, self.engine.step_seconds):
                dropped = self.engine.forget(lambda k, s=signal: k.signal == s)  # type: ignore[misc]
                log.info(
                    "signal %s now runs %s version %d (%s on %s); %d series restart on it",
                    signal,
                    registry_name(signal),
                    champion["version"],
                    champion["spec"].get("detector"),
                    champion["spec"].get("forecaster"),
                    dropped,
                )
        if changed and self.tracker is not None:  # the service's run records which versions ran (and its checkpoints)
            self.tracker.log_metrics(
                {f"champion_version.{s}": float(c["version"]) for s, c in changed.items()}, self.engine.status.steps
            )
        if changed:
            self.signature = model_signature(self.settings, self.engine.step_seconds, self.active)
            self.writer.signature = self.signature
            save_active(self.settings.storage.state_dir, self.active)
        self._sync_challengers()
        return sorted(changed)

    def _adopt_shadow(self, signal: str, champion: dict[str, Any]) -> bool:
        """The new champion is the challenger that ran in shadow: take over its fleet instead of a cold start."""
        shadow = self.engine.shadow
        if shadow is None or self.challengers.get(signal, {}).get("spec") != champion["spec"]:
            return False
        spec = ModelSpec.from_dict(champion["spec"])
        fleet = shadow.fleets.get(spec)
        bank = self.engine.bank
        if fleet is None or spec in bank.fleets or any(k.signal != signal for k in fleet.slots):
            return False
        adopted = shadow.fleets.pop(spec)
        self.engine.forget(lambda k: k.signal == signal)  # the old champion's series (and what is left in shadow)
        bank.fleets[spec] = adopted
        del self.challengers[signal]
        self.engine.shadow_signals = frozenset(self.challengers)
        self._windows.pop(signal, None)
        return True

    def _sync_challengers(self) -> None:
        """Run the registry's challengers in shadow (a second bank fed the same samples)."""
        assert self.champions is not None
        wanted = {s: c for s, c in self.champions.challengers().items() if s in self.active}
        if wanted == self.challengers:
            return
        if self.engine.shadow is None:
            self.engine.shadow = ModelBank(
                model_factory(self.settings, self.engine.step_seconds, self.challengers),
                interval=self.settings.models.interval,
            )
        for signal in set(self.challengers) | set(wanted):
            if self.challengers.get(signal) != wanted.get(signal):
                shadow = self.engine.shadow
                shadow.drop([k for k in shadow.series_keys() if k.signal == signal])
                self._windows.pop(signal, None)
                if signal in wanted:  # the window starts now: the champion's counters so far, the challenger's zero
                    self._windows[signal] = (_counters(self.engine.bank.accuracy(signal)), (0.0, 0.0, 0.0))
                    log.info(
                        "challenger %s version %d runs in shadow", registry_name(signal), wanted[signal]["version"]
                    )
        self.challengers.clear()
        self.challengers.update(wanted)
        self.engine.shadow_signals = frozenset(wanted)

    def evaluate_challengers(self) -> list[str]:
        """After a window of live samples, ask to promote each challenger that beat its champion; returns those."""
        shadow, asked = self.engine.shadow, list[str]()
        if shadow is None or self.champions is None:
            return asked
        window, margin = self.settings.mlflow.challenger_window_samples, self.settings.mlflow.promotion_margin
        for signal, challenger in sorted(self.challengers.items()):
            now = (_counters(self.engine.bank.accuracy(signal)), _counters(shadow.accuracy(signal)))
            start = self._windows.setdefault(signal, now)
            champ = [a - b for a, b in zip(now[0], start[0], strict=True)]
            chall = [a - b for a, b in zip(now[1], start[1], strict=True)]
            if chall[0] < window or champ[2] <= 0 or chall[2] <= 0:
                continue
            ours, theirs = chall[1] / chall[2], champ[1] / champ[2]
            self._windows[signal] = now  # the next window starts here
            log.info(
                "challenger %s version %d over %d live samples: relative MAE %.4f vs champion's %.4f",
                registry_name(signal),
                challenger["version"],
                int(chall[0]),
                ours,
                theirs,
            )
            if ours <= theirs * (1.0 - margin):
                self.champions.request_promotion(
                    signal,
                    {self.active[signal]["version"]: theirs, challenger["version"]: ours},
                    challenger["version"],
                    margin,
                )
                asked.append(signal)
        return asked

    def on_step(self, report: StepReport) -> None:
        self.evaluate_challengers()
        steps = self.engine.status.steps
        if self.tracker is not None and steps % self.settings.mlflow.log_every_steps == 0:
            metrics = self.engine.bank.accuracy().as_metrics()
            metrics["step_seconds"] = report.seconds
            self.tracker.log_metrics(metrics, steps)
        if steps % self.settings.models.checkpoint_every_steps == 0:
            self.checkpoint()

    def _written(self, path: Path, size: int, seconds: float) -> None:
        """On the writer thread: every n-th checkpoint also goes to the MLflow run (a copy, uploaded later)."""
        log.debug("checkpoint %s written: %.1f MB in %.2f s", path, size / 1e6, seconds)
        every = self.settings.mlflow.checkpoint_artifact_every
        if self.tracker is None or not every or self.writer.written % every:
            return
        copy = path.parent / "upload" / str(self.writer.written) / path.name  # the artifact keeps the file's name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        self.tracker.log_artifact(copy, "checkpoints")

    def checkpoint(self, wait: bool = False) -> None:
        """Copy the bank's state (the engine's only pause) and let the writer thread put it on disk."""
        started = time.perf_counter()
        snapshot = checkpoint.snapshot_copy(self.engine.bank.snapshot())
        self.last_checkpoint_pause = time.perf_counter() - started
        self.writer.submit(snapshot)
        if wait:
            self.writer.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.checkpoint()
        self.writer.close(timeout=120)
        if self.writer.last_error is not None:
            log.error("final checkpoint to %s failed: %s", self.checkpoint_path, self.writer.last_error)
        if self.tracker is not None:
            self.tracker.close()
        if self.champions is not None:
            self.champions.close()
        self.engine.collector.close()
        if self.engine.actuator.kernel is not None:
            self.engine.actuator.kernel.close()
        self.recommendations.close()


def _fetch_checkpoint(settings: Settings, path: Path) -> None:
    """No local state (a new node, no volume): resume from the newest checkpoint uploaded to MLflow, if any."""
    from models.tracking import fetch_checkpoint

    try:
        run_id = fetch_checkpoint(settings.mlflow_uri, settings.mlflow.experiment, path.name, path)
    except Exception as exc:  # noqa: BLE001 - MLflow down: start cold rather than not at all
        log.warning("no local checkpoint and MLflow at %s unavailable (%s): starting cold", settings.mlflow_uri, exc)
        return
    if run_id is not None:
        log.info("no local checkpoint: fetched %s from MLflow run %s", path.name, run_id)


def _counters(acc: Any) -> tuple[float, float, float]:
    """(scored, absolute error, naive absolute error) of a :class:`BankAccuracy`."""
    return (float(acc.scored), acc.abs_error, acc.abs_naive)


def _tracker(settings: Settings, signature: dict[str, Any]) -> Any | None:
    if not settings.mlflow.enabled:
        return None
    from models.tracking import MlflowTracker

    params = {f"{signal}.{k}": v for signal, spec in signature.items() for k, v in spec.items()}
    params["embedded"] = settings.embedded
    return MlflowTracker(
        settings.mlflow_uri,
        settings.mlflow.experiment,
        f"online-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
        params,
        tags={"icos.shard": f"{settings.engine.shard_index}/{settings.engine.shard_count}"},
        timeout_seconds=settings.mlflow.timeout_seconds,
    )


def _check_models(settings: Settings, step: float) -> None:
    for signal, spec in model_signature(settings, step).items():
        try:
            make_forecaster(spec["forecaster"], **spec["forecaster_params"])
            make_detector(spec["detector"], **spec["detector_params"])
        except (UnknownModelKind, BadModelParams) as exc:
            raise StartupError(f"models (signal {signal!r}): {exc}") from exc


def cluster_catalog(settings: Settings) -> dict[str, ClusterView]:
    """Tier, capacity and labels of each member cluster: configured, or the simulated continuum's."""
    if settings.embedded and not settings.replaying:
        from collectors.simulated import CLUSTERS

        return {c.name: ClusterView(c.name, c.tier, c.capacity_cores) for c in CLUSTERS}
    return {c.name: ClusterView(c.name, c.tier, c.capacity_cores, dict(c.labels)) for c in settings.clusters}


def _meta_kernel(settings: Settings) -> MetaKernel:
    """The Kubernetes adapters, only built when some workload may be enacted on (imports kubernetes)."""
    from intelligence.actuation.adapters.metakernel import KubeMetaKernel

    try:
        kernel = KubeMetaKernel(settings.kubernetes)
        kernel.check()
        return kernel
    except Exception as exc:
        raise StartupError(f"kubernetes: cannot set up the adapters for approve/enact mode: {exc}") from exc


def build_service(
    settings: Settings, clock: Clock | None = None, with_tracker: bool = True, config_path: Path | None = None
) -> Service:
    """Wire the service. Restores the model bank from the state directory when it can."""
    state_dir = settings.storage.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"storage.state_dir {str(state_dir)!r} cannot be created: {exc.strerror}") from exc
    checkpoint_path = state_dir / "checkpoints" / f"bank-shard{settings.engine.shard_index}.pkl"
    registry = CollectorRegistry(auto_describe=True)
    telemetry = CollectorTelemetry(registry)
    restored: dict[str, Any] = {}
    source = build_source(settings, clock, telemetry, resume=-math.inf)
    signals = model_signals(settings)
    active = {s: c for s, c in load_active(state_dir).items() if s in signals} if settings.mlflow.enabled else {}
    signature = model_signature(settings, source.step_seconds, active)
    _check_models(settings, source.step_seconds)
    if not checkpoint_path.exists() and settings.mlflow.enabled and settings.mlflow.tracking_uri:
        _fetch_checkpoint(settings, checkpoint_path)
    if checkpoint_path.exists():
        try:
            restored = checkpoint.load(checkpoint_path, signature)
        except checkpoint.CheckpointError as exc:
            source.collector.close()
            raise StartupError(str(exc)) from exc
    bank = ModelBank(
        model_factory(settings, source.step_seconds, active), interval=settings.models.interval, **restored
    )
    if restored:
        log.info("restored %d series from %s", len(bank), checkpoint_path)
        resume = bank.latest_timestamp()
        if clock is None and settings.embedded and resume > source.clock.now():
            source.collector.close()
            source = build_source(settings, None, telemetry, resume)  # the simulated clock goes on from there
    try:
        store = RecommendationStore(settings.storage.resolved_database_url())
    except Exception as exc:
        source.collector.close()
        raise StartupError(f"storage.database_url: cannot open the database: {exc}") from exc
    ttl = timedelta(minutes=settings.policy.recommendation_ttl_minutes)
    book = PolicyBook(settings.policy)
    try:
        kernel = _meta_kernel(settings) if book.modes & {Mode.APPROVE, Mode.ENACT} else None
    except StartupError:
        source.collector.close()
        store.close()
        raise
    actuator = Actuator(store, book, ttl, kernel)
    settled = actuator.recover(utc_now(source.clock))
    if settled:
        log.info("settled %d action(s) a previous run left unfinished", settled)
    forecasts = ForecastStore()
    anomalies = AnomalyStore(settings.models.anomaly_threshold, settings.engine.anomaly_events_kept)
    engine = Engine(
        collector=source.collector,
        bank=bank,
        forecasts=forecasts,
        anomalies=anomalies,
        actuator=actuator,
        book=book,
        horizon=settings.models.horizon_steps,
        step_seconds=source.step_seconds,
        recommendation_ttl=ttl,
        shard_index=settings.engine.shard_index,
        shard_count=settings.engine.shard_count,
        clusters=cluster_catalog(settings),
        placement_score_name=settings.kubernetes.placement_score_name,
    )
    service = Service(
        settings,
        source.clock,
        engine,
        forecasts,
        anomalies,
        store,
        _tracker(settings, signature) if with_tracker else None,
        registry,
        checkpoint_path,
        signature,
        source.tick_seconds,
        config_path,
    )
    service.active = active  # the same dict the factory reads
    if settings.mlflow.enabled:
        from models.tracking import ModelRegistry

        service.model_registry = ModelRegistry(
            settings.mlflow_uri, f"{settings.mlflow.experiment}-models", settings.mlflow.timeout_seconds
        )
        if settings.mlflow.follow_champions:
            configured = {s: model_spec(settings, s, source.step_seconds) for s in signals}
            service.champions = ChampionWatcher(
                service.model_registry, configured, settings.mlflow.registry_poll_seconds
            )
    if config_path is not None:
        try:
            service._config_mtime = config_path.stat().st_mtime_ns
        except OSError:
            service._config_mtime = None
    engine.on_step = service.on_step
    return service
