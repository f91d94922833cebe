"""The resource types the fake serves, with the discovery facts the real API publishes for them.

Only what the adapters touch is declared: an unknown group/version/plural answers 404, as a
cluster without the CRD installed would.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    builtin: bool = False  # built-in kinds accept strategic merge patches; CRDs do not

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as the API names a resource in its messages (core kinds: just the plural)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, subresources=("status",), builtin=True),
    ResourceType("apps", "v1", "deployments", "Deployment", subresources=("status", "scale"), builtin=True),
    ResourceType("serving.knative.dev", "v1", "services", "Service", subresources=("status",)),
    ResourceType("serving.knative.dev", "v1", "revisions", "Revision", subresources=("status",)),
    ResourceType(
        "autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers", "PodAutoscaler", subresources=("status",)
    ),
    ResourceType("cluster.open-cluster-management.io", "v1", "managedclusters", "ManagedCluster", False, ("status",)),
    ResourceType("cluster.open-cluster-management.io", "v1beta1", "placements", "Placement", subresources=("status",)),
    ResourceType(
        "cluster.open-cluster-management.io", "v1beta1", "placementdecisions", "PlacementDecision", True, ("status",)
    ),
    ResourceType(
        "cluster.open-cluster-management.io",
        "v1alpha1",
        "addonplacementscores",
        "AddOnPlacementScore",
        True,
        ("status",),
    ),
    ResourceType("work.open-cluster-management.io", "v1", "manifestworks", "ManifestWork", subresources=("status",)),
)

VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def find_type(group: str, version: str, plural: str) -> ResourceType | None:
    for resource_type in RESOURCE_TYPES:
        if (resource_type.group, resource_type.version, resource_type.plural) == (group, version, plural):
            return resource_type
    return None


def type_of(api_version: str, kind: str) -> ResourceType:
    """The declared type of an object given as ``apiVersion``/``kind`` (for seeding)."""
    for resource_type in RESOURCE_TYPES:
        if (resource_type.api_version, resource_type.kind) == (api_version, kind):
            return resource_type
    raise KeyError(f"the fake does not serve {kind} {api_version}")
