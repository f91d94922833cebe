"""The composition root: builds the service from the settings. Nothing else reads the settings tree.

Every component receives a plain spec built here (the policy's, the adapters', the
collector's, the models'), so that no component below knows the settings exist.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from collectors.telemetry import CollectorTelemetry
from intelligence.actuation.actuator import Actuator
from intelligence.actuation.adapters.base import MetaKernel
from intelligence.decisions.policies import PolicyBook
from intelligence.runtime import handover
from intelligence.runtime.challengers import ModelSelection
from intelligence.runtime.champions import ChampionWatcher, load_active
from intelligence.runtime.checkpoints import Checkpoints, checkpoint_path, restore
from intelligence.runtime.engine import Engine
from intelligence.runtime.events import EventPump
from intelligence.runtime.history import ForecastHistory
from intelligence.runtime.model_specs import (
    StartupError,
    check_models,
    model_factory,
    model_signals,
    model_signature,
    model_spec,
)
from intelligence.runtime.ownership import Ownership
from intelligence.runtime.reload import ConfigReloader
from intelligence.runtime.replica import Replica
from intelligence.runtime.service import Service
from intelligence.runtime.sources import build_source, cluster_catalog
from intelligence.runtime.specs import kubernetes_spec, policy_spec, webhook_specs
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.runtime.webhooks import WebhookDeliverer
from intelligence.settings import Settings
from intelligence.storage.anomalies import AnomalyEvents
from intelligence.storage.database import Database, DatabaseError, open_database
from intelligence.storage.fleet_loads import FleetLoads
from intelligence.storage.fleet_members import FleetMembers
from intelligence.storage.latest import SharedLatest
from intelligence.storage.leadership import leadership_for
from intelligence.storage.outbox import Outbox
from intelligence.storage.progress import EngineProgress
from intelligence.vocabulary import Clock, Mode, SeriesKey, utc_now
from models.bank import ModelBank

log = logging.getLogger(__name__)

__all__ = ["StartupError", "build_service"]


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


def _meta_kernel(settings: Settings) -> MetaKernel:
    """The Kubernetes adapters, only built when some workload may be enacted on (imports kubernetes)."""
    from intelligence.actuation.adapters.metakernel import KubeMetaKernel

    try:
        kernel = KubeMetaKernel(kubernetes_spec(settings.kubernetes))
        kernel.check()
        return kernel
    except Exception as exc:
        raise StartupError(f"kubernetes: cannot set up the adapters for approve/enact mode: {exc}") from exc


def _database(settings: Settings) -> Database:
    try:
        return open_database(settings.storage.resolved_database_url())
    except DatabaseError as exc:
        raise StartupError(f"storage.database_url: cannot open the database {exc}") from exc


def _replica(settings: Settings, database: Database) -> Replica:
    """This replica's shard, its election and what it shares (only when sharded)."""
    engine = settings.engine
    ownership = Ownership(engine.shard_index, engine.shard_count)
    if not ownership.sharded:
        return Replica(ownership)
    if settings.storage.database_url is None:
        raise StartupError(
            f"engine.shard_count is {engine.shard_count}: the replicas must share one decision database "
            "(set storage.database_url, e.g. PostgreSQL)"
        )
    if settings.storage.checkpoint_dir is None:
        log.warning(
            "%s without storage.checkpoint_dir: checkpoints stay in %s, so after a change of the shard count the "
            "series that move start without their state unless every replica sees that directory",
            ownership,
            settings.storage.resolved_checkpoint_dir(),
        )
    leadership = leadership_for(database, engine.shard_index, sharded=True)
    members = FleetMembers(database)
    return Replica(ownership, leadership, FleetLoads(database), SharedLatest(database), members, time.time())


def _take_over(bank: ModelBank, replica: Replica, path: Path, signature: dict[str, Any]) -> set[SeriesKey]:
    """Sharded: adopt the series this replica owns from the other shards' checkpoints; returns the series it holds
    but no longer owns (handed over at later checkpoints)."""
    if not replica.sharded:
        return set()
    handover.adopt(bank, replica.ownership, path.parent, path, signature)
    held = handover.outgoing(bank, replica.ownership)
    if held:
        log.info(
            "%s holds %d series other shards own now: kept in its checkpoints until their owners have them",
            replica.ownership,
            len(held),
        )
    return held


