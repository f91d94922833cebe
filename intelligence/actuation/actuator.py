"""The actuator: applies each workload's mode to the decisions, keeps the queue of approvals, the kill switch.

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

from intelligence.actuation.actions import ClusterTaint, Taint, Value, handlers
from intelligence.actuation.adapters.base import AdapterError, Applied, ClusterScore, MetaKernel
from intelligence.actuation.enactment import ActuatorReport, Enactor
from intelligence.decisions.outcomes import Decision, FloorState, Outcome
from intelligence.decisions.policies import PolicyBook
from intelligence.storage.audit import QuietAuditLog
from intelligence.storage.database import Database
from intelligence.storage.ledger import ActionLedger, ActionState
from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import (
    Lever,
    Mode,
    Recommendation,
    RecommendationStatus,
    WorkloadKind,
    WorkloadRef,
    recommendation_key,
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
    """Holds the floors in force (last recommended or enacted pod count per workload) and acts on decisions."""

    def __init__(self, database: Database, book: PolicyBook, ttl: timedelta, kernel: MetaKernel | None = None) -> None:
        if kernel is None and book.modes & {Mode.APPROVE, Mode.ENACT}:
            raise ValueError("policy mode approve/enact needs the Kubernetes adapters (kubernetes settings)")
        self.book = book
        self.envelope = book.spec.envelope
        self.ttl = ttl
        self.kernel = kernel
        self.store = RecommendationStore(database)
        self.ledger = ActionLedger(database)
        self.audit = QuietAuditLog(database)
        self.floors: dict[WorkloadRef, FloorState] = {}
        self.scores = ScoresState()
        self._extended: dict[WorkloadRef, datetime] = {}
        self.enactor = (
            Enactor(handlers(kernel), self.ledger, self.store, self.audit, book, self.killed, self._enacted)
            if kernel is not None
            else None
        )
        self._restore_floors()

    # -- state ---------------------------------------------------------------------------------------

    def _restore_floors(self) -> None:
        """Floors in force after a restart: enacted values (as the envelope let them through), else recommended."""
        enacted = self.store.find(status=RecommendationStatus.ENACTED, limit=10_000)
        open_ = self.store.find(status=RecommendationStatus.OPEN, limit=10_000)
        in_force = {a.recommendation_id: a for a in self.ledger.find(ActionState.ENACTED, limit=10_000)}
        for stored in sorted([*enacted, *open_], key=lambda s: s.id):
            rec = stored.recommendation
            if not rec.lever.scales:
                continue
            value = int(rec.value)
            if stored.status is RecommendationStatus.ENACTED:
                action = in_force.get(stored.id)
                if action is not None:
                    value = int(action.params[action.lever.param])
            elif self.book.for_workload(rec.target).mode is Mode.ENACT:
                continue  # recommended but not enacted: not in force
            self.floors[rec.target] = FloorState(value, rec.created_at)

    def _enacted(self, rec: Recommendation, value: Value, now: datetime) -> None:
        if rec.lever.scales:
            self.floors[rec.target] = FloorState(int(value), now)

    def killed(self) -> tuple[bool, str]:
        """The kill switch: the file named in the envelope, or the switch set through the API."""
        path = self.envelope.kill_switch_file
        if path is not None and path.exists():
            return True, f"kill switch file {path} exists"
        return self.ledger.switch()

    def last_moved(self) -> dict[tuple[str, str], datetime]:
        return self.ledger.last_moves()

    # -- the step ------------------------------------------------------------------------------------

    def handle(self, decisions: Iterable[Decision], now: datetime) -> ActuatorReport:
        report = ActuatorReport()
        for d in decisions:
            mode = self.book.for_workload(d.target).mode
            if d.outcome is not Outcome.RECOMMEND or d.recommendation is None:
                report.held += 1
                if d.outcome is Outcome.HOLD and mode is not Mode.OBSERVE:
                    self._keep_valid(d.target, now)
                continue
            rec = d.recommendation
            if mode is Mode.OBSERVE:
                detail = {"target": str(rec.target), "summary": d.explanation.summary}
                self.audit.record_once(("observed", rec.target), "observed", now, detail)
                continue
            rec_id, is_new = self.store.upsert(rec)
            if is_new:
                report.new += 1
                log.info("recommendation %d for %s: %s", rec_id, rec.target, d.explanation.summary)
                if mode is not Mode.ENACT and rec.lever.scales:
                    self.floors[rec.target] = FloorState(int(rec.value), now)
            else:
                report.refreshed += 1
            self._extended[rec.target] = now
            if mode is Mode.ENACT and self.enactor is not None:
                self.enactor.enact(rec_id, rec, now, report)
        if self.enactor is not None:
            for stored in self.store.find(status=RecommendationStatus.APPROVED, limit=1000):
                self.enactor.enact(stored.id, stored.recommendation, now, report)
            self.enactor.retry_due(now, report)
        self.store.expire(now)
        return report

    def _keep_valid(self, target: WorkloadRef, now: datetime) -> None:
        """The floor still fits the forecast: its open recommendation stays valid (written at most every ttl/4)."""
        last = self._extended.get(target)
        if last is not None and now - last < self.ttl / 4:
            return
        deployment = self.book.for_workload(target).kind is WorkloadKind.DEPLOYMENT
        lever = Lever.REPLICAS if deployment else Lever.KNATIVE_FLOOR
        self.store.extend(recommendation_key(target, lever), now, now + self.ttl)
        self._extended[target] = now

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
