"""A calm stream: what the decider publishes changes only when it is worth it, in every mode.

Floors are pulses (see :mod:`intelligence.decisions.knative_floor`): a running pulse is
extended or raised, never lowered, so nothing published ever turns back; a raise within
a running pulse smaller than the envelope's ``min_change`` only extends it. A move's
destination is held for the dwell time. Pure: the last published value of each target
(durable, see :mod:`intelligence.storage.decided`) is an input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from intelligence.decisions.outcomes import Decision, Outcome, hold
from intelligence.decisions.specs import EnvelopeSpec

RULE_CALM = "publication.calm"


@dataclass(frozen=True, slots=True)
class Published:
    """What was last decided for one target and lever: its value, how and when it last changed, until when."""

    value: int | str  # a pod count, or a cluster name
    direction: int  # of the last change: +1 up, -1 down, 0 a placement (or the first value)
    changed_at: datetime
    decided_at: datetime  # the last decision that confirmed it
    until: datetime | None = None  # a floor's pulse ends then (None: a placement, which stays)

    def running(self, now: datetime) -> bool:
        return self.until is None or self.until > now


def continues(published: Published | None, value: int | str, now: datetime) -> bool:
    """Whether ``value``, decided at ``now``, continues what was published rather than starting anew.

    A running pulse is continued by any value (it is extended or raised, never lowered). Pulses end on a
    step, where the next decision comes: one ending now is continued by a value at least as high (the need
    goes on), while a lower one starts a pulse of its own (the old one is over: nothing is held higher than
    needed, and nothing published turns back).
    """
    if published is None:
        return False
    if published.running(now):
        return True
    if published.until != now or not isinstance(value, int) or not isinstance(published.value, int):
        return False
    return value >= published.value


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
    """The decision as it may be published: as is, turned into an extension, or held with the reason why."""
    rec = decision.recommendation
    if rec is None or not continues(published, rec.value, now) or published is None or rec.value == published.value:
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
            rejected = (*decision.explanation.rejected, f"{decision.explanation.summary} (held: {why})")
            return hold(decision.target, Outcome.HOLD, why, inputs, RULE_CALM, rejected, rec.lever)
        return decision
    raise_by = int(rec.value) - int(published.value)
    if raise_by < envelope.min_change:  # a pulse is never lowered; a small raise only extends it
        extended = replace(rec, params={**rec.params, rec.lever.param: published.value}, in_force_at=None)
        why = f"keep {published.value} (a change of {raise_by:+d} is below min_change {envelope.min_change})"
        explanation = replace(
            rec.explanation, rejected=(*rec.explanation.rejected, f"min-scale {rec.value}: {why}"), inputs=inputs
        )
        return replace(decision, recommendation=replace(extended, explanation=explanation), explanation=explanation)
    return decision