def build_service(
    settings: Settings, clock: Clock | None = None, with_tracker: bool = True, config_path: Path | None = None
) -> Service:
    """Wire the service. Restores the model bank from the state directory when it can."""
    state_dir = settings.storage.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"storage.state_dir {str(state_dir)!r} cannot be created: {exc.strerror}") from exc
    registry = CollectorRegistry(auto_describe=True)
    telemetry = CollectorTelemetry(registry)
    database = _database(settings)
    progress = EngineProgress(database, settings.engine.shard_index)
    closing: list[Any] = [database]
    try:
        replica = _replica(settings, database)
        closing.append(replica)
        source = build_source(settings, clock, telemetry, resume=-math.inf)
        closing.append(source.collector)
        signals = model_signals(settings)
        active = {s: c for s, c in load_active(state_dir).items() if s in signals} if settings.mlflow.enabled else {}
        signature = model_signature(settings, source.step_seconds, active)
        path = checkpoint_path(settings)
        check_models(settings, source.step_seconds)
        restored = restore(settings, path, signature)
        bank = ModelBank(
            model_factory(settings, source.step_seconds, active), interval=settings.models.interval, **restored
        )
        if restored:
            log.info("restored %d series from %s", len(bank), path)
        held = _take_over(bank, replica, path, signature)
        # a simulated or replayed clock goes on from the last step processed (kept in the database at every
        # step), never back to the checkpoint: nothing is decided twice, or dated before what was decided
        resume = max(bank.latest_timestamp(), progress.last_step() or -math.inf)
        if clock is None and settings.embedded and resume > source.clock.now():
            source.collector.close()
            source = build_source(settings, None, telemetry, resume)
            closing[-1] = source.collector
        book = PolicyBook(policy_spec(settings.policy))
        kernel = _meta_kernel(settings) if book.modes & {Mode.APPROVE, Mode.ENACT} else None
    except BaseException:
        for resource in closing:
            resource.close()
        raise
    ttl = timedelta(minutes=settings.policy.recommendation_ttl_minutes)
    actuator = Actuator(database, book, ttl, kernel, fleet=replica.sharded)
    leading = replica.leadership.check()
    settled = actuator.follow_leadership(leading, utc_now(source.clock))
    if settled:
        log.info("settled %d action(s) a previous run left unfinished", settled)
    engine = Engine(
        collector=source.collector,
        bank=bank,
        forecasts=ForecastStore(),
        anomalies=AnomalyStore(
            settings.models.anomaly_threshold,
            AnomalyEvents(database, settings.storage.anomaly_retention_days * 86_400.0),
        ),
        progress=progress,
        actuator=actuator,
        book=book,
        horizon=settings.models.horizon_steps,
        step_seconds=source.step_seconds,
        recommendation_ttl=ttl,
        clusters=cluster_catalog(settings),
        placement_score_name=settings.kubernetes.placement_score_name,
        history=ForecastHistory(source.step_seconds, settings.history.keep_steps, settings.history.horizons),
        replica=replica,
        takeover_after=settings.engine.takeover_after_seconds,
    )
    engine.leading, engine.outgoing = leading, held
    if replica.sharded:
        log.info("%s%s", replica.ownership, f": leads the fleet ({replica.leadership.how})" if leading else "")
    outbox = Outbox(database)
    events = settings.events
    deliverer = (
        WebhookDeliverer(
            outbox,
            webhook_specs(settings),
            events.source,
            {"icostimebasis": settings.time_basis},
            poll_seconds=events.poll_seconds,
            gap_seconds=events.gap_seconds,
        )
        if events.webhooks
        else None
    )
    pump = EventPump(
        outbox,
        events.anomaly_min_score,
        events.anomaly_max_age_steps * source.step_seconds,
        {s.name: s.unit for s in settings.signals},
        on_written=deliverer.wake if deliverer is not None else None,
    )
    tracker = _tracker(settings, signature) if with_tracker else None
    checkpoints = Checkpoints(
        path,
        signature,
        tracker,
        settings.mlflow.checkpoint_artifact_every,
        meta={"shard": settings.engine.shard_index, "shards": settings.engine.shard_count},
    )
    if replica.sharded:  # series move through the shared checkpoints at run time too (the fleet's size changes)
        engine.handover = handover.Handover(path, lambda: checkpoints.signature)
    service = Service(
        settings=settings,
        clock=source.clock,
        engine=engine,
        database=database,
        registry=registry,
        checkpoints=checkpoints,
        tick_seconds=source.tick_seconds,
        tracker=tracker,
        reloader=ConfigReloader(config_path, settings, engine) if config_path is not None else None,
        active=active,
        outbox=outbox,
        pump=pump,
        deliverer=deliverer,
    )
    if settings.mlflow.enabled:
        _follow_champions(service, settings, source.step_seconds, signals)
    return service


def _follow_champions(service: Service, settings: Settings, step_seconds: float, signals: list[str]) -> None:
    """The model registry; and, unless switched off, each signal's champion and challenger in shadow."""
    from models.tracking import ModelRegistry

    service.model_registry = ModelRegistry(
        settings.mlflow_uri, f"{settings.mlflow.experiment}-models", settings.mlflow.timeout_seconds
    )
    if not settings.mlflow.follow_champions:
        return
    configured = {s: model_spec(settings, s, step_seconds) for s in signals}
    service.watcher = ChampionWatcher(service.model_registry, configured, settings.mlflow.registry_poll_seconds)

    def on_signature(signature: dict[str, Any]) -> None:
        service.checkpoints.signature = signature

    service.models = ModelSelection(
        settings, service.engine, service.watcher, service.active, on_signature, service.tracker
    )
