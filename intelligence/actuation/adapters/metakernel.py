"""The :class:`base.MetaKernel` over real clusters: member clusters for Knative and Deployments, the OCM hub
for placement. Clients are made on first use per cluster, so building one contacts nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from intelligence.actuation.adapters.base import Applied, ClusterScore
from intelligence.actuation.adapters.deployments import DeploymentScaler
from intelligence.actuation.adapters.knative import KnativeScaler
from intelligence.actuation.adapters.kube import ClusterClients, Kube, Retrier, new_api_client
from intelligence.actuation.adapters.ocm import OcmHub
from intelligence.actuation.adapters.spec import KubernetesSpec
from intelligence.vocabulary import Clock, SystemClock, utc_now

HUB = "hub"


class KubeMetaKernel:
    def __init__(
        self,
        spec: KubernetesSpec,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock | None = None,
        client_factory: Callable[[KubernetesSpec, str | None], Any] = new_api_client,
    ) -> None:
        self._spec = spec
        self._retrier = Retrier.from_spec(spec, sleep)
        self._clock = clock or SystemClock()
        self._clients = ClusterClients(spec, client_factory)

    def _member(self, cluster: str) -> Kube:
        return Kube(self._clients.member(cluster), cluster, self._spec.request_timeout_seconds, self._retrier)

    def _hub(self) -> OcmHub:
        kube = Kube(self._clients.hub(), HUB, self._spec.request_timeout_seconds, self._retrier)
        return OcmHub(kube, self._spec.workload_label, self._now)

    def _now(self) -> datetime:
        return utc_now(self._clock)

    def _knative(self, cluster: str) -> KnativeScaler:
        return KnativeScaler(self._member(cluster), self._spec.knative_scale_path)

    def set_knative_scale(
        self, cluster: str, namespace: str, service: str, min_scale: int | None, max_scale: int | None = None
    ) -> Applied:
        return self._knative(cluster).set(namespace, service, min_scale, max_scale)

    def read_knative_scale(self, cluster: str, namespace: str, service: str) -> Mapping[str, int | None]:
        return self._knative(cluster).read(namespace, service)

    def knative_scale_in_force(
        self, cluster: str, namespace: str, service: str, min_scale: int | None, max_scale: int | None = None
    ) -> bool:
        return self._knative(cluster).in_force(namespace, service, min_scale, max_scale)

    def scale_deployment(self, cluster: str, namespace: str, name: str, replicas: int) -> Applied:
        return DeploymentScaler(self._member(cluster)).scale(namespace, name, replicas)

    def read_deployment_replicas(self, cluster: str, namespace: str, name: str) -> int:
        return DeploymentScaler(self._member(cluster)).read(namespace, name)

    def move_workload(self, namespace: str, name: str, source: str, destination: str) -> Applied:
        return self._hub().move_workload(namespace, name, source, destination)

    def workload_placement(self, namespace: str, name: str) -> str | None:
        return self._hub().workload_placement(namespace, name)

    def publish_placement_scores(
        self, name: str, scores: Sequence[ClusterScore], valid_until: datetime
    ) -> list[Applied]:
        return self._hub().publish_placement_scores(name, scores, valid_until)

    def taint_cluster(self, cluster: str, key: str, value: str, effect: str) -> Applied:
        return self._hub().taint_cluster(cluster, key, value, effect)

    def cluster_taints(self, cluster: str) -> list[dict[str, str]]:
        return self._hub().cluster_taints(cluster)

    def retarget_placement(self, namespace: str, placement: str, destination: str) -> Applied:
        """Not in :class:`base.MetaKernel` yet: pin an OCM Placement to one cluster."""
        return self._hub().retarget_placement(namespace, placement, destination)

    def check(self) -> None:
        """Load every configured kubeconfig context (contacts nothing); raises PermanentError naming a bad one."""
        self._clients.check()

    def close(self) -> None:
        self._clients.close()
