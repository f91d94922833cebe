"""The service itself: Kubernetes access for the adapters, the API, local state and decisions, the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

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
    """The HTTP API. Mutating endpoints need ``Authorization: Bearer <token>``; who acted is the token's name."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0 picks a free port
    token_file: Path | None = None  # one bearer token; the caller is named after the file (e.g. .../operator)
    tokens_dir: Path | None = None  # one file per caller (a mounted Secret): the file's name is who they are
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)  # bigger bodies: 413, unread
    access_log: bool = True  # one line per request on the logger icos.access (never a token)
    # How long the engine's thread may hold the interpreter before a request gets it (sys.setswitchinterval;
    # Python's default is 5 ms, paid by a request arriving during a step at every hand-over)
    switch_interval_ms: float = Field(default=1.0, ge=0.1, le=100.0)


Exported = Literal["mean", "lower", "upper"]


def _every_edge() -> list[Exported]:
    return ["mean", "lower", "upper"]


class MetricsSettings(_Group):
    """What ``/metrics`` exports of each forecast: a few horizons and the band, not every step."""

    horizons: list[int] = Field(default_factory=lambda: [1, 6, 12], min_length=1)  # steps ahead (beyond: dropped)
    quantiles: list[Exported] = Field(default_factory=_every_edge, min_length=1)  # the point and the band's edges
    max_series_per_cluster: int = Field(default=5000, ge=1)  # more series of one cluster: not exported, a warning

    @field_validator("horizons")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("horizons are steps ahead, from 1")
        return sorted(set(v))


class HistorySettings(_Group):
    """Past forecasts next to what happened, per series, in memory (bounded: ``keep_steps`` per series)."""

    keep_steps: int = Field(default=288, ge=12, le=20_160)  # samples kept per series (a day at 5 minutes)
    horizons: list[int] = Field(default_factory=lambda: [1, 12], min_length=1, max_length=4)  # forecasts kept

    @field_validator("horizons")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError("horizons are steps ahead, from 1")
        return sorted(set(v))


class StorageSettings(_Group):
    """Local state: checkpoints, the embedded MLflow store and the decision database."""

    state_dir: Path = Path(".icos-state")
    database_url: str | None = None  # SQLAlchemy URL; default sqlite in state_dir
    # Model checkpoints: a directory every replica reads and writes (a shared volume) when sharded, so that the
    # series a replica takes over come with their state; none: <state_dir>/checkpoints (this replica's alone)
    checkpoint_dir: Path | None = None
    anomaly_retention_days: float = Field(default=14.0, gt=0.0)  # anomaly events older than this are pruned

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'decisions.db').resolve()}"

    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.state_dir / "checkpoints"


class EngineSettings(_Group):
    """Sharding for scale-out: this replica is shard ``shard_index`` of ``shard_count`` and models the series whose
    (cluster, workload labels) rendezvous-hash to it (intelligence/runtime/ownership.py)."""

    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)
    # a shard of the fleet that no live replica runs for this long (its pod is gone or cannot start) has its series
    # taken over by the others until it is back; a pod restarting within it keeps them (no hand-over back and forth)
    takeover_after_seconds: float = Field(default=120.0, ge=0.0)

    @model_validator(mode="after")
    def _shard(self) -> EngineSettings:
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} must be below shard_count {self.shard_count}")
        return self
