"""The engine: one step pulls new samples, scores and learns them, forecasts, decides, acts.

``step(now)`` takes the time as an argument and never sleeps: the runner (or a
test) drives it. Only the series this replica owns are modelled (:mod:`~intelligence.runtime.replica`);
in a sharded fleet every replica decides the Knative floors of its own workloads, and the
leader alone decides moves and placement scores (from every shard's part of the load) and
enacts, for the whole fleet. When the split of the series it follows changes (the fleet's
size, a shard absent or back: :mod:`~intelligence.runtime.split`), a replica takes the series
it now owns over with their state and their history before the step's own samples.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from collectors.base import Collector, PullResult
from intelligence.actuation.actuator import Actuator, ActuatorReport
from intelligence.decisions.placement import placement_scores_due
from intelligence.decisions.planner import DecisionInputs, plan
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.rescheduling import (
    ClusterView,
    LoadPart,
    anomalous_clusters,
    fresh,
    is_anomalous,
    load_parts,
    merge_parts,
)
from intelligence.runtime import handover
from intelligence.runtime.handover import Handover
from intelligence.runtime.history import ForecastHistory
from intelligence.runtime.ownership import Ownership
from intelligence.runtime.replica import Replica
from intelligence.runtime.split import FleetSplit, SplitChange
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.storage.progress import EngineProgress
from intelligence.vocabulary import AnomalyScore, ClusterHealth, HealthState, SeriesBatch, SeriesKey
from models.bank import ModelBank
from models.kinds import ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepReport:
    now: float
    samples: int
    series: int
    anomalies: int
    events: Sequence[AnomalyScore]  # this step's anomaly events (score >= the threshold)
    actuator: ActuatorReport
    seconds: float


@dataclass
class EngineStatus:
    steps: int = 0
    last_step_at: float | None = None
    last_step_seconds: float = 0.0
    samples: int = 0
    last_error: str | None = None
    out_of_step: str | None = None  # sharded: this replica runs another fleet size than the one in force (why, how)
    health: Sequence[ClusterHealth] = field(default_factory=tuple)


def after_history(history: Sequence[SeriesBatch], batches: Sequence[SeriesBatch]) -> list[SeriesBatch]:
    """``history`` then ``batches``, each batch of a series in ``history`` cut to the samples after its history's."""
    if not history:
        return list(batches)
    ends = {b.key: float(b.timestamps[-1]) for b in history}
    out = list(history)
    for b in batches:
        end = ends.get(b.key)
        if end is None:
            out.append(b)
        elif len(later := b.after(end)):
            out.append(later)
    return out


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
        history: ForecastHistory | None = None,
        replica: Replica | None = None,
        takeover_after: float = 120.0,
    ) -> None:
        self.collector = collector
        self.bank = bank
        self.forecasts = forecasts
        self.anomalies = anomalies
        self.actuator = actuator
        self.book = book
        self.clusters: Mapping[str, ClusterView] = clusters or {}  # what is known of each member: tier, capacity
        self.placement_score_name = placement_score_name
        self.history = history  # past forecasts next to the samples, for the API
        self.horizon = horizon
        self.step_seconds = step_seconds
        self.ttl = recommendation_ttl
        self.replica = replica or Replica(Ownership(shard_index, shard_count))
        self.split = FleetSplit(self.replica, step_seconds, takeover_after)  # sharded: the split it follows
        self.handover: Handover | None = None  # sharded: the shared checkpoints series move through
        self.leading = False  # whether this replica led the fleet at its last step (see _lead)
        self.outgoing: set[SeriesKey] = set()  # held, not modelled: series another shard now owns (see handover)
        self._incomplete_since: float | None = None  # sharded leader: when the fleet's load was last incomplete
        self.on_step = on_step
        self._timer = timer
        self.progress = progress  # where the last step's time is kept (durable), if anywhere
        self.shadow: ModelBank | None = None  # challengers, fed the same samples, never acting
        self.shadow_signals: frozenset[str] = frozenset()
        self.status = EngineStatus()

    @property
    def ownership(self) -> Ownership:
        """The split this replica follows: its own, or the fleet's in force (see :mod:`~intelligence.runtime.split`)."""
        return self.split.ownership

    @property
    def aside(self) -> bool:
        return self.split.aside

    @property
    def fleet_count(self) -> int:
        return self.split.count

    @property
    def fleet_absent(self) -> frozenset[int]:
        return self.split.absent

    def announce(self, now: float) -> None:
        self.split.announce(now)

    @property
    def shard_index(self) -> int:
        return self.ownership.index

    @property
    def shard_count(self) -> int:
        return self.ownership.count

    def owns(self, key: SeriesKey) -> bool:
        return self.split.owns(key)

    @property
    def series(self) -> int:
        """The series this replica models (its bank may also hold series it is handing over)."""
        return len(self.bank) - len(self.outgoing)

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
        if self.history is not None:
            self.history.drop(keys)
        self.outgoing.difference_update(keys)
        if self.replica.latest is not None:
            self.replica.latest.drop(keys)
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

    def _take_split(self, change: SplitChange, now: float, pulled: Sequence[SeriesBatch]) -> list[SeriesBatch]:
        """The split this replica follows changed: adopt the series it owns now (their newest saved state, then their
        history since, from the collector), and hold those another shard owns until that shard has checkpointed
        them. Returns the history of the series it took over (to learn before this step's samples)."""
        mine = self.replica.ownership
        if change.after is None:
            self.outgoing = set(self.bank.series_keys())
            self._unserve(self.outgoing)
            log.info("%s holds its %d series until their owners have them", mine, len(self.outgoing))
            return []
        adopted = self.handover.adopt(self.bank, change.after) if self.handover is not None else {}
        self.outgoing = handover.outgoing(self.bank, change.after)
        self._unserve(self.outgoing)
        history = self._recollect(change.before, change.after, now, pulled)
        log.info(
            "%s now models %s: %d series from the checkpoints of other shards, history of %d series recollected"
            " (%d samples), %d series held until their new owners have them",
            mine,
            change.after,
            sum(adopted.values()),
            len(history),
            sum(len(b) for b in history),
            len(self.outgoing),
        )
        return history

    def _recollect(
        self, before: Ownership | None, after: Ownership, now: float, pulled: Sequence[SeriesBatch]
    ) -> list[SeriesBatch]:
        """The history the collector still has of the series ``after`` owns and ``before`` did not: since the oldest
        state this replica has of them, or the whole backfill window when ``pulled`` shows one it has no state of."""
        if self.status.steps == 0:
            return []  # the first step's pull is the backfill: the history of every series is in it

        def gained(key: SeriesKey) -> bool:
            return after.owns(key) and not (before is not None and before.owns(key))

        progress = self.bank.progress()
        learnt = [last for key, (last, _) in progress.items() if gained(key)]
        cold = any(gained(b.key) and b.key not in progress for b in pulled)
        if not learnt and not cold:
            return []
        recollect = getattr(self.collector, "recollect", None)
        if recollect is None:
            log.warning(
                "%s: the collector cannot return history again: the series it takes over go on from their saved "
                "state with new samples only",
                after,
            )
            return []
        result: PullResult = recollect(now, None if cold else min(learnt))
        return [b for b in result.batches if len(b) and gained(b.key)]

    def _unserve(self, keys: Iterable[SeriesKey]) -> None:
        """Forget the forecasts and scores of series another replica models now (their model state is held)."""
        keys = list(keys)
        self.forecasts.drop(keys)
        self.anomalies.drop(keys)
        if self.history is not None:
            self.history.drop(keys)

    def _stand_aside(self, when: datetime, started: float) -> StepReport:
        """Model, decide and lead nothing this step (the fleet in force has no shard of this index); keep serving."""
        if self.leading:
            self.replica.leadership.step_down()
            self.actuator.follow_leadership(False, when)
            self.leading = False
        report = StepReport(when.timestamp(), 0, 0, 0, (), ActuatorReport(), self._timer() - started)
        self._count_step(report)
        return report

    def _count_step(self, report: StepReport) -> None:
        self.status.steps += 1
        self.status.last_step_at = report.now
        self.status.last_step_seconds = report.seconds

    def _lead(self, when: datetime) -> bool:
        """Whether this replica leads the fleet for this step; a change is logged and passed to the actuator."""
        leading = self.replica.leadership.check()
        if leading != self.leading:
            if leading:
                log.info(
                    "%s leads the fleet (%s): moves, placement scores and enactment are its work",
                    self.ownership,
                    self.replica.leadership.how,
                )
            else:
                log.warning("%s no longer leads the fleet", self.ownership)
            settled = self.actuator.follow_leadership(leading, when)
            if settled:
                log.info("%s settled %d action(s) a previous leader left unfinished", self.ownership, settled)
            self.leading = leading
        return leading

    def _views(self, result: PullResult, anomalous: set[str]) -> list[ClusterView]:
        """Every known cluster, up unless its last pull failed, and whether its workloads look anomalous."""
        health = {h.cluster: h for h in result.health}
        clusters = []
        for name in sorted(set(self.clusters) | set(health)):
            known = self.clusters.get(name) or ClusterView(name, health[name].tier, 0.0)
            up = name not in health or health[name].state is not HealthState.DOWN
            clusters.append(replace(known, up=up, anomalous=name in anomalous))
        return clusters

    def _inputs(self, result: PullResult, now: float, leading: bool) -> DecisionInputs:
        """What the decider needs, gathered from the stores, the pull's health and the actuator."""
        policies = self.book.spec
        scaling = [f for signal in self.book.scaling_signals for f in self.forecasts.query(signal=signal)]
        resched = policies.reschedule
        load = fresh(self.forecasts.query(signal=resched.signal), now, 3 * self.step_seconds) if resched.enabled else []
        scores = ((a.key.workload, a.score) for a in self.anomalies.latest(signal=resched.signal))
        if not self.ownership.sharded:
            anomalous = anomalous_clusters(scores, resched.anomaly_score)
            clusters = self._views(result, anomalous)
            return DecisionInputs(scaling, load, clusters, self.actuator.last_moved(), self.actuator.published)
        floors_only = DecisionInputs(scaling, [], published=self.actuator.published)
        loads = self.replica.loads
        if loads is None:
            return floors_only  # nothing shared: a cluster's load would be partial, and a destination's over-stated
        mine = load_parts(load, resched.quantile, scores, resched.anomaly_score)
        known = set(self.clusters) | {h.cluster for h in result.health}
        loads.write(self.shard_index, self.shard_count, mine, known, now)
        if not leading:
            return floors_only
        fleet = loads.read(self.shard_count, now - 3 * self.step_seconds)
        missing = sorted(set(range(self.shard_count)) - fleet.reporting - self.ownership.absent)  # absent: taken over
        if missing:
            if self._incomplete_since is None:
                self._incomplete_since = now
                log.warning(
                    "%s: no fresh load from shard(s) %s of %d: no moves and no placement scores until every shard "
                    "reports",
                    self.ownership,
                    ", ".join(map(str, missing)),
                    self.shard_count,
                )
            return floors_only
        if self._incomplete_since is not None:
            log.info("%s: every shard reports its load again: moves and placement scores resume", self.ownership)
            self._incomplete_since = None
        merged: dict[str, LoadPart] = merge_parts(fleet.parts)
        clusters = self._views(result, {name for name, part in merged.items() if is_anomalous(part)})
        return DecisionInputs(
            scaling, [], clusters, self.actuator.last_moved(), self.actuator.published, list(merged.values())
        )

    def _share(self, touched: Sequence[SeriesKey], now: float) -> None:
        """Sharded: the latest forecasts and scores of this step's series, for the other replicas to serve."""
        latest = self.replica.latest
        if latest is None:
            return
        forecasts = [fc for key in touched if (fc := self.forecasts.get(key)) is not None]
        scores = [s for key in touched if (s := self.anomalies.get(key)) is not None]
        latest.put(self.shard_index, forecasts, scores, now)

    def process(self, result: PullResult, now: float, started: float | None = None) -> StepReport:
        """Score, learn, forecast, decide and act on one pull's samples."""
        started = self._timer() if started is None else started
        when = datetime.fromtimestamp(now, UTC)
        change = self.split.update(now)
        self.status.out_of_step = self.split.note
        taken = self._take_split(change, now, result.batches) if change is not None else []
        if self.aside:
            return self._stand_aside(when, started)
        leading = self._lead(when)
        if result.removed_clusters:
            gone = set(result.removed_clusters)
            self.forget(lambda k: k.cluster in gone)
            taken = [b for b in taken if b.key.cluster not in gone]
        mine = after_history(taken, [b for b in result.batches if len(b) and self.owns(b.key)])
        touched = list(dict.fromkeys(b.key for b in mine))
        samples = sum(len(b) for b in mine)
        scores = self.bank.observe_many(
            [(b.key, b.timestamps, b.values) for b in mine], report_at=self.anomalies.threshold
        )
        if self.shadow is not None and self.shadow_signals:
            shadowed = [(b.key, b.timestamps, b.values) for b in mine if b.key.signal in self.shadow_signals]
            self.shadow.observe_many(shadowed, report_at=2.0)  # scores above 1 never happen: no events
        events = self.anomalies.put_many(scores)
        self._log_events(events)
        made = self.bank.forecast_many(touched, self.horizon, self.step_seconds)
        self.forecasts.put_many(made)
        if self.history is not None:
            self.history.record(mine, made)
        self._share(touched, now)
        planned = plan(self._inputs(result, now, leading), self.book, when, self.ttl)
        acted = self.actuator.handle(planned.decisions, when)
        if leading:
            publishing = self.book.spec.placement_scores
            self.actuator.publish_scores(
                planned.scores,
                self.placement_score_name,
                when,
                timedelta(minutes=publishing.valid_minutes),
                placement_scores_due(self.actuator.scores.published_at, when, publishing),
            )
        report = StepReport(now, samples, len(touched), len(events), tuple(events), acted, self._timer() - started)
        self._count_step(report)
        self.status.samples += samples
        self.status.health = tuple(result.health)
        if self.progress is not None:
            self.progress.record(now)
        if self.on_step is not None:
            self.on_step(report)
        return report
