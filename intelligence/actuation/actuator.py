"""The actuator: applies each workload's mode and the safety envelope to decisions, and enacts them.

observe    decisions reach the audit log only
recommend  recommendations are published (the default); nothing is enacted
approve    recommendations wait for POST /v1/recommendations/{id}/approve, then are enacted
enact      recommendations are enacted at once, within the envelope

Enacting goes through the meta-kernel (``intelligence.adapters``) and the action
ledger (``intelligence.ledger``): intent first, then the verified write, then the
outcome, so that a crash never leads to the same action twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from intelligence.actuation.adapters.base import AdapterError, Applied, ClusterScore, MetaKernel, PermanentError
from intelligence.decisions.envelope import Proposal, check
from intelligence.decisions.knative_floor import Decision, FloorState, Outcome
from intelligence.decisions.policies import PolicyBook
from intelligence.storage.ledger import ActionLedger, ActionState
from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import (
    ActionKind,
    Lever,
    Mode,
    Recommendation,
    RecommendationStatus,
    WorkloadKind,
    WorkloadRef,
    recommendation_key,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4  # temporary failures of one action before it is given up
RETRY_AFTER = timedelta(seconds=30)  # first retry; doubles
DRAIN_TAINT = "icos.eu/drain"  # ManagedCluster taint key set by a drain


@dataclass
class ActuatorReport:
    new: int = 0
    refreshed: int = 0
    held: int = 0
    enacted: int = 0
    refused: int = 0
    failed: int = 0


@dataclass
class ScoresState:
    scores: dict[str, int] = field(default_factory=dict)
    computed_at: datetime | None = None
    published_at: datetime | None = None
    error: str | None = None


def _value(rec: Recommendation) -> int | None:
    for name in ("min_scale", "replicas"):
        if name in rec.params:
            return int(rec.params[name])
    return None


def _target(text: str) -> WorkloadRef:
    cluster, namespace, name = text.split("/", 2)
    return WorkloadRef(cluster, namespace, name)


class Actuator:
    """Holds the floors in force (last recommended or enacted min-scale per workload) and acts on decisions."""

    def __init__(
        self,
        store: RecommendationStore,
        book: PolicyBook,
        ttl: timedelta,
        kernel: MetaKernel | None = None,
    ) -> None:
        if kernel is None and book.modes & {Mode.APPROVE, Mode.ENACT}:
            raise ValueError("policy mode approve/enact needs the Kubernetes adapters (kubernetes settings)")
        self.store = store
        self.book = book
        self.envelope = book.settings.envelope
        self.ttl = ttl
        self.kernel = kernel
        self.ledger = ActionLedger(store.engine)
        self.floors: dict[WorkloadRef, FloorState] = {}
        self.scores = ScoresState()
        self._extended: dict[WorkloadRef, datetime] = {}
        self._said: dict[object, str] = {}  # last audit text per recommendation / target: no repeats
        self._restore_floors()

    # -- state ---------------------------------------------------------------------------------------

    def _restore_floors(self) -> None:
        """Floors in force after a restart: enacted values (as the envelope let them through), else recommended."""
        enacted = self.store.find(status=RecommendationStatus.ENACTED, limit=10_000)
        open_ = self.store.find(status=RecommendationStatus.OPEN, limit=10_000)
        in_force = {a.recommendation_id: a.params for a in self.ledger.find(ActionState.ENACTED, limit=10_000)}
        for stored in sorted([*enacted, *open_], key=lambda s: s.id):
            rec, value = stored.recommendation, _value(stored.recommendation)
            if value is None:
                continue
            if stored.status is RecommendationStatus.ENACTED:
                params = in_force.get(stored.id)
                if params:
                    value = int(next(iter(params.values())))
            elif self.book.for_workload(rec.target).mode is Mode.ENACT:
                continue  # recommended but not enacted: not in force
            self.floors[rec.target] = FloorState(value, rec.created_at)

    def killed(self) -> tuple[bool, str]:
        """The kill switch: the file named in the envelope, or the switch set through the API."""
        path = self.envelope.kill_switch_file
        if path is not None and path.exists():
            return True, f"kill switch file {path} exists"
        on, reason = self.ledger.switch()
        return on, reason

    def last_moved(self) -> dict[tuple[str, str], datetime]:
        return {(t.namespace, t.name): at for t, at in ((_target(k), v) for k, v in self.ledger.last_moves().items())}

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
                self._audit_once(
                    ("observed", rec.target),
                    "observed",
                    now,
                    {"target": str(rec.target), "summary": d.explanation.summary},
                )
                continue
            rec_id, is_new = self.store.upsert(rec)
            if is_new:
                report.new += 1
                log.info("recommendation %d for %s: %s", rec_id, rec.target, d.explanation.summary)
                if mode is not Mode.ENACT and _value(rec) is not None:
                    self.floors[rec.target] = FloorState(int(_value(rec) or 0), now)
            else:
                report.refreshed += 1
            self._extended[rec.target] = now
            if mode is Mode.ENACT:
                self._enact(rec_id, rec, now, report)
        for stored in self.store.find(status=RecommendationStatus.APPROVED, limit=1000):
            self._enact(stored.id, stored.recommendation, now, report)
        self._retry_due(now, report)
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

    def _audit_once(
        self, key: object, event: str, now: datetime, detail: dict[str, Any], rec_id: int | None = None
    ) -> None:
        text = f"{event}:{detail}"
        if self._said.get(key) == text:
            return
        self._said[key] = text
        self.store.audit(event, now, detail, rec_id)

    # -- approvals and the kill switch ---------------------------------------------------------------

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

    def set_kill_switch(self, on: bool, reason: str, now: datetime) -> None:
        self.ledger.set_switch(on, reason, now)
        self.store.audit("kill-switch-on" if on else "kill-switch-off", now, {"reason": reason})
        log.warning("kill switch %s: %s", "ON, nothing will be enacted" if on else "off", reason or "(no reason)")

    def drain(self, cluster: str, now: datetime, by: str, effect: str = "NoSelect", reason: str = "") -> Applied:
        """Taint a ManagedCluster so that OCM Placements stop selecting it (an operator's decision, audited).

        Raises PermissionError when nothing may be enacted (no adapters, or the kill switch is on).
        """
        if self.kernel is None:
            raise PermissionError("the Kubernetes adapters are not set up (no workload is in approve or enact mode)")
        killed, why = self.killed()
        if killed:
            raise PermissionError(f"not drained: {why}")
        applied = self.kernel.taint_cluster(cluster, DRAIN_TAINT, by, effect)
        self.store.audit(
            "drained",
            now,
            {"cluster": cluster, "effect": effect, "by": by, "reason": reason, "changed": applied.changed},
        )
        log.warning("cluster %s drained (%s) by %s: %s", cluster, effect, by, reason or "(no reason)")
        return applied

    # -- enacting ------------------------------------------------------------------------------------

    def _current(self, rec: Recommendation) -> int | None:
        assert self.kernel is not None
        t = rec.target
        if "min_scale" in rec.params:
            return self.kernel.read_knative_scale(t.cluster, t.namespace, t.name).get("min_scale")
        if "replicas" in rec.params:
            return self.kernel.read_deployment_replicas(t.cluster, t.namespace, t.name)
        return None

    def _enact(self, rec_id: int, rec: Recommendation, now: datetime, report: ActuatorReport) -> None:
        if self.kernel is None or self.ledger.for_recommendation(rec_id) is not None:
            return  # one action per recommendation, ever; retries come from _retry_due
        key = ("enact", rec_id)
        try:
            current = self._current(rec)
        except AdapterError as exc:
            self._audit_once(
                key, "not-enacted", now, {"target": str(rec.target), "reason": f"cannot read: {exc}"}, rec_id
            )
            report.refused += 1
            return
        wp = self.book.for_workload(rec.target)
        bounds = (wp.knative.min_scale, wp.knative.max_scale) if _value(rec) is not None else None
        proposal = Proposal(str(rec.target), current, _value(rec), bounds)
        windows = max(
            self.envelope.budget_period_minutes, self.envelope.reversal_minutes, self.envelope.cooldown_minutes
        )
        killed, why = self.killed()
        verdict = check(
            proposal, self.ledger.enacted_since(now - timedelta(minutes=windows)), self.envelope, killed, now
        )
        if not verdict.allowed:
            if not verdict.skip:
                report.refused += 1
            detail = {"target": str(rec.target), "reason": why if killed else verdict.reason}
            self._audit_once(key, "not-enacted", now, detail, rec_id)
            return
        params = dict(rec.params)
        if verdict.value is not None:
            params = dict.fromkeys(params, verdict.value)
        action_id = self.ledger.begin(rec_id, str(rec.target), rec.kind.value, params, proposal.direction, now)
        if action_id is None:
            return
        self._call(action_id, rec_id, rec, params, 1, now, report, verdict.reason)

    def _retry_due(self, now: datetime, report: ActuatorReport) -> None:
        if self.kernel is None:
            return
        for row in self.ledger.find(ActionState.RETRY):
            if row.due_at is not None and row.due_at > now:
                continue
            stored = self.store.get(row.recommendation_id)
            if stored is None or not self.ledger.claim_retry(row.id, now):
                continue
            self._call(row.id, row.recommendation_id, stored.recommendation, row.params, row.attempts + 1, now, report)

    def _apply(self, rec: Recommendation, params: Mapping[str, Any]) -> Applied:
        assert self.kernel is not None
        t = rec.target
        if "min_scale" in params:
            return self.kernel.set_knative_scale(t.cluster, t.namespace, t.name, int(params["min_scale"]))
        if "replicas" in params:
            return self.kernel.scale_deployment(t.cluster, t.namespace, t.name, int(params["replicas"]))
        if rec.kind is ActionKind.REALLOCATION:
            return self.kernel.move_workload(t.namespace, t.name, t.cluster, str(params["cluster"]))
        raise PermanentError(str(t), f"no adapter for {rec.kind.value} with {dict(params)}")

    def _in_force(self, rec: Recommendation, params: Mapping[str, Any]) -> bool:
        assert self.kernel is not None
        t = rec.target
        if "min_scale" in params:
            return self.kernel.knative_scale_in_force(t.cluster, t.namespace, t.name, int(params["min_scale"]))
        if "replicas" in params:
            return self.kernel.read_deployment_replicas(t.cluster, t.namespace, t.name) == int(params["replicas"])
        if rec.kind is ActionKind.REALLOCATION:
            return self.kernel.workload_placement(t.namespace, t.name) == str(params["cluster"])
        return False

    def _call(
        self,
        action_id: int,
        rec_id: int,
        rec: Recommendation,
        params: Mapping[str, Any],
        attempt: int,
        now: datetime,
        report: ActuatorReport,
        note: str = "",
    ) -> None:
        try:
            applied = self._apply(rec, params)
        except AdapterError as exc:
            failure = {"error": str(exc), "status": exc.status, "attempt": attempt}
            if exc.temporary and attempt < MAX_ATTEMPTS:
                delay = RETRY_AFTER * 2 ** (attempt - 1)
                self.ledger.finish(action_id, ActionState.RETRY, now, failure, due=delay)
                log.warning("action on %s failed (attempt %d), retry in %s: %s", rec.target, attempt, delay, exc)
                self.store.audit("retry", now, {"target": str(rec.target), **failure}, rec_id)
                return
            self.ledger.finish(action_id, ActionState.FAILED, now, failure)
            self.store.set_status(
                rec_id, RecommendationStatus.FAILED, now, audit={"target": str(rec.target), **failure}
            )
            log.error("action on %s failed for good: %s", rec.target, exc)
            report.failed += 1
            return
        detail: dict[str, Any] = {"object": applied.obj, "changed": applied.changed, "observed": dict(applied.observed)}
        if note:
            detail["envelope"] = note
        self.ledger.finish(action_id, ActionState.ENACTED, now, detail)
        self.store.set_status(rec_id, RecommendationStatus.ENACTED, now, audit={"target": str(rec.target), **detail})
        value = _value(rec)
        if value is not None:
            self.floors[rec.target] = FloorState(int(next(iter(params.values()))), now)
        log.info("enacted %s on %s: %s (%s)", rec.kind.value, rec.target, dict(params), applied.obj)
        report.enacted += 1

    def recover(self, now: datetime) -> int:
        """After a restart: settle the intents a crash left, by reading the cluster, never by writing again."""
        if self.kernel is None:
            return 0
        settled = 0
        for row in self.ledger.find(ActionState.INTENT):
            stored = self.store.get(row.recommendation_id)
            if stored is None:
                continue
            try:
                in_force = self._in_force(stored.recommendation, row.params)
            except AdapterError as exc:
                log.warning("cannot settle action %d on %s yet: %s", row.id, row.target, exc)
                continue
            detail = {"target": row.target, "recovered": True, "params": row.params}
            if in_force:
                self.ledger.finish(row.id, ActionState.ENACTED, now, detail)
                self.store.set_status(row.recommendation_id, RecommendationStatus.ENACTED, now, audit=detail)
                log.info("action %d on %s was in force after the restart: recorded, not repeated", row.id, row.target)
            else:
                self.ledger.finish(row.id, ActionState.ABANDONED, now, detail)
                self.store.set_status(
                    row.recommendation_id,
                    RecommendationStatus.FAILED,
                    now,
                    audit={**detail, "reason": "interrupted before it took effect; a fresh decision will follow"},
                )
                log.warning("action %d on %s was interrupted before it took effect: abandoned", row.id, row.target)
            settled += 1
        return settled

    # -- placement scores ----------------------------------------------------------------------------

    def publish_scores(self, scores: dict[str, int], name: str, now: datetime, valid: timedelta, due: bool) -> None:
        """Keep the latest scores for the API; in enact mode publish them as AddOnPlacementScores when due."""
        self.scores.scores, self.scores.computed_at = scores, now
        if not due or self.kernel is None or self.book.settings.mode is not Mode.ENACT or not scores:
            return
        killed, why = self.killed()
        if killed:
            self._audit_once("scores", "scores-not-published", now, {"reason": why})
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
