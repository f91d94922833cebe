"""Where samples come from (a replayed file, the embedded simulated continuum, or Prometheus / Thanos), the
spacing of the series, and the clock that fits; and what is known of each member cluster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collectors.base import Collector
from collectors.telemetry import CollectorTelemetry
from intelligence.decisions.rescheduling import ClusterView
from intelligence.runtime import specs
from intelligence.runtime.model_specs import StartupError
from intelligence.settings import Settings
from intelligence.vocabulary import Clock, ScaledClock, SystemClock, utc_now


@dataclass
class Source:
    collector: Collector
    step_seconds: float
    clock: Clock
    tick_seconds: float  # real seconds between engine steps


def simulation_origin(settings: Settings, today: datetime) -> float:
    """Where the embedded continuum's clock starts: today (UTC) at ``simulation.start_hour_utc``."""
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight + timedelta(hours=settings.simulation.start_hour_utc)).timestamp()


def build_source(settings: Settings, clock: Clock | None, telemetry: CollectorTelemetry, resume: float) -> Source:
    """The collector for these settings; a simulated or replayed clock starts at ``resume`` if that is later."""
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

    step = settings.collection.step_seconds
    targets = [specs.cluster_target(c) for c in settings.clusters]
    prometheus = PrometheusCollector(targets, specs.signals(settings), specs.collection_spec(settings), telemetry)
    return Source(prometheus, step, clock or SystemClock(), step)


def cluster_catalog(settings: Settings) -> dict[str, ClusterView]:
    """Tier, capacity and labels of each member cluster: configured, or the simulated continuum's."""
    if settings.embedded and not settings.replaying:
        from collectors.simulated import CLUSTERS

        return {c.name: ClusterView(c.name, c.tier, c.capacity_cores) for c in CLUSTERS}
    return {c.name: ClusterView(c.name, c.tier, c.capacity_cores, dict(c.labels)) for c in settings.clusters}
