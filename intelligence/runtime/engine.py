"""The engine: one step pulls new samples, scores and learns them, forecasts, decides, acts.

``step(now)`` takes the time as an argument and never sleeps: the runner (or a
test) drives it. Only series of this replica's shard are modelled.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from collectors.base import Collector, PullResult
from intelligence.actuation.actuator import Actuator, ActuatorReport
from intelligence.decisions.placement import placement_scores_due
from intelligence.decisions.planner import DecisionInputs, plan
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.rescheduling import ClusterView, anomalous_clusters, fresh
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.storage.progress import EngineProgress
from intelligence.vocabulary import AnomalyScore, ClusterHealth, HealthState, SeriesKey
from models.bank import ModelBank
from models.kinds import ModelSpec

log = logging.getLogger(__name__)


def shard_of(key: SeriesKey, shards: int) -> int:
    """Stable across processes and restarts (unlike ``hash``)."""
    if shards == 1:
        return 0
    return zlib.crc32(f"{key.cluster}\x00{key.workload}".encode()) % shards


@dataclass(frozen=True, slots=True)
class StepReport:
    now: float
    samples: int
    series: int
    anomalies: int
    actuator: ActuatorReport
    seconds: float


@dataclass
class EngineStatus:
    steps: int = 0
    last_step_at: float | None = None
    last_step_seconds: float = 0.0
    samples: int = 0
    last_error: str | None = None
    health: Sequence[ClusterHealth] = field(default_factory=tuple)


class Engine:
    def __init__(
        self,
        collector: Collector,
        bank: ModelBank,
        forecasts: ForecastStore,
        anomalies: AnomalyStore,
        actuator: Actuator,
        book: PolicyBook,
        horizon: int,
        step_seconds: float,
        recommendation_ttl: timedelta,
        shard_index: int = 0,
        shard_count: int = 1,
        on_step: Callable[[StepReport], None] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        clusters: Mapping[str, ClusterView] | None = None,
        placement_score_name: str = "icos-headroom",
        progress: EngineProgress | None = None,
    ) -> None:
        self.collector = collector
        self.bank = bank
        self.forecasts = forecasts
        self.anomalies = anomalies
        self.actuator = actuator
        self.book = book
        self.clusters: Mapping[str, ClusterView] = clusters or {}  # what is known of each member: tier, capacity
        self.placement_score_name = placement_score_name
        self.horizon = horizon
        self.step_seconds = step_seconds
        self.ttl = recommendation_ttl
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.on_step = on_step
        self._timer = timer
        self.progress = progress  # where the last step's time is kept (durable), if anywhere
        self.shadow: ModelBank | None = None  # challengers, fed the same samples, never acting
        self.shadow_signals: frozenset[str] = frozenset()
        self.status = EngineStatus()

    def owns(self, key: SeriesKey) -> bool:
        return shard_of(key, self.shard_count) == self.shard_index

    @staticmethod
    def _log_events(events: list[AnomalyScore], detailed: int = 5) -> None:
        """Each event of a live step; a summary for a backfill's many."""
        if len(events) > detailed:
            worst = max(events, key=lambda e: e.score)
            log.info(
                "%d anomaly events in %d series; strongest %.2f on %s at %s",
                len(events),
                len({e.key for e in events}),
                worst.score,
                worst.key,
                datetime.fromtimestamp(worst.timestamp, UTC).isoformat(),
            )
            return
        for e in events:
            log.info(
                "anomaly %.2f on %s at %s: %s",
                e.score,
                e.key,
                datetime.fromtimestamp(e.timestamp, UTC).isoformat(),
                e.reason.detail,
            )

    def step(self, now: float) -> StepReport:
        """Pull what is new, then :meth:`process` it."""
        started = self._timer()
        return self.process(self.collector.pull(now), now, started)

    def forget(self, predicate: Callable[[SeriesKey], bool]) -> int:
        """Drop the models, forecasts and scores of the series ``predicate`` selects (they left)."""
        keys = [k for k in self.bank.series_keys() if predicate(k)]
        self.bank.drop(keys)
        if self.shadow is not None:
            self.shadow.drop([k for k in self.shadow.series_keys() if predicate(k)])
        self.forecasts.drop(keys)
        self.anomalies.drop(keys)
        if keys:
            log.info("forgot %d series (%s)", len(keys), ", ".join(sorted({k.cluster for k in keys})))
        return len(keys)

    def adopt_shadow(self, spec: ModelSpec, signal: str) -> bool:
        """A promoted challenger keeps what it learnt: its series of ``signal`` move from the shadow bank to this
        engine's (the champion's series of that signal are dropped). False when the shadow has no such series."""
        if self.shadow is None:
            return False
        replaced = [k for k in self.bank.series_keys() if k.signal == signal]
        if not self.bank.adopt(self.shadow, spec, signal):
            return False
        self.forecasts.drop(replaced)
        self.anomalies.drop(replaced)
        return True

    def _inputs(self, result: PullResult, now: float) -> DecisionInputs:
        """What the decider needs, gathered from the stores, the pull's health and the actuator."""
        policies = self.book.spec
        scaling = [f for signal in self.book.scaling_signals for f in self.forecasts.query(signal=signal)]
        if self.shard_count > 1:
            # A replica sees only its shard's workloads: cluster loads would be partial, and a destination's
            # headroom over-stated. Moves and placement scores need every shard's forecasts (not yet).
            return DecisionInputs(scaling, [], published=self.actuator.published)
        resched = policies.reschedule
        load = fresh(self.forecasts.query(signal=resched.signal), now, 3 * self.step_seconds) if resched.enabled else []
        health = {h.cluster: h for h in result.health}
        anomalous = anomalous_clusters(
            ((a.key.workload, a.score) for a in self.anomalies.latest(signal=resched.signal)), resched.anomaly_score
        )
        names = sorted(set(self.clusters) | set(health))
        clusters = []
        for name in names:
            known = self.clusters.get(name) or ClusterView(name, health[name].tier, 0.0)
            up = name not in health or health[name].state is not HealthState.DOWN
            clusters.append(replace(known, up=up, anomalous=name in anomalous))
        return DecisionInputs(scaling, load, clusters, self.actuator.last_moved(), self.actuator.published)

    def process(self, result: PullResult, now: float, started: float | None = None) -> StepReport:
        """Score, learn, forecast, decide and act on one pull's samples."""
        started = self._timer() if started is None else started
        if result.removed_clusters:
            gone = set(result.removed_clusters)
            self.forget(lambda k: k.cluster in gone)
        mine = [b for b in result.batches if len(b) and self.owns(b.key)]
        touched = [b.key for b in mine]
        samples = sum(len(b) for b in mine)
        scores = self.bank.observe_many(
            [(b.key, b.timestamps, b.values) for b in mine], report_at=self.anomalies.threshold
        )
        if self.shadow is not None and self.shadow_signals:
            shadowed = [(b.key, b.timestamps, b.values) for b in mine if b.key.signal in self.shadow_signals]
            self.shadow.observe_many(shadowed, report_at=2.0)  # scores above 1 never happen: no events
        events = self.anomalies.put_many(scores)
        self._log_events(events)
        self.forecasts.put_many(self.bank.forecast_many(touched, self.horizon, self.step_seconds))
        when = datetime.fromtimestamp(now, UTC)
        planned = plan(self._inputs(result, now), self.book, when, self.ttl)
        acted = self.actuator.handle(planned.decisions, when)
        publishing = self.book.spec.placement_scores
        self.actuator.publish_scores(
            planned.scores,
            self.placement_score_name,
            when,
            timedelta(minutes=publishing.valid_minutes),
            placement_scores_due(self.actuator.scores.published_at, when, publishing),
        )
        report = StepReport(now, samples, len(touched), len(events), acted, self._timer() - started)
        self.status.steps += 1
        self.status.last_step_at = now
        self.status.last_step_seconds = report.seconds
        self.status.samples += samples
        self.status.health = tuple(result.health)
        if self.progress is not None:
            self.progress.record(now)
        if self.on_step is not None:
            self.on_step(report)
        return report
