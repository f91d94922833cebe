"""The actuator: applies each workload's mode to the decisions, keeps the queue of approvals, the kill switch.

Every replica publishes its decisions; only the one that leads the fleet enacts (its own
decisions, and in a sharded fleet the open ones of every replica's workloads in enact mode
and the approved ones), retries, ends pulses and publishes placement scores, so that the
envelope's budget is counted by one writer and no action is started twice.

observe    decisions reach the audit log only
recommend  recommendations are published (the default); nothing is enacted
approve    recommendations wait for POST /v1/recommendations/{id}/approve, then are enacted
enact      recommendations are enacted at once, within the envelope

Enacting goes through :mod:`intelligence.actuation.enactment` (the envelope, the action
ledger, one handler per lever) so that a crash never leads to the same action twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from intelligence.actuation.actions import ClusterTaint, Taint, handlers
from intelligence.actuation.adapters.base import AdapterError, Applied, ClusterScore, MetaKernel
from intelligence.actuation.enactment import ActuatorReport, Enactor
from intelligence.decisions.outcomes import Decision, Outcome
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.publication import Published
from intelligence.storage.audit import QuietAuditLog
from intelligence.storage.database import Database
from intelligence.storage.decided import Decided, DecidedTargets
from intelligence.storage.ledger import ActionLedger
from intelligence.storage.recommendations import Change, RecommendationStore
from intelligence.vocabulary import (
    Lever,
    Mode,
    Recommendation,
    RecommendationStatus,
    WorkloadRef,
)

log = logging.getLogger(__name__)

DRAIN_TAINT = "icos.eu/drain"  # ManagedCluster taint key set by a drain

__all__ = ["DRAIN_TAINT", "Actuator", "ActuatorReport", "ScoresState"]


@dataclass
class ScoresState:
    scores: dict[str, int] = field(default_factory=dict)
    computed_at: datetime | None = None
    published_at: datetime | None = None
    error: str | None = None


class Actuator:
    """Publishes decisions per mode, enacts them within the envelope, and ends enacted floor pulses on time."""

    def __init__(
        self,
        database: Database,
        book: PolicyBook,
        ttl: timedelta,
        kernel: MetaKernel | None = None,
        fleet: bool = False,
    ) -> None:
        if kernel is None and book.modes & {Mode.APPROVE, Mode.ENACT}:
            raise ValueError("policy mode approve/enact needs the Kubernetes adapters (kubernetes settings)")
        self.book = book
        self.envelope = book.spec.envelope
        self.ttl = ttl
        self.kernel = kernel
        self.store = RecommendationStore(database)
        self.ledger = ActionLedger(database)
        self.audit = QuietAuditLog(database)
        self.decided = DecidedTargets(database)
        self.published: dict[tuple[WorkloadRef, Lever], Published] = self.decided.all()
        self.scores = ScoresState()
        self.scheduled: dict[int, Recommendation] = {}  # enactable, but needed later (in_force_at): written then
        self.fleet = fleet  # one of several replicas: the leader enacts what the others decided too
        self.leading = True  # whether this replica enacts (it leads the fleet); see follow_leadership
        self.enactor = (
            Enactor(handlers(kernel), self.ledger, self.store, self.audit, book, self.killed)
            if kernel is not None
            else None
        )

    # -- state ---------------------------------------------------------------------------------------

    def killed(self) -> tuple[bool, str]:
        """The kill switch: the file named in the envelope, or the switch set through the API."""
        path = self.envelope.kill_switch_file
        if path is not None and path.exists():
            return True, f"kill switch file {path} exists"
        return self.ledger.switch()

    def last_moved(self) -> dict[tuple[str, str], datetime]:
        return self.ledger.last_moves()

    def follow_leadership(self, leading: bool, now: datetime) -> int:
        """Become the fleet's enacting replica, or stop being it.

        Becoming it: take up what every replica last decided per target, and settle the actions a
        previous leader (or this process, before a crash) left unfinished; returns how many. No
        longer leading: forget the values scheduled for later (the new leader schedules them).
        """
        self.leading = leading
        if not leading:
            self.scheduled.clear()
            return 0
        self.published = self.decided.all()
        return self.recover(now)

    # -- the step ------------------------------------------------------------------------------------

    def handle(self, decisions: Iterable[Decision], now: datetime) -> ActuatorReport:
        report = ActuatorReport()
        enacting = self.enactor is not None and self.leading
        handled: set[int] = set()
        publishing: list[tuple[Decision, Recommendation, Mode]] = []
        for d in decisions:
            mode = self.book.for_workload(d.target).mode
            if d.outcome is not Outcome.RECOMMEND or d.recommendation is None:
                report.held += 1
                continue
            rec = d.recommendation
            if mode is Mode.OBSERVE:
                detail = {"target": str(rec.target), "summary": d.explanation.summary}
                self.audit.record_once(("observed", rec.target), "observed", now, detail)
                continue
            publishing.append((d, rec, mode))
        published = self.store.publish_many([rec for _, rec, _ in publishing])  # one transaction for the step
        decided: list[Decided] = []
        for (d, rec, mode), (rec_id, change) in zip(publishing, published, strict=True):
            key = (rec.target, rec.lever)
            known = self.published.get(key)
            if change is Change.REFRESHED:
                report.refreshed += 1
            else:
                report.new += change is Change.OPENED
                report.revised += change is Change.REVISED
                log.info("recommendation %d (%s) for %s: %s", rec_id, change.value, rec.target, d.explanation.summary)
            until = rec.valid_until if rec.lever.scales else None
            if change is not Change.REFRESHED or (known is not None and known.until != until):
                decided.append(Decided(rec.target, rec.lever, rec.value, known, until))
            if mode is Mode.ENACT and enacting:
                self._enact_when_needed(rec_id, rec, now, report)
                handled.add(rec_id)
        for entry, state in zip(decided, self.decided.record_many(decided, now), strict=True):  # one transaction too
            self.published[(entry.target, entry.lever)] = state
        if enacting:
            assert self.enactor is not None
            for stored in self.store.find(status=RecommendationStatus.APPROVED, limit=1000):
                self._enact_when_needed(stored.id, stored.recommendation, now, report)
            if self.fleet and Mode.ENACT in self.book.modes:
                self._enact_the_fleets(now, report, handled)
            self.enactor.retry_due(now, report)
            self._end_pulses(now, report)
        self.store.expire(now)
        return report

    def _enact_the_fleets(self, now: datetime, report: ActuatorReport, handled: set[int]) -> None:
        """The leader of a sharded fleet: the open recommendations the other replicas published for workloads in
        enact mode (each enacted once: the ledger holds one action per recommendation)."""
        for stored in self.store.find(status=RecommendationStatus.OPEN, limit=10_000):
            rec = stored.recommendation
            if stored.id not in handled and self.book.for_workload(rec.target).mode is Mode.ENACT:
                self._enact_when_needed(stored.id, rec, now, report)

    def _end_pulses(self, now: datetime, report: ActuatorReport) -> None:
        """Enacted floors whose pulse is over go back to the policy's min-scale, unless a newer pulse runs."""
        assert self.enactor is not None
        for action in self.ledger.enacted_floors():
            stored = self.store.get(action.recommendation_id)
            if stored is None or stored.recommendation.valid_until is None or stored.recommendation.valid_until > now:
                continue
            newer = self.store.current(stored.recommendation.dedup_key, now)
            baseline = self.book.for_workload(action.target).knative.min_scale
            self.enactor.release(action, baseline, now, report, newer is not None and newer.id != stored.id)

    def _enact_when_needed(self, rec_id: int, rec: Recommendation, now: datetime, report: ActuatorReport) -> None:
        """Enact now, or, for a value needed later (a warm-up), keep it until :meth:`enact_due` at that time."""
        assert self.enactor is not None
        if rec.valid_until is not None and rec.valid_until <= now:
            return  # its time is over (a pulse approved after it ended): it expires, nothing is written
        if rec.in_force_at is not None and rec.in_force_at > now:
            self.scheduled[rec_id] = rec
            return
        self.scheduled.pop(rec_id, None)
        self.enactor.enact(rec_id, rec, now, report)

    def next_due(self) -> datetime | None:
        """When the next scheduled value must be written (None: nothing scheduled)."""
        return min((rec.in_force_at for rec in self.scheduled.values() if rec.in_force_at), default=None)

    def enact_due(self, now: datetime) -> ActuatorReport:
        """Write the scheduled values whose time has come, if they still stand (open or approved, unchanged)."""
        report = ActuatorReport()
        if not self.leading:
            return report
        for rec_id, rec in sorted(self.scheduled.items()):
            if rec.in_force_at is not None and rec.in_force_at > now:
                continue
            del self.scheduled[rec_id]
            stored = self.store.get(rec_id)
            standing = (RecommendationStatus.OPEN, RecommendationStatus.APPROVED)
            if self.enactor and stored and stored.status in standing and stored.recommendation.params == rec.params:
                self.enactor.enact(rec_id, stored.recommendation, now, report)
        return report

    def recover(self, now: datetime) -> int:
        """After a restart: settle the actions a crash left unfinished (see :meth:`Enactor.recover`)."""
        return self.enactor.recover(now) if self.enactor is not None else 0

    # -- approvals, the kill switch, drains ---------------------------------------------------------

    def approve(self, rec_id: int, now: datetime, by: str) -> None:
        """Queue an open recommendation for enactment (its workload must be in approve or enact mode)."""
        stored = self.store.get(rec_id)
        if stored is None:
            raise LookupError(f"recommendation {rec_id} does not exist")
        mode = self.book.for_workload(stored.recommendation.target).mode
        if mode not in (Mode.APPROVE, Mode.ENACT):
            raise PermissionError(f"{stored.recommendation.target} is in {mode.value} mode: nothing is enacted there")
        if not self.store.set_status(
            rec_id, RecommendationStatus.APPROVED, now, (RecommendationStatus.OPEN,), {"by": by}
        ):
            raise ValueError(f"recommendation {rec_id} is {stored.status.value}, not open")

    def reject(self, rec_id: int, now: datetime, by: str, reason: str = "") -> None:
        stored = self.store.get(rec_id)
        if stored is None:
            raise LookupError(f"recommendation {rec_id} does not exist")
        if not self.store.set_status(
            rec_id,
            RecommendationStatus.REJECTED,
            now,
            (RecommendationStatus.OPEN, RecommendationStatus.APPROVED),
            {"by": by, "reason": reason},
        ):
            raise ValueError(f"recommendation {rec_id} is {stored.status.value}, not open or approved")

    def set_kill_switch(self, on: bool, reason: str, now: datetime, by: str = "api") -> None:
        self.ledger.set_switch(on, reason, now)
        self.audit.record("kill-switch-on" if on else "kill-switch-off", now, {"reason": reason, "by": by})
        log.warning(
            "kill switch %s by %s: %s", "ON, nothing will be enacted" if on else "off", by, reason or "(no reason)"
        )

    def drain(self, cluster: str, now: datetime, by: str, effect: str = "NoSelect", reason: str = "") -> Applied:
        """Taint a ManagedCluster so that OCM Placements stop selecting it (an operator's decision, audited).

        Raises PermissionError when nothing may be enacted (no adapters, or the kill switch is on).
        """
        if self.kernel is None:
            raise PermissionError("the Kubernetes adapters are not set up (no workload is in approve or enact mode)")
        killed, why = self.killed()
        if killed:
            raise PermissionError(f"not drained: {why}")
        applied = ClusterTaint(self.kernel).apply(cluster, Taint(DRAIN_TAINT, by, effect))
        detail = {"cluster": cluster, "effect": effect, "by": by, "reason": reason, "changed": applied.changed}
        self.audit.record("drained", now, detail)
        log.warning("cluster %s drained (%s) by %s: %s", cluster, effect, by, reason or "(no reason)")
        return applied

    # -- placement scores ----------------------------------------------------------------------------

    def publish_scores(self, scores: dict[str, int], name: str, now: datetime, valid: timedelta, due: bool) -> None:
        """Keep the latest scores for the API; in enact mode publish them as AddOnPlacementScores when due."""
        self.scores.scores, self.scores.computed_at = scores, now
        if not due or self.kernel is None or self.book.spec.mode is not Mode.ENACT or not scores:
            return
        killed, why = self.killed()
        if killed:
            self.audit.record_once("scores", "scores-not-published", now, {"reason": why})
            return
        try:
            self.kernel.publish_placement_scores(
                name, [ClusterScore(c, v) for c, v in sorted(scores.items())], now + valid
            )
        except AdapterError as exc:
            self.scores.error = str(exc)
            log.warning("placement scores not published: %s", exc)
            return
        self.scores.published_at, self.scores.error = now, None
