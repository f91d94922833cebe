"""Objects shaped as the real APIs define them (Knative Serving, OCM, apps/v1), for seeding fake clusters."""

from __future__ import annotations

from typing import Any

from tests.fakekube import FakeKube

SERVING = "serving.knative.dev/v1"
PA = "autoscaling.internal.knative.dev/v1alpha1"
OCM = "cluster.open-cluster-management.io"
WORK = "work.open-cluster-management.io/v1"
MIN = "autoscaling.knative.dev/min-scale"
MAX = "autoscaling.knative.dev/max-scale"
LABEL = "apps.icos.eu/workload"


def knative_service(
    name: str, traffic: list[tuple[str, int]], latest: str | None = None, namespace: str = "shop"
) -> dict[str, Any]:
    latest = latest or (traffic[-1][0] if traffic else None)
    return {
        "apiVersion": SERVING,
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/target": "100"}},
                "spec": {"containers": [{"image": "ghcr.io/icos/shop:1"}]},
            },
            "traffic": [{"latestRevision": True, "percent": 100}],
        },
        "status": {
            "observedGeneration": 1,
            "latestCreatedRevisionName": latest,
            "latestReadyRevisionName": latest,
            "traffic": [
                {"revisionName": rev, "percent": percent, "latestRevision": rev == latest} for rev, percent in traffic
            ],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def revision(name: str, service: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": SERVING,
        "kind": "Revision",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"serving.knative.dev/service": service, "serving.knative.dev/configuration": service},
            "annotations": {"autoscaling.knative.dev/target": "100"},
        },
        "spec": {"containers": [{"image": "ghcr.io/icos/shop:1"}], "containerConcurrency": 0},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod_autoscaler(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": PA,
        "kind": "PodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"},
            "labels": {"serving.knative.dev/revision": name},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-deployment"},
            "protocolType": "http1",
            "reachability": "Reachable",
        },
        "status": {"desiredScale": 1, "actualScale": 1},
    }


def shop(fake: FakeKube, traffic: list[tuple[str, int]], name: str = "checkout", namespace: str = "shop") -> None:
    """A Knative Service with its serving Revisions and their PodAutoscalers."""
    fake.seed(knative_service(name, traffic, namespace=namespace))
    for rev, _ in traffic:
        fake.seed(revision(rev, name, namespace), pod_autoscaler(rev, namespace))


def deployment(name: str, replicas: int, namespace: str = "shop") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": "nginx"}]}},
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def managed_cluster(name: str, taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hubAcceptsClient": True, "leaseDurationSeconds": 60}
    if taints is not None:
        spec["taints"] = taints
    return {
        "apiVersion": f"{OCM}/v1",
        "kind": "ManagedCluster",
        "metadata": {"name": name, "labels": {"name": name}},
        "spec": spec,
    }


def manifest_work(
    cluster: str, name: str = "shop-checkout", workload: tuple[str, str] = ("shop", "checkout")
) -> dict[str, Any]:
    namespace, workload_name = workload
    return {
        "apiVersion": WORK,
        "kind": "ManifestWork",
        "metadata": {
            "name": name,
            "namespace": cluster,
            "labels": {LABEL: f"{namespace}.{workload_name}"},
            "annotations": {"icos.eu/owner": namespace},
        },
        "spec": {
            "workload": {
                "manifests": [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                    deployment(workload_name, 2, namespace) | {"status": {}},
                ]
            },
            "deleteOption": {"propagationPolicy": "Foreground"},
        },
        "status": {"conditions": [{"type": "Applied", "status": "True"}]},
    }
