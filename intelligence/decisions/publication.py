"""A calm stream: what the decider publishes changes only when it is worth it, in every mode.

The envelope's hysteresis applies to what is published, not only to what is enacted:
a recommendation's value changes only when the decided value moves by at least
``min_change`` and does not turn back on a change made less than ``reversal_minutes``
ago; a move's destination is held for the dwell time. Pure: the last published value
of each target (durable, see :mod:`intelligence.storage.decided`) is an input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from intelligence.decisions.outcomes import Decision, Outcome, hold
from intelligence.decisions.specs import EnvelopeSpec

RULE_CALM = "publication.calm"


@dataclass(frozen=True, slots=True)
class Published:
    """What was last decided for one target and lever: its value, and how and when it last changed."""

    value: int | str  # a pod count, or a cluster name
    direction: int  # of the last change: +1 up, -1 down, 0 a placement (or the first value)
    changed_at: datetime
    decided_at: datetime  # the last decision that confirmed it


def direction(before: int | str | None, after: int | str) -> int:
    if not isinstance(after, int) or not isinstance(before, int):
        return 0
    return (after > before) - (after < before)


def calm(
    decision: Decision,
    published: Published | None,
    envelope: EnvelopeSpec,
    dwell: timedelta,
    now: datetime,
) -> Decision:
    """The decision as it may be published: as is, or held on the published value with the reason why."""
    rec = decision.recommendation
    if rec is None or published is None or rec.value == published.value:
        return decision
    since = now - published.changed_at
    inputs: dict[str, object] = {
        **rec.explanation.inputs,
        "published": published.value,
        "decided": rec.value,
        "published_changed_at": published.changed_at.isoformat(),
    }
    if not rec.lever.scales:
        if since < dwell:
            why = (
                f"keep {rec.target}'s destination {published.value} (chosen {since.total_seconds() / 60:.0f} min ago, "
                f"dwell {dwell.total_seconds() / 60:g} min) rather than switch to {rec.value}"
            )
            return _held(decision, why, inputs)
        return decision
    change = int(rec.value) - int(published.value)
    if abs(change) < envelope.min_change:
        why = f"keep {published.value}: a change of {change:+d} is below min_change {envelope.min_change}"
        return _held(decision, why, inputs)
    turning = published.direction == -direction(int(published.value), int(rec.value))
    if turning and since < timedelta(minutes=envelope.reversal_minutes):
        ago = since.total_seconds() / 60
        why = (
            f"keep {published.value}: {rec.value} would reverse the change made {ago:.0f} min ago "
            f"(reversal window {envelope.reversal_minutes:g} min)"
        )
        return _held(decision, why, inputs)
    return decision


def _held(decision: Decision, why: str, inputs: Mapping[str, object]) -> Decision:
    assert decision.recommendation is not None
    rejected = (*decision.explanation.rejected, f"{decision.explanation.summary} (held: {why})")
    return hold(decision.target, Outcome.HOLD, why, inputs, RULE_CALM, rejected, decision.recommendation.lever)
