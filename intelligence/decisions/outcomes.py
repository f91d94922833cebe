"""What a decision is: an outcome ("not enough data" and "too uncertain" are normal results), its explanation,
and the recommendation when there is one."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from intelligence.vocabulary import Explanation, Lever, Recommendation, WorkloadRef


class Outcome(enum.StrEnum):
    RECOMMEND = "recommend"
    HOLD = "hold"
    INSUFFICIENT_DATA = "insufficient-data"
    TOO_UNCERTAIN = "too-uncertain"


@dataclass(frozen=True, slots=True)
class Decision:
    target: WorkloadRef
    outcome: Outcome
    explanation: Explanation
    recommendation: Recommendation | None = None
    lever: Lever | None = None  # what a hold keeps as it is (the recommendation's lever otherwise)

    @property
    def about(self) -> Lever | None:
        """The lever this decision is about, if any."""
        return self.recommendation.lever if self.recommendation is not None else self.lever


def hold(
    target: WorkloadRef,
    outcome: Outcome,
    summary: str,
    inputs: Mapping[str, object],
    rule: str,
    rejected: tuple[str, ...] = (),
    lever: Lever | None = None,
) -> Decision:
    """A decision to do nothing, with its explanation (the inputs are copied: callers go on filling theirs)."""
    return Decision(target, outcome, Explanation(rule, summary, dict(inputs), rejected), lever=lever)
