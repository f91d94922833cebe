"""What the actuator needs from the meta-kernel, free of any Kubernetes import.

Every write is idempotent (it sets absolute values, never increments) and is
verified by reading the object back; every kind of action can also be read back
("is this already in force?") so that an action interrupted by a crash is never
enacted twice. The interfaces are narrow and owned by their consumer: the Knative
floor's handler needs :class:`KnativeScaling`, not the whole meta-kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class AdapterError(Exception):
    """A Kubernetes call failed; ``obj`` names the object (``kind ns/name @ cluster``).

    ``status`` is the HTTP status (None for a connection failure). Temporary errors
    (409 after re-reads, 429, 5xx, connection) may succeed later; permanent ones
    (400, 403, 404, 415, 422) will not and are reported, not retried.
    """

    temporary = False

    def __init__(self, obj: str, message: str, status: int | None = None) -> None:
        self.obj = obj
        self.status = status
        super().__init__(f"{obj}: {message}" + (f" (HTTP {status})" if status is not None else ""))


class TemporaryError(AdapterError):
    temporary = True


class PermanentError(AdapterError):
    temporary = False


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one verified write.

    ``changed`` is False when the object was already in the desired state (nothing
    was written); ``observed`` is what the read-back found, e.g. ``{"min_scale": 4}``.
    """

    obj: str
    changed: bool
    observed: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ClusterScore:
    """Forecast headroom of one ManagedCluster as an OCM AddOnPlacementScore item (-100..100)."""

    cluster: str
    value: int


class KnativeScaling(Protocol):
    def set_knative_scale(
        self, cluster: str, namespace: str, service: str, min_scale: int | None, max_scale: int | None = None
    ) -> Applied:
        """Set min-scale (and max-scale) of the Knative Service's serving Revision(s) without a new Revision."""
        ...

    def read_knative_scale(self, cluster: str, namespace: str, service: str) -> Mapping[str, int | None]:
        """``{"min_scale": n, "max_scale": m}`` in force (summed over serving revisions)."""
        ...

    def knative_scale_in_force(
        self, cluster: str, namespace: str, service: str, min_scale: int | None, max_scale: int | None = None
    ) -> bool:
        """Whether exactly these bounds are in force (how a crashed action is settled without writing)."""
        ...


class DeploymentScaling(Protocol):
    def scale_deployment(self, cluster: str, namespace: str, name: str, replicas: int) -> Applied: ...

    def read_deployment_replicas(self, cluster: str, namespace: str, name: str) -> int: ...


class WorkloadPlacement(Protocol):
    def move_workload(self, namespace: str, name: str, source: str, destination: str) -> Applied:
        """Retarget the workload's ManifestWork from cluster ``source`` to ``destination``."""
        ...

    def workload_placement(self, namespace: str, name: str) -> str | None:
        """The cluster whose ManifestWork carries the workload now (None: not managed by ManifestWork)."""
        ...


class PlacementScorePublishing(Protocol):
    def publish_placement_scores(
        self, name: str, scores: Sequence[ClusterScore], valid_until: datetime
    ) -> list[Applied]: ...


class ClusterTainting(Protocol):
    def taint_cluster(self, cluster: str, key: str, value: str, effect: str) -> Applied: ...

    def cluster_taints(self, cluster: str) -> Sequence[Mapping[str, str]]:
        """The ManagedCluster's taints now (key, value, effect)."""
        ...


class MetaKernel(
    KnativeScaling, DeploymentScaling, WorkloadPlacement, PlacementScorePublishing, ClusterTainting, Protocol
):
    """Everything the actuator can do on the continuum. Each action handler asks only for its own part."""

    def close(self) -> None: ...
