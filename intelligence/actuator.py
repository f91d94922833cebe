"""The actuator: applies the mode and the safety envelope to decisions, and records them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from intelligence.decider import Decision, FloorState, Outcome
from intelligence.domain import Mode, RecommendationStatus, WorkloadRef, recommendation_key
from intelligence.recommendations import RecommendationStore
from intelligence.settings import KnativeScalingPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActuatorReport:
    new: int = 0
    refreshed: int = 0
    held: int = 0


class Actuator:
    """Observe or recommend (enacting through adapters comes with the meta-kernel adapters).

    The floors it keeps are the last recommended min-scale per Knative service, so a
    recommendation is not repeated at every step and "react down" is paced from it.
    """

    def __init__(self, store: RecommendationStore, mode: Mode, policy: KnativeScalingPolicy, ttl: timedelta) -> None:
        if mode in (Mode.ENACT, Mode.APPROVE):
            raise ValueError(f"policy.mode {mode.value!r} is not available yet: use 'observe' or 'recommend'")
        self.store = store
        self.mode = mode
        self.policy = policy
        self.ttl = ttl
        self.floors: dict[WorkloadRef, FloorState] = {}
        self._extended: dict[WorkloadRef, datetime] = {}
        self._restore_floors()

    def _restore_floors(self) -> None:
        for stored in reversed(self.store.find(status=RecommendationStatus.OPEN, limit=10_000)):
            rec = stored.recommendation
            if "min_scale" in rec.params:
                self.floors[rec.target] = FloorState(int(rec.params["min_scale"]), rec.created_at)

    def handle(self, decisions: Iterable[Decision], now: datetime) -> ActuatorReport:
        new = refreshed = held = 0
        for d in decisions:
            if d.outcome is not Outcome.RECOMMEND or d.recommendation is None:
                held += 1
                if d.outcome is Outcome.HOLD and self.mode is not Mode.OBSERVE:
                    self._keep_valid(d.target, now)
                continue
            rec = d.recommendation
            min_scale = int(rec.params["min_scale"])
            bounded = min(max(min_scale, self.policy.min_scale), self.policy.max_scale)  # envelope, again
            if bounded != min_scale:
                log.warning("decision for %s out of bounds (%s); clamped to %s", rec.target, min_scale, bounded)
                continue
            if self.mode is Mode.OBSERVE:
                self.store.audit("observed", now, {"target": str(rec.target), "summary": d.explanation.summary})
                continue
            rec_id, is_new = self.store.upsert(rec)
            if is_new:
                new += 1
                self.floors[rec.target] = FloorState(min_scale, now)
                log.info("recommendation %d for %s: %s", rec_id, rec.target, d.explanation.summary)
            else:
                refreshed += 1
            self._extended[rec.target] = now
        self.store.expire(now)
        return ActuatorReport(new, refreshed, held)

    def _keep_valid(self, target: WorkloadRef, now: datetime) -> None:
        """The floor still fits the forecast: its open recommendation stays valid (written at most every ttl/4)."""
        last = self._extended.get(target)
        if last is not None and now - last < self.ttl / 4:
            return
        self.store.extend(recommendation_key(target, {"min_scale": 0}), now, now + self.ttl)
        self._extended[target] = now
