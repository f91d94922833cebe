"""One handler per kind of action: how to read what is in force, apply a value, and check that it took effect.

The actuator picks the handler by the recommendation's lever; nothing re-derives the kind
of an action from the names of its parameters. Each handler asks the meta-kernel only for
the part it needs (see the narrow protocols in :mod:`intelligence.actuation.adapters.base`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from intelligence.actuation.adapters.base import (
    Applied,
    ClusterTainting,
    DeploymentScaling,
    KnativeScaling,
    MetaKernel,
    WorkloadPlacement,
)
from intelligence.vocabulary import Lever, WorkloadRef

Value = int | str  # a pod count, or a cluster name for a placement


class ActionHandler(Protocol):
    lever: ClassVar[Lever]

    def current(self, target: WorkloadRef) -> Value | None:
        """What is in force now (None: unknown, e.g. no min-scale annotation yet)."""
        ...

    def apply(self, target: WorkloadRef, value: Value) -> Applied:
        """Set ``value`` (absolute, idempotent) and verify it by reading back."""
        ...

    def in_force(self, target: WorkloadRef, value: Value) -> bool:
        """Whether ``value`` is in force (how an action interrupted by a crash is settled without writing)."""
        ...


@dataclass(frozen=True, slots=True)
class KnativeFloor:
    """min-scale of a Knative Service's serving Revisions (their PodAutoscalers: no new Revision)."""

    kernel: KnativeScaling
    lever: ClassVar[Lever] = Lever.KNATIVE_FLOOR

    def current(self, target: WorkloadRef) -> int | None:
        return self.kernel.read_knative_scale(target.cluster, target.namespace, target.name).get("min_scale")

    def apply(self, target: WorkloadRef, value: Value) -> Applied:
        return self.kernel.set_knative_scale(target.cluster, target.namespace, target.name, int(value))

    def in_force(self, target: WorkloadRef, value: Value) -> bool:
        return self.kernel.knative_scale_in_force(target.cluster, target.namespace, target.name, int(value))


@dataclass(frozen=True, slots=True)
class DeploymentReplicas:
    """replicas of a Deployment, through its scale subresource."""

    kernel: DeploymentScaling
    lever: ClassVar[Lever] = Lever.REPLICAS

    def current(self, target: WorkloadRef) -> int:
        return self.kernel.read_deployment_replicas(target.cluster, target.namespace, target.name)

    def apply(self, target: WorkloadRef, value: Value) -> Applied:
        return self.kernel.scale_deployment(target.cluster, target.namespace, target.name, int(value))

    def in_force(self, target: WorkloadRef, value: Value) -> bool:
        return self.current(target) == int(value)


@dataclass(frozen=True, slots=True)
class Placement:
    """The member cluster a workload runs in: its ManifestWork moves from ``target.cluster`` to ``value``."""

    kernel: WorkloadPlacement
    lever: ClassVar[Lever] = Lever.PLACEMENT

    def current(self, target: WorkloadRef) -> str | None:
        return self.kernel.workload_placement(target.namespace, target.name)

    def apply(self, target: WorkloadRef, value: Value) -> Applied:
        return self.kernel.move_workload(target.namespace, target.name, target.cluster, str(value))

    def in_force(self, target: WorkloadRef, value: Value) -> bool:
        return self.current(target) == str(value)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSelect or PreferNoSelect

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


@dataclass(frozen=True, slots=True)
class ClusterTaint:
    """A taint on a ManagedCluster, so that OCM Placements stop (or prefer not) selecting it: a drain."""

    kernel: ClusterTainting

    def apply(self, cluster: str, taint: Taint) -> Applied:
        return self.kernel.taint_cluster(cluster, taint.key, taint.value, taint.effect)

    def in_force(self, cluster: str, taint: Taint) -> bool:
        wanted = {"key": taint.key, "value": taint.value, "effect": taint.effect}
        return any(_same_taint(found, wanted) for found in self.kernel.cluster_taints(cluster))


def _same_taint(found: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(found.get(k, "") == v for k, v in wanted.items())


def handlers(kernel: MetaKernel) -> dict[Lever, ActionHandler]:
    """The handler of every lever, over one meta-kernel."""
    found: list[ActionHandler] = [KnativeFloor(kernel), DeploymentReplicas(kernel), Placement(kernel)]
    return {handler.lever: handler for handler in found}
