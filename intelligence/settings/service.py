"""The service itself: Kubernetes access for the adapters, the API, local state and decisions, the engine."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from intelligence.actuation.adapters.spec import KnativeScalePath, KubernetesSpec
from intelligence.settings.base import _Group

_KUBE = KubernetesSpec()


class KubernetesSettings(_Group):
    """Where the meta-kernel adapters act. Nothing is contacted unless some mode is approve or enact."""

    kubeconfig: Path | None = _KUBE.kubeconfig
    context: str | None = _KUBE.context
    in_cluster: bool = _KUBE.in_cluster
    hub_context: str | None = _KUBE.hub_context
    cluster_contexts: dict[str, str] = Field(default_factory=dict)
    knative_scale_path: KnativeScalePath = _KUBE.knative_scale_path
    request_timeout_seconds: float = Field(default=_KUBE.request_timeout_seconds, gt=0.0, le=300.0)
    retries: int = Field(default=_KUBE.retries, ge=0, le=10)
    backoff_seconds: float = Field(default=_KUBE.backoff_seconds, ge=0.0, le=60.0)
    workload_label: str = _KUBE.workload_label
    placement_score_name: str = _KUBE.placement_score_name


class ApiSettings(_Group):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0 picks a free port
    token_file: Path | None = None  # bearer token for the mutating endpoints


class StorageSettings(_Group):
    """Local state: checkpoints, the embedded MLflow store and the decision database."""

    state_dir: Path = Path(".icos-state")
    database_url: str | None = None  # SQLAlchemy URL; default sqlite in state_dir
    anomaly_retention_days: float = Field(default=14.0, gt=0.0)  # anomaly events older than this are pruned

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'decisions.db').resolve()}"


class EngineSettings(_Group):
    """The loop, and sharding for scale-out (each replica owns hash(series) % shards == index)."""

    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _shard(self) -> EngineSettings:
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} must be below shard_count {self.shard_count}")
        return self
