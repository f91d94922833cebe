"""The plain, frozen inputs of the decision code, built from the settings at the composition root.

As Knative's autoscaler gets a ``DeciderSpec`` rather than its ConfigMap, the decider,
the planner and the envelope get these: no pydantic, no settings tree, no I/O. The
defaults here are the service's defaults (the settings take theirs from these).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from intelligence.vocabulary import Mode, Tier, WorkloadKind


@dataclass(frozen=True, slots=True)
class KnativeFloorSpec:
    """Predictive Knative scaling: a pulse of min-scale ahead of a forecast peak the autoscaler would miss."""

    signal: str = "requests"  # the forecast signal the floor is sized on (request rate or concurrency)
    target_per_replica: float = 10.0  # load one replica serves at the autoscaler's target
    quantile: float = 0.95  # upper quantile of the forecast used (and required: no band, no floor)
    provision_for: Literal["surge", "quantile"] = "surge"  # the forecast's surge when it has one, else the quantile
    min_scale: int = 1
    max_scale: int = 50
    cold_start_seconds: float = 30.0  # lead time a new replica needs (cold start and actuation)
    max_step_up: int = 10  # most replicas added by one recommendation
    max_relative_band: float = 10.0  # a band wider than this x the point is too uncertain to hold a floor on
    linger_minutes: float = 0.0  # a pulse runs this long past its last needing step (needs that recur sooner merge)


@dataclass(frozen=True, slots=True)
class RescheduleSpec:
    """Move workloads off a cluster forecast to saturate (or anomalous, or down)."""

    enabled: bool = True
    signal: str = "cpu"  # per-workload load signal, in the unit of the clusters' capacity (cores)
    quantile: float = 0.95  # upper quantile of each workload's forecast used
    saturation: float = 0.9  # forecast peak / capacity above it: saturated
    target_utilisation: float = 0.75  # a destination must stay below it after a move
    move_cost: float = 0.05  # capacity share a move must gain to be worth it
    min_dwell_minutes: float = 240.0  # a moved workload stays put at least this long
    max_moves_per_decision: int = 2
    anomaly_score: float = 0.9  # a cluster is anomalous when half its workloads score above it


@dataclass(frozen=True, slots=True)
class PlacementScoreSpec:
    """Forecast headroom per cluster, published as OCM AddOnPlacementScores (enact mode)."""

    enabled: bool = True
    quantile: float = 0.95
    valid_minutes: float = 15.0  # validUntil: stale scores are ignored by Placements
    publish_every_minutes: float = 5.0


@dataclass(frozen=True, slots=True)
class EnvelopeSpec:
    """The safety envelope, applied again by the actuator to every action whatever the decider said."""

    max_step: int = 10  # most replicas one action adds or removes
    min_change: int = 1  # hysteresis: smaller changes are not enacted
    cooldown_minutes: float = 5.0  # between two actions on the same target
    reversal_minutes: float = 30.0  # no opposite action on a target sooner (no flapping)
    budget_actions: int = 30  # actions enacted per budget period, all targets together
    budget_period_minutes: float = 60.0
    kill_switch_file: Path | None = None  # while this file exists nothing is enacted

    @property
    def longest_window_minutes(self) -> float:
        """How far back the envelope looks at enacted actions."""
        return max(self.budget_period_minutes, self.reversal_minutes, self.cooldown_minutes)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    """Policy for the workloads it matches; the most specific match wins (workload over namespace over cluster)."""

    cluster: str | None = None
    namespace: str | None = None
    workload: str | None = None
    mode: Mode | None = None
    kind: WorkloadKind | None = None
    knative: Mapping[str, Any] = field(default_factory=dict)  # any KnativeFloorSpec field
    movable: bool | None = None  # False: never rescheduled
    tiers: tuple[Tier, ...] | None = None  # allowed destination tiers
    cluster_labels: Mapping[str, str] = field(default_factory=dict)  # a destination must carry these labels

    def __post_init__(self) -> None:
        object.__setattr__(self, "knative", _frozen(self.knative))
        object.__setattr__(self, "cluster_labels", _frozen(self.cluster_labels))

    def specificity(self) -> int:
        return (self.workload is not None) * 4 + (self.namespace is not None) * 2 + (self.cluster is not None)

    def matches(self, cluster: str, namespace: str, workload: str) -> bool:
        return (
            self.cluster in (None, cluster)
            and self.namespace in (None, namespace)
            and self.workload in (None, workload)
        )


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """Everything the decision code and the actuator's envelope decide by."""

    mode: Mode = Mode.RECOMMEND
    knative: KnativeFloorSpec = field(default_factory=KnativeFloorSpec)
    reschedule: RescheduleSpec = field(default_factory=RescheduleSpec)
    placement_scores: PlacementScoreSpec = field(default_factory=PlacementScoreSpec)
    envelope: EnvelopeSpec = field(default_factory=EnvelopeSpec)
    overrides: tuple[OverrideSpec, ...] = ()
    recommendation_ttl_minutes: float = 60.0  # an open recommendation not confirmed this long expires
