"""Enacting exactly once: the envelope, an intent in the ledger, the verified write, the outcome.

The ledger's row is written as an intent before the call and settled after the read-back;
temporary failures are retried when due (at most ``MAX_ATTEMPTS`` times), permanent ones
fail the recommendation. After a crash, :meth:`Enactor.recover` settles every intent left
behind by reading the cluster, never by writing again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from intelligence.actuation.actions import ActionHandler, Value
from intelligence.actuation.adapters.base import AdapterError, PermanentError
from intelligence.decisions.envelope import Proposal, check
from intelligence.decisions.policies import PolicyBook
from intelligence.storage.audit import QuietAuditLog
from intelligence.storage.ledger import ActionLedger, ActionRow, ActionState
from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import Recommendation, RecommendationStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4  # temporary failures of one action before it is given up
RETRY_AFTER = timedelta(seconds=30)  # first retry; doubles


@dataclass
class ActuatorReport:
    new: int = 0
    revised: int = 0
    refreshed: int = 0
    held: int = 0
    enacted: int = 0
    refused: int = 0
    failed: int = 0
    released: int = 0


class Enactor:
    def __init__(
        self,
        handlers: Mapping[Any, ActionHandler],
        ledger: ActionLedger,
        recommendations: RecommendationStore,
        audit: QuietAuditLog,
        book: PolicyBook,
        killed: Callable[[], tuple[bool, str]],
    ) -> None:
        self.handlers = handlers
        self.ledger = ledger
        self.recommendations = recommendations
        self.audit = audit
        self.book = book
        self.killed = killed

    def _handler(self, rec: Recommendation) -> ActionHandler:
        handler = self.handlers.get(rec.lever)
        if handler is None:
            raise PermanentError(str(rec.target), f"no handler for {rec.lever.value}")
        return handler

    def enact(self, rec_id: int, rec: Recommendation, now: datetime, report: ActuatorReport) -> None:
        """Enact ``rec`` within the envelope, once: a recommendation that already has an action is left alone."""
        if self.ledger.for_recommendation(rec_id) is not None:
            return  # one action per recommendation, ever; retries come from retry_due
        subject = ("enact", rec_id)
        handler = self._handler(rec)
        try:
            current = handler.current(rec.target)
        except AdapterError as exc:
            detail = {"target": str(rec.target), "reason": f"cannot read: {exc}"}
            self.audit.record_once(subject, "not-enacted", now, detail, rec_id)
            report.refused += 1
            return
        envelope = self.book.spec.envelope
        proposal = _proposal(rec, current, self.book)
        killed, why = self.killed()
        history = self.ledger.enacted_since(now - timedelta(minutes=envelope.longest_window_minutes))
        verdict = check(proposal, history, envelope, killed, now)
        if not verdict.allowed:
            if not verdict.skip:
                report.refused += 1
            detail = {"target": str(rec.target), "reason": why if killed else verdict.reason}
            self.audit.record_once(subject, "not-enacted", now, detail, rec_id)
            return
        params = dict(rec.params)
        if verdict.value is not None:
            params[rec.lever.param] = verdict.value
        action_id = self.ledger.begin(rec_id, rec.target, rec.lever, rec.kind.value, params, proposal.direction, now)
        if action_id is None:
            return
        self._call(handler, action_id, rec_id, rec, params, 1, now, report, verdict.reason)

    def retry_due(self, now: datetime, report: ActuatorReport) -> None:
        for row in self.ledger.find(ActionState.RETRY):
            if row.due_at is not None and row.due_at > now:
                continue
            stored = self.recommendations.get(row.recommendation_id)
            if stored is None or not self.ledger.claim_retry(row.id, now):
                continue
            rec = stored.recommendation
            self._call(
                self._handler(rec), row.id, row.recommendation_id, rec, row.params, row.attempts + 1, now, report
            )

    def _call(
        self,
        handler: ActionHandler,
        action_id: int,
        rec_id: int,
        rec: Recommendation,
        params: Mapping[str, Any],
        attempt: int,
        now: datetime,
        report: ActuatorReport,
        note: str = "",
    ) -> None:
        value: Value = params[rec.lever.param]
        try:
            applied = handler.apply(rec.target, value)
        except AdapterError as exc:
            failure = {"error": str(exc), "status": exc.status, "attempt": attempt}
            if exc.temporary and attempt < MAX_ATTEMPTS:
                delay = RETRY_AFTER * 2 ** (attempt - 1)
                self.ledger.finish(action_id, ActionState.RETRY, now, failure, due=delay)
                log.warning("action on %s failed (attempt %d), retry in %s: %s", rec.target, attempt, delay, exc)
                self.audit.record("retry", now, {"target": str(rec.target), **failure}, rec_id)
                return
            self.ledger.finish(action_id, ActionState.FAILED, now, failure)
            self.recommendations.set_status(
                rec_id, RecommendationStatus.FAILED, now, audit={"target": str(rec.target), **failure}
            )
            log.error("action on %s failed for good: %s", rec.target, exc)
            report.failed += 1
            return
        detail: dict[str, Any] = {"object": applied.obj, "changed": applied.changed, "observed": dict(applied.observed)}
        if note:
            detail["envelope"] = note
        self.ledger.finish(action_id, ActionState.ENACTED, now, detail)
        self.recommendations.set_status(
            rec_id, RecommendationStatus.ENACTED, now, audit={"target": str(rec.target), **detail}
        )
        log.info("enacted %s on %s: %s (%s)", rec.lever.value, rec.target, dict(params), applied.obj)
        report.enacted += 1

    def release(
        self, action: ActionRow, baseline: int, now: datetime, report: ActuatorReport, superseded: bool
    ) -> None:
        """A floor's pulse is over: write the baseline back (the autoscaler then paces the way down), unless a newer
        pulse took over. A failure leaves the action enacted: it is tried again at the next step."""
        detail = {**action.detail, "released_at": now.isoformat()}
        if superseded:
            self.ledger.finish(action.id, ActionState.RELEASED, now, {**detail, "superseded": True})
            return
        subject = ("release", action.id)
        killed, why = self.killed()
        if killed:
            self.audit.record_once(subject, "not-released", now, {"target": str(action.target), "reason": why})
            return
        try:
            applied = self.handlers[action.lever].apply(action.target, baseline)
        except AdapterError as exc:
            self.audit.record_once(subject, "not-released", now, {"target": str(action.target), "reason": str(exc)})
            log.warning("floor of %s not released yet: %s", action.target, exc)
            return
        self.ledger.finish(action.id, ActionState.RELEASED, now, {**detail, "baseline": baseline})
        self.audit.record(
            "released",
            now,
            {"target": str(action.target), "baseline": baseline, "object": applied.obj},
            action.recommendation_id,
        )
        log.info("floor pulse on %s ended: %s back to %d", action.target, action.lever.param, baseline)
        report.released += 1

    def recover(self, now: datetime) -> int:
        """After a restart: settle the intents a crash left, by reading the cluster, never by writing again."""
        settled = 0
        for row in self.ledger.find(ActionState.INTENT):
            stored = self.recommendations.get(row.recommendation_id)
            if stored is None:
                continue
            try:
                in_force = self._handler(stored.recommendation).in_force(row.target, row.params[row.lever.param])
            except AdapterError as exc:
                log.warning("cannot settle action %d on %s yet: %s", row.id, row.target, exc)
                continue
            detail = {"target": str(row.target), "recovered": True, "params": row.params}
            if in_force:
                self.ledger.finish(row.id, ActionState.ENACTED, now, detail)
                self.recommendations.set_status(row.recommendation_id, RecommendationStatus.ENACTED, now, audit=detail)
                log.info("action %d on %s was in force after the restart: recorded, not repeated", row.id, row.target)
            else:
                self.ledger.finish(row.id, ActionState.ABANDONED, now, detail)
                self.recommendations.set_status(
                    row.recommendation_id,
                    RecommendationStatus.FAILED,
                    now,
                    audit={**detail, "reason": "interrupted before it took effect; a fresh decision will follow"},
                )
                log.warning("action %d on %s was interrupted before it took effect: abandoned", row.id, row.target)
            settled += 1
        return settled


def _proposal(rec: Recommendation, current: Value | None, book: PolicyBook) -> Proposal:
    """What the envelope judges: a pod count within the workload's bounds, or a move (no direction)."""
    if not rec.lever.scales:
        return Proposal(rec.target, None, None)
    knative = book.for_workload(rec.target).knative
    present = int(current) if current is not None else None
    return Proposal(rec.target, present, int(rec.value), (knative.min_scale, knative.max_scale))
