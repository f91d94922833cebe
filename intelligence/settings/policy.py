"""Decisions and actions: modes, the Knative floor, rescheduling, placement scores, the safety envelope, overrides.

The defaults are those of the decision specs (``intelligence.decisions.specs``); the composition
root turns each validated group into the frozen spec the decision code receives
(``intelligence.runtime.specs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from intelligence.decisions.specs import (
    EnvelopeSpec,
    KnativeFloorSpec,
    PlacementScoreSpec,
    PolicySpec,
    RescheduleSpec,
)
from intelligence.settings.base import _Group
from intelligence.settings.errors import describe
from intelligence.vocabulary import Mode, Tier, WorkloadKind

_KNATIVE, _RESCHEDULE, _SCORES, _ENVELOPE, _POLICY = (
    KnativeFloorSpec(),
    RescheduleSpec(),
    PlacementScoreSpec(),
    EnvelopeSpec(),
    PolicySpec(),
)


class KnativeScalingPolicy(_Group):
    """Predictive Knative scaling: a pulse of min-scale ahead of a forecast peak the autoscaler would miss."""

    signal: str = _KNATIVE.signal
    target_per_replica: float = Field(default=_KNATIVE.target_per_replica, gt=0.0)
    quantile: float = Field(default=_KNATIVE.quantile, gt=0.5, lt=1.0)
    provision_for: Literal["surge", "quantile"] = _KNATIVE.provision_for
    min_scale: int = Field(default=_KNATIVE.min_scale, ge=0)
    max_scale: int = Field(default=_KNATIVE.max_scale, ge=1)
    cold_start_seconds: float = Field(default=_KNATIVE.cold_start_seconds, ge=0.0)
    max_step_up: int = Field(default=_KNATIVE.max_step_up, ge=1)
    max_relative_band: float = Field(default=_KNATIVE.max_relative_band, gt=0.0)
    linger_minutes: float = Field(default=_KNATIVE.linger_minutes, ge=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> KnativeScalingPolicy:
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale {self.min_scale} is above max_scale {self.max_scale}")
        return self


class ReschedulePolicy(_Group):
    """Move workloads off a cluster forecast to saturate (or anomalous, or down)."""

    enabled: bool = _RESCHEDULE.enabled
    signal: str = _RESCHEDULE.signal
    quantile: float = Field(default=_RESCHEDULE.quantile, gt=0.5, lt=1.0)
    saturation: float = Field(default=_RESCHEDULE.saturation, gt=0.0, le=1.0)
    target_utilisation: float = Field(default=_RESCHEDULE.target_utilisation, gt=0.0, le=1.0)
    move_cost: float = Field(default=_RESCHEDULE.move_cost, ge=0.0, le=1.0)
    min_dwell_minutes: float = Field(default=_RESCHEDULE.min_dwell_minutes, ge=0.0)
    max_moves_per_decision: int = Field(default=_RESCHEDULE.max_moves_per_decision, ge=0)
    anomaly_score: float = Field(default=_RESCHEDULE.anomaly_score, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _levels(self) -> ReschedulePolicy:
        if self.target_utilisation > self.saturation:
            raise ValueError(f"target_utilisation {self.target_utilisation} is above saturation {self.saturation}")
        return self


class PlacementScorePolicy(_Group):
    """Forecast headroom per cluster, published as OCM AddOnPlacementScores (enact mode)."""

    enabled: bool = _SCORES.enabled
    quantile: float = Field(default=_SCORES.quantile, gt=0.5, lt=1.0)
    valid_minutes: float = Field(default=_SCORES.valid_minutes, gt=0.0)
    publish_every_minutes: float = Field(default=_SCORES.publish_every_minutes, gt=0.0)


class SafetyEnvelope(_Group):
    """Applied again by the actuator to every action, whatever the decider said (kill switch: also the API)."""

    max_step: int = Field(default=_ENVELOPE.max_step, ge=1)
    min_change: int = Field(default=_ENVELOPE.min_change, ge=1)
    cooldown_minutes: float = Field(default=_ENVELOPE.cooldown_minutes, ge=0.0)
    reversal_minutes: float = Field(default=_ENVELOPE.reversal_minutes, ge=0.0)
    budget_actions: int = Field(default=_ENVELOPE.budget_actions, ge=0)
    budget_period_minutes: float = Field(default=_ENVELOPE.budget_period_minutes, gt=0.0)
    kill_switch_file: Path | None = _ENVELOPE.kill_switch_file


class PolicyOverride(_Group):
    """Settings for the workloads it matches; the most specific match wins (workload over namespace)."""

    cluster: str | None = None
    namespace: str | None = None
    workload: str | None = None
    mode: Mode | None = None
    kind: WorkloadKind | None = None
    knative: dict[str, Any] = Field(default_factory=dict)  # any KnativeScalingPolicy key
    movable: bool | None = None  # False: never rescheduled
    tiers: tuple[Tier, ...] | None = None  # allowed destination tiers
    cluster_labels: dict[str, str] = Field(default_factory=dict)  # a destination must carry these labels

    @model_validator(mode="after")
    def _selects(self) -> PolicyOverride:
        if self.namespace is None and self.workload is None and self.cluster is None:
            raise ValueError("an override selects by cluster, namespace and/or workload")
        return self


class PolicySettings(_Group):
    mode: Mode = _POLICY.mode
    knative: KnativeScalingPolicy = Field(default_factory=KnativeScalingPolicy)
    reschedule: ReschedulePolicy = Field(default_factory=ReschedulePolicy)
    placement_scores: PlacementScorePolicy = Field(default_factory=PlacementScorePolicy)
    envelope: SafetyEnvelope = Field(default_factory=SafetyEnvelope)
    overrides: list[PolicyOverride] = Field(default_factory=list)
    recommendation_ttl_minutes: float = Field(default=_POLICY.recommendation_ttl_minutes, gt=0.0)

    @model_validator(mode="after")
    def _override_policies(self) -> PolicySettings:
        for i, o in enumerate(self.overrides):
            try:
                KnativeScalingPolicy(**{**self.knative.model_dump(), **o.knative})
            except ValidationError as exc:
                problems = "; ".join(describe(e) for e in exc.errors())
                raise ValueError(f"overrides[{i}].knative: {problems}") from None
        return self
