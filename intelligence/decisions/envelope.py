"""The safety envelope: checked again by the actuator before anything is enacted.

Pure: (proposed action, recent actions, envelope, now) -> verdict. The decider
already respects bounds and steps; the envelope does not trust it (a bug, a hand-
made approval, an override) and adds what only the actuator can know: the actions
actually enacted (cooldown, reversals, the budget) and the kill switch. A raise is
never held back by the cooldown ("predict up, react down"); it counts against the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from intelligence.decisions.specs import EnvelopeSpec
from intelligence.vocabulary import WorkloadRef


@dataclass(frozen=True, slots=True)
class EnactedAction:
    """One action enacted earlier: its workload, when, and its direction (+1 up, -1 down, 0 a move)."""

    target: WorkloadRef
    at: datetime
    direction: int


@dataclass(frozen=True, slots=True)
class Proposal:
    target: WorkloadRef
    current: int | None  # replicas / min-scale in force (None: not a scaling action)
    proposed: int | None
    bounds: tuple[int, int] | None = None

    @property
    def direction(self) -> int:
        if self.current is None or self.proposed is None:
            return 0
        return (self.proposed > self.current) - (self.proposed < self.current)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    value: int | None  # what to enact (the proposal, limited to the maximum step)
    reason: str = ""
    skip: bool = False  # nothing worth doing (below min_change): neither enacted nor refused


def check(
    proposal: Proposal,
    history: Sequence[EnactedAction],
    envelope: EnvelopeSpec,
    killed: bool,
    now: datetime,
) -> Verdict:
    """Whether ``proposal`` may be enacted now, and with which value."""
    if killed:
        return Verdict(False, None, "kill switch is on")
    value = proposal.proposed
    if value is not None and proposal.bounds is not None:
        low, high = proposal.bounds
        if not low <= value <= high:
            return Verdict(False, None, f"{value} is outside the bounds [{low}, {high}]")
    if value is not None and proposal.current is not None:
        change = value - proposal.current
        if abs(change) < envelope.min_change:
            return Verdict(False, None, f"change {change:+d} is below min_change {envelope.min_change}", skip=True)
        if abs(change) > envelope.max_step:
            value = proposal.current + envelope.max_step * (1 if change > 0 else -1)
    mine = [a for a in history if a.target == proposal.target]
    if mine and proposal.direction <= 0:  # "predict up": a raise is never held back by the cooldown
        last = max(mine, key=lambda a: a.at)
        if now - last.at < timedelta(minutes=envelope.cooldown_minutes):
            return Verdict(
                False,
                None,
                f"cooldown: last action {(now - last.at).total_seconds():.0f}s ago "
                f"(< {envelope.cooldown_minutes:g} min)",
            )
        reversal = timedelta(minutes=envelope.reversal_minutes)
        direction = proposal.direction
        if direction and any(a.direction == -direction and now - a.at < reversal for a in mine):
            return Verdict(
                False, None, f"would reverse an action of the last {envelope.reversal_minutes:g} min (flapping)"
            )
    period = timedelta(minutes=envelope.budget_period_minutes)
    spent = sum(1 for a in history if now - a.at < period)
    if spent >= envelope.budget_actions:
        return Verdict(
            False,
            None,
            f"action budget spent: {spent} of {envelope.budget_actions} per {envelope.budget_period_minutes:g} min",
        )
    clamped = value != proposal.proposed
    return Verdict(True, value, f"limited to a step of {envelope.max_step}" if clamped else "")
