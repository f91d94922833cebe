"""What the service decides: modes, levers, recommendations and their explanations, actions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from intelligence.vocabulary.series import WorkloadRef


class Mode(enum.StrEnum):
    """How far the service may go for a namespace or workload."""

    OBSERVE = "observe"  # compute decisions, keep nothing but the audit trail
    RECOMMEND = "recommend"  # publish recommendations, never act
    APPROVE = "approve"  # queue for a person or the remediation loop
    ENACT = "enact"  # act through the meta-kernel adapters


class WorkloadKind(enum.StrEnum):
    """What runs a workload, and so which lever scales it."""

    KNATIVE = "knative"  # min-scale of a Knative Service
    DEPLOYMENT = "deployment"  # replicas through the Deployment scale subresource


class ActionKind(enum.StrEnum):
    """Remediation types, named as the ICOS job manager names them."""

    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    SCALE_OUT = "scale-out"
    SCALE_IN = "scale-in"
    PATCH = "patch"
    REALLOCATION = "reallocation"


class Lever(enum.StrEnum):
    """What an action changes. The actuator has one handler per lever; ``param`` names its value in ``params``."""

    KNATIVE_FLOOR = "knative-floor"  # min-scale of a Knative Service's serving Revisions
    REPLICAS = "replicas"  # replicas of a Deployment (scale subresource)
    PLACEMENT = "placement"  # the member cluster a workload runs in (OCM ManifestWork)

    @property
    def param(self) -> str:
        return _PARAMS[self]

    @property
    def scales(self) -> bool:
        """A count of pods: the envelope's bounds, step and direction apply."""
        return self is not Lever.PLACEMENT


_PARAMS = {Lever.KNATIVE_FLOOR: "min_scale", Lever.REPLICAS: "replicas", Lever.PLACEMENT: "cluster"}


class RecommendationStatus(enum.StrEnum):
    OPEN = "open"
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    REJECTED = "rejected"
    ENACTED = "enacted"
    EXPIRED = "expired"
    FAILED = "failed"  # enacting was refused by the API, or abandoned after a crash (see the audit log)


@dataclass(frozen=True, slots=True)
class Explanation:
    """The audit record of a decision: inputs, the rule that fired, what was rejected."""

    rule: str
    summary: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    rejected: tuple[str, ...] = ()
    expected_effect: str = ""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A proposed action with its target, evidence and confidence.

    ``params`` holds explicit targets (e.g. ``{"min_scale": 4}``), never relative
    steps, so the ICOS job manager can apply it as is; ``lever`` says which one is set.
    ``in_force_at`` is when the value is needed (None: as soon as possible): a warm-up for a
    load expected two steps ahead is written then, not at once.
    """

    kind: ActionKind
    lever: Lever
    target: WorkloadRef
    params: Mapping[str, Any]
    created_at: datetime
    confidence: float
    explanation: Explanation
    valid_until: datetime | None = None
    in_force_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.lever.param not in self.params:
            raise ValueError(
                f"a {self.lever.value} recommendation for {self.target} needs params[{self.lever.param!r}]"
            )

    @property
    def value(self) -> Any:
        """The lever's target value: a pod count, or a cluster name for a placement."""
        return self.params[self.lever.param]

    @property
    def dedup_key(self) -> str:
        """Recommendations with the same key replace one another (a scale-down supersedes a scale-up)."""
        return recommendation_key(self.target, self.lever)


def recommendation_key(target: WorkloadRef, lever: Lever) -> str:
    """What a recommendation is about: its target and the lever it sets."""
    return f"{target}:{lever.value}"
