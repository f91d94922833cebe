"""Where and how the adapters act: a plain, frozen spec built from the ``kubernetes`` settings."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType


class KnativeScalePath(enum.StrEnum):
    """Where min-scale / max-scale are written (see docs/decisions.md, "Knative scaling path")."""

    POD_AUTOSCALER = "pod-autoscaler"  # annotate the serving Revisions' PodAutoscalers (and the Revisions): no Revision
    SERVICE_TEMPLATE = "service-template"  # explicit fallback: edit the Service template, which creates a Revision


@dataclass(frozen=True, slots=True)
class KubernetesSpec:
    """Kubeconfig contexts of the hub and the member clusters, the Knative path, timeouts and retries."""

    kubeconfig: Path | None = None
    context: str | None = None  # default context for member clusters not listed in cluster_contexts
    in_cluster: bool = False
    hub_context: str | None = None  # OCM hub: ManagedCluster, ManifestWork, Placement, AddOnPlacementScore
    cluster_contexts: Mapping[str, str] = field(default_factory=dict)  # member cluster name -> kubeconfig context
    knative_scale_path: KnativeScalePath = KnativeScalePath.POD_AUTOSCALER
    request_timeout_seconds: float = 10.0
    retries: int = 3  # temporary errors (409 after re-read, 429, 5xx, connection)
    backoff_seconds: float = 0.5  # first retry delay; doubles
    workload_label: str = "apps.icos.eu/workload"  # ManifestWork label whose value is "<namespace>.<name>"
    placement_score_name: str = "icos-headroom"  # AddOnPlacementScore name in each ManagedCluster namespace

    def __post_init__(self) -> None:
        object.__setattr__(self, "cluster_contexts", MappingProxyType(dict(self.cluster_contexts)))
