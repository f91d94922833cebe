"""An in-memory MetaKernel for actuator unit tests (the real adapters are tested against the fake API server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from intelligence.actuation.adapters.base import AdapterError, Applied, ClusterScore


class Crash(BaseException):
    """Raised to stand for the process dying at that point."""


@dataclass
class MemoryKernel:
    min_scale: dict[tuple[str, str, str], int] = field(default_factory=dict)
    replicas: dict[tuple[str, str, str], int] = field(default_factory=dict)
    placement: dict[tuple[str, str], str] = field(default_factory=dict)
    taints: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    writes: list[tuple[str, object]] = field(default_factory=list)
    scores: list[tuple[str, tuple[ClusterScore, ...], datetime]] = field(default_factory=list)
    fail_next: list[AdapterError] = field(default_factory=list)  # raised by the next writes, in order
    crash_after_write: bool = False
    crash_before_write: bool = False

    def _write(self, what: str, value: object) -> None:
        if self.crash_before_write:
            raise Crash
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.writes.append((what, value))

    def set_knative_scale(
        self, cluster: str, namespace: str, service: str, min_scale: int | None, max_scale: int | None = None
    ) -> Applied:
        key = (cluster, namespace, service)
        if self.min_scale.get(key) == min_scale:
            return Applied(f"ksvc {namespace}/{service} @ {cluster}", False, {"min_scale": min_scale})
        self._write(f"min_scale {key}", min_scale)
        self.min_scale[key] = int(min_scale or 0)
        if self.crash_after_write:
            raise Crash
        return Applied(f"ksvc {namespace}/{service} @ {cluster}", True, {"min_scale": min_scale})

    def read_knative_scale(self, cluster: str, namespace: str, service: str) -> Mapping[str, int | None]:
        return {"min_scale": self.min_scale.get((cluster, namespace, service), 1), "max_scale": None}

    def knative_scale_in_force(
        self, cluster: str, namespace: str, service: str, min_scale: int | None, max_scale: int | None = None
    ) -> bool:
        return self.min_scale.get((cluster, namespace, service), 1) == min_scale

    def scale_deployment(self, cluster: str, namespace: str, name: str, replicas: int) -> Applied:
        self._write(f"replicas {cluster}/{namespace}/{name}", replicas)
        self.replicas[(cluster, namespace, name)] = replicas
        return Applied(f"deployment {namespace}/{name} @ {cluster}", True, {"replicas": replicas})

    def read_deployment_replicas(self, cluster: str, namespace: str, name: str) -> int:
        return self.replicas.get((cluster, namespace, name), 1)

    def move_workload(self, namespace: str, name: str, source: str, destination: str) -> Applied:
        self._write(f"move {namespace}/{name}", destination)
        self.placement[(namespace, name)] = destination
        if self.crash_after_write:
            raise Crash
        return Applied(f"manifestwork {namespace}.{name}", True, {"cluster": destination})

    def workload_placement(self, namespace: str, name: str) -> str | None:
        return self.placement.get((namespace, name))

    def publish_placement_scores(
        self, name: str, scores: Sequence[ClusterScore], valid_until: datetime
    ) -> list[Applied]:
        self._write("scores", tuple(scores))
        self.scores.append((name, tuple(scores), valid_until))
        return [Applied(f"addonplacementscore {s.cluster}/{name}", True, {"value": s.value}) for s in scores]

    def taint_cluster(self, cluster: str, key: str, value: str, effect: str) -> Applied:
        taint = {"key": key, "value": value, "effect": effect}
        if taint in self.taints.get(cluster, []):
            return Applied(f"managedcluster {cluster}", False)
        self._write(f"taint {cluster}", (key, value, effect))
        self.taints.setdefault(cluster, []).append(taint)
        return Applied(f"managedcluster {cluster}", True)

    def cluster_taints(self, cluster: str) -> list[dict[str, str]]:
        return list(self.taints.get(cluster, []))

    def close(self) -> None:
        pass
