"""Service settings: one typed object, grouped, loaded from YAML with environment overrides.

Precedence (highest first): environment variables ``ICOS_<GROUP>__<KEY>``, the YAML
file given with ``--config``, then the defaults below. Every default explains
itself; an empty ``clusters`` list selects the embedded simulated continuum.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from intelligence.vocabulary import Mode, Tier, WorkloadKind

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SIGNAL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


_COUNTER_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*(?:_total|_count|_sum|_bucket|_seconds_total))\b")
_COUNTER_FUNCS = ("rate(", "irate(", "increase(", "resets(", "deriv(")
_KNOWN_COUNTERS = ("revision_app_request_count", "activator_request_count", "revision_request_count")


def raw_counter(query: str) -> str | None:
    """The first counter metric in ``query`` not inside rate/irate/increase, if any (a heuristic on names)."""
    for match in re.finditer(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", query):
        name = match.group(0)
        if not (_COUNTER_NAME.fullmatch(name) or name in _KNOWN_COUNTERS):
            continue
        before = query[: match.start()]
        depth_ok = any(
            before.rfind(func) != -1 and before.count("(", before.rfind(func)) > before.count(")", before.rfind(func))
            for func in _COUNTER_FUNCS
        )
        if not depth_ok:
            return name
    return None


class ConfigError(Exception):
    """Invalid configuration; ``problems`` has one line per bad key, naming it and its value."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid configuration in {source}:\n" + "\n".join(f"  - {p}" for p in problems))


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthSettings(_Group):
    """How to authenticate to a cluster's metrics endpoint. Secrets come from files, never inline."""

    bearer_token_file: Path | None = None
    basic_user: str | None = None
    basic_password_file: Path | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    verify_tls: bool = True  # turning this off is possible, never the default


class ClusterSettings(_Group):
    """One member of the continuum and its Prometheus / Thanos Query endpoint."""

    name: str
    url: str
    tier: Tier = Tier.CLOUD
    labels: dict[str, str] = Field(default_factory=dict)
    # Thanos holding many clusters: the external label value selecting this one
    # (e.g. {"cluster": "edge-1"}); added to every signal's selector.
    selector: dict[str, str] = Field(default_factory=dict)
    capacity_cores: float = Field(default=0.0, ge=0.0)  # 0 = unknown
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=300.0)  # per HTTP request
    retries: int = Field(default=2, ge=0, le=10)  # per query, for temporary errors (connection, 5xx, 429)
    backoff_seconds: float = Field(default=0.5, ge=0.0, le=60.0)  # first retry delay; doubles, with jitter
    breaker_failures: int = Field(default=3, ge=1)  # consecutive failed pulls that open the circuit
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0.0)  # first pause; doubles up to 10 minutes
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @field_validator("name")
    @classmethod
    def _dns_name(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError("must be a DNS-1123 label (lower case letters, digits and '-')")
        return v

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")


class SignalSettings(_Group):
    """A named PromQL query and the labels that identify a workload in its result.

    ``{selector}`` in the query is replaced by the cluster's selector (may be empty);
    ``{window}`` by the rate window.
    """

    name: str
    query: str
    workload_labels: tuple[str, ...] = ("namespace", "workload")
    unit: str = ""

    @field_validator("name")
    @classmethod
    def _signal_name(cls, v: str) -> str:
        if not _SIGNAL_NAME.match(v):
            raise ValueError("must be a lower-case identifier ([a-z_][a-z0-9_]*)")
        return v

    @field_validator("query")
    @classmethod
    def _no_raw_counter(cls, v: str) -> str:
        counter = raw_counter(v)
        if counter:
            raise ValueError(
                f"{counter!r} is a counter used raw: wrap it in rate(...[{{window}}]) or increase(...); "
                "counter resets are left to PromQL"
            )
        return v


def _default_signals() -> list[SignalSettings]:
    return [
        SignalSettings(
            name="cpu",
            unit="cores",
            query="sum by (namespace, workload) "
            '(rate(container_cpu_usage_seconds_total{{container!=""{selector}}}[{window}]))',
        ),
        SignalSettings(
            name="memory",
            unit="bytes",
            query='sum by (namespace, workload) (container_memory_working_set_bytes{{container!=""{selector}}})',
        ),
        SignalSettings(
            name="requests",
            unit="requests/s",
            query="sum by (namespace, workload) (rate(revision_app_request_count{{{selector_bare}}}[{window}]))",
        ),
    ]


def optional_signals() -> list[SignalSettings]:
    """More signals for setups that export them (kube-state-metrics, node-exporter, Knative activator).

    Not on by default: a query for a metric nobody exports only costs a round trip, but
    users should choose what they model. ``icos-intel config example`` lists them.
    """
    return [
        SignalSettings(
            name="latency_p95",
            unit="seconds",
            query="histogram_quantile(0.95, sum by (namespace, workload, le) "
            "(rate(revision_app_request_latencies_bucket{{{selector_bare}}}[{window}]))) / 1000",
        ),
        SignalSettings(
            name="concurrency",
            unit="requests",
            query="sum by (namespace, workload) (activator_request_concurrency{{{selector_bare}}})",
        ),
        SignalSettings(
            name="replicas",
            unit="pods",
            query="sum by (namespace, workload) (kube_deployment_status_replicas_available{{{selector_bare}}})",
        ),
        SignalSettings(
            name="node_cpu",
            unit="ratio",
            query='1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"{selector}}}[{window}]))',
            workload_labels=("instance",),
        ),
    ]


class CollectionSettings(_Group):
    """How often and how far back metrics are pulled."""

    step_seconds: int = Field(default=60, ge=1, le=3600)  # spacing of every series the models see
    rate_window: str = "5m"  # PromQL range of rate() in signal queries
    backfill_hours: float = Field(default=48.0, ge=0.0, le=24 * 90)  # history pulled at start (and gaps refilled)
    max_workers: int = Field(default=8, ge=1, le=256)  # clusters polled in parallel
    pull_wait_seconds: float = Field(default=5.0, gt=0.0)  # a step waits this long; slower clusters deliver later
    stale_after_steps: int = Field(default=5, ge=1)  # a cluster that answers without new samples this long is stale
    reload_config: bool = True  # re-read the --config file when it changes: clusters and signals, no restart


class ReplaySettings(_Group):
    """Replay recorded metrics instead of pulling them (a CSV or OpenMetrics file)."""

    path: Path | None = None  # set: replay this file instead of the simulated continuum
    cluster: str = "replay"  # cluster name for CSV columns that do not name one
    speed: float = Field(default=60.0, gt=0.0)  # replayed seconds per real second


class SimulationSettings(_Group):
    """The embedded simulated continuum used when no cluster is configured."""

    seed: int = 7
    step_seconds: int = Field(default=300, ge=10)  # simulated spacing of samples
    speed: float = Field(default=900.0, gt=0.0)  # simulated seconds per real second
    history_hours: float = Field(default=48.0, ge=0.0)  # learnt at start, so models are warm
    start_hour_utc: float = Field(default=5.5, ge=0.0, lt=24.0)  # simulated clock starts before the morning ramp


class ModelSettings(_Group):
    """Model kinds and their hyper-parameters, per signal if needed."""

    forecaster: str = "seasonal_ar"
    forecaster_params: dict[str, Any] = Field(default_factory=dict)
    detector: str = "record_ratio"
    detector_params: dict[str, Any] = Field(default_factory=dict)
    per_signal: dict[str, dict[str, Any]] = Field(default_factory=dict)  # {"cpu": {"forecaster": ..., ...}}
    horizon_steps: int = Field(default=12, ge=1, le=2016)
    interval: float = Field(default=0.9, gt=0.0, lt=1.0)  # coverage of the prediction band
    anomaly_threshold: float = Field(
        default=0.55, ge=0.0, le=1.0
    )  # score at or above it is an anomaly event (record_ratio: its alarm level)
    checkpoint_every_steps: int = Field(default=60, ge=1)


class KnativeScalingPolicy(_Group):
    """Predictive Knative scaling: raise min-scale before a forecast peak, lower it slowly."""

    signal: str = "requests"
    target_per_replica: float = Field(default=10.0, gt=0.0)  # requests/s one replica serves at target
    quantile: float = Field(default=0.95, gt=0.5, lt=1.0)  # upper quantile of the forecast used
    provision_for: Literal["surge", "quantile"] = "surge"  # the forecast's surge when it has one, else the quantile
    min_scale: int = Field(default=1, ge=0)
    max_scale: int = Field(default=50, ge=1)
    cold_start_seconds: float = Field(default=30.0, ge=0.0)  # lead time a new replica needs
    max_step_up: int = Field(default=10, ge=1)  # most replicas added by one recommendation
    # "predict up, react down": lowering the floor removes no pod by itself, the autoscaler's stable window
    # paces the way down; these slow the floor further (measured costly on bursty load: README, replay)
    scale_down_per_hour: int = Field(default=600, ge=0)
    scale_down_delay_minutes: float = Field(default=0.0, ge=0.0)  # no lowering sooner after any change
    max_relative_band: float = Field(default=10.0, gt=0.0)  # band wider than this x point: too uncertain

    @model_validator(mode="after")
    def _bounds(self) -> KnativeScalingPolicy:
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale {self.min_scale} is above max_scale {self.max_scale}")
        return self


class ReschedulePolicy(_Group):
    """Move workloads off a cluster forecast to saturate (or anomalous, or down)."""

    enabled: bool = True
    signal: str = "cpu"  # per-workload load signal, in the unit of the clusters' capacity_cores
    quantile: float = Field(default=0.95, gt=0.5, lt=1.0)  # upper quantile of each workload's forecast used
    saturation: float = Field(default=0.9, gt=0.0, le=1.0)  # forecast peak / capacity above it: saturated
    target_utilisation: float = Field(default=0.75, gt=0.0, le=1.0)  # a destination must stay below it after a move
    move_cost: float = Field(default=0.05, ge=0.0, le=1.0)  # capacity share a move must gain to be worth it
    min_dwell_minutes: float = Field(default=240.0, ge=0.0)  # a moved workload stays put at least this long
    max_moves_per_decision: int = Field(default=2, ge=0)
    anomaly_score: float = Field(default=0.9, ge=0.0, le=1.0)  # cluster anomalous: half its workloads above it

    @model_validator(mode="after")
    def _levels(self) -> ReschedulePolicy:
        if self.target_utilisation > self.saturation:
            raise ValueError(f"target_utilisation {self.target_utilisation} is above saturation {self.saturation}")
        return self


class PlacementScorePolicy(_Group):
    """Forecast headroom per cluster, published as OCM AddOnPlacementScores (enact mode)."""

    enabled: bool = True
    quantile: float = Field(default=0.95, gt=0.5, lt=1.0)
    valid_minutes: float = Field(default=15.0, gt=0.0)  # validUntil: stale scores are ignored by Placements
    publish_every_minutes: float = Field(default=5.0, gt=0.0)


class SafetyEnvelope(_Group):
    """Applied again by the actuator to every action, whatever the decider said."""

    max_step: int = Field(default=10, ge=1)  # most replicas one action adds or removes
    min_change: int = Field(default=1, ge=1)  # hysteresis: smaller changes are not enacted
    cooldown_minutes: float = Field(default=5.0, ge=0.0)  # between two actions on the same target
    reversal_minutes: float = Field(default=30.0, ge=0.0)  # no opposite action on a target sooner (no flapping)
    budget_actions: int = Field(default=30, ge=0)  # actions enacted per budget period, all targets together
    budget_period_minutes: float = Field(default=60.0, gt=0.0)
    kill_switch_file: Path | None = None  # while this file exists nothing is enacted (also: POST /v1/actuator/kill)


class PolicyOverride(_Group):
    """Settings for the workloads it matches; the most specific match wins (workload over namespace)."""

    cluster: str | None = None
    namespace: str | None = None
    workload: str | None = None
    mode: Mode | None = None
    kind: WorkloadKind | None = None
    knative: dict[str, Any] = Field(default_factory=dict)  # any KnativeScalingPolicy key
    movable: bool | None = None  # False: never rescheduled
    tiers: tuple[Tier, ...] | None = None  # allowed destination tiers
    cluster_labels: dict[str, str] = Field(default_factory=dict)  # a destination must carry these labels

    @model_validator(mode="after")
    def _selects(self) -> PolicyOverride:
        if self.namespace is None and self.workload is None and self.cluster is None:
            raise ValueError("an override selects by cluster, namespace and/or workload")
        return self

    def specificity(self) -> int:
        return (self.workload is not None) * 4 + (self.namespace is not None) * 2 + (self.cluster is not None)

    def matches(self, cluster: str, namespace: str, workload: str) -> bool:
        return (
            self.cluster in (None, cluster)
            and self.namespace in (None, namespace)
            and self.workload in (None, workload)
        )


class PolicySettings(_Group):
    mode: Mode = Mode.RECOMMEND
    knative: KnativeScalingPolicy = Field(default_factory=KnativeScalingPolicy)
    reschedule: ReschedulePolicy = Field(default_factory=ReschedulePolicy)
    placement_scores: PlacementScorePolicy = Field(default_factory=PlacementScorePolicy)
    envelope: SafetyEnvelope = Field(default_factory=SafetyEnvelope)
    overrides: list[PolicyOverride] = Field(default_factory=list)
    recommendation_ttl_minutes: float = Field(default=60.0, gt=0.0)

    @model_validator(mode="after")
    def _override_policies(self) -> PolicySettings:
        for i, o in enumerate(self.overrides):
            try:
                KnativeScalingPolicy(**{**self.knative.model_dump(), **o.knative})
            except ValidationError as exc:
                problems = "; ".join(_describe(e) for e in exc.errors())
                raise ValueError(f"overrides[{i}].knative: {problems}") from None
        return self


class MlflowSettings(_Group):
    """Model tracking. No URI: a local SQLite store in the state directory."""

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "icos-intelligence"
    log_every_steps: int = Field(default=30, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0.0)
    follow_champions: bool = True  # run each signal's registered champion (registered on a first start)
    registry_poll_seconds: float = Field(default=60.0, gt=0.0)  # how soon a newly promoted champion is picked up
    challenger_window_samples: int = Field(default=2000, ge=10)  # live samples a challenger is judged on, per signal
    promotion_margin: float = Field(default=0.02, ge=0.0, lt=1.0)  # it must beat the champion's error by this share
    checkpoint_artifact_every: int = Field(default=10, ge=0)  # every n-th checkpoint also goes to the run (0: never)


class KnativeScalePath(enum.StrEnum):
    """Where min-scale / max-scale are written (see README, "Knative scaling path")."""

    POD_AUTOSCALER = (
        "pod-autoscaler"  # annotate the serving Revisions' PodAutoscalers (and the Revisions): no new Revision
    )
    SERVICE_TEMPLATE = "service-template"  # explicit fallback: edit the Service template, which creates a Revision


class KubernetesSettings(_Group):
    """Where the meta-kernel adapters act. Nothing is contacted unless some mode is approve or enact."""

    kubeconfig: Path | None = None
    context: str | None = None  # default context for member clusters not listed in cluster_contexts
    in_cluster: bool = False
    hub_context: str | None = None  # OCM hub: ManagedCluster, ManifestWork, Placement, AddOnPlacementScore
    cluster_contexts: dict[str, str] = Field(default_factory=dict)  # member cluster name -> kubeconfig context
    knative_scale_path: KnativeScalePath = KnativeScalePath.POD_AUTOSCALER
    request_timeout_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    retries: int = Field(default=3, ge=0, le=10)  # temporary errors (409 after re-read, 429, 5xx, connection)
    backoff_seconds: float = Field(default=0.5, ge=0.0, le=60.0)  # first retry delay; doubles
    workload_label: str = "apps.icos.eu/workload"  # ManifestWork label whose value is "<namespace>.<name>"
    placement_score_name: str = "icos-headroom"  # AddOnPlacementScore name in each ManagedCluster namespace


class ApiSettings(_Group):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0 picks a free port
    token_file: Path | None = None  # bearer token for the mutating endpoints


class StorageSettings(_Group):
    """Local state: checkpoints, the embedded MLflow store and the decision database."""

    state_dir: Path = Path(".icos-state")
    database_url: str | None = None  # SQLAlchemy URL; default sqlite in state_dir

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'decisions.db').resolve()}"


class EngineSettings(_Group):
    """The loop, and sharding for scale-out (each replica owns hash(series) % shards == index)."""

    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)
    anomaly_events_kept: int = Field(default=2000, ge=10)

    @model_validator(mode="after")
    def _shard(self) -> EngineSettings:
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} must be below shard_count {self.shard_count}")
        return self


class Settings(BaseSettings):
    """Everything the service needs, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="ICOS_", env_nested_delimiter="__", extra="forbid", frozen=True, validate_default=True
    )

    clusters: list[ClusterSettings] = Field(default_factory=list)
    signals: list[SignalSettings] = Field(default_factory=_default_signals)
    collection: CollectionSettings = Field(default_factory=CollectionSettings)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the YAML file (passed as init values).
        return env_settings, init_settings

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for what, names in (("clusters", [c.name for c in self.clusters]), ("signals", [s.name for s in self.signals])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate name(s) {', '.join(dupes)}")
        return self

    @property
    def embedded(self) -> bool:
        """No cluster configured: run the built-in simulated continuum (or replay a file)."""
        return not self.clusters

    @property
    def replaying(self) -> bool:
        return self.embedded and self.replay.path is not None

    @property
    def mlflow_uri(self) -> str:
        """The tracking server, or the embedded SQLite store in the state directory."""
        return self.mlflow.tracking_uri or f"sqlite:///{(self.storage.state_dir / 'mlflow.db').resolve()}"


def _describe(error: Any) -> str:
    loc = ""
    for part in error.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    loc = loc or "(top level)"
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        return f"{loc}: unknown key"
    if error.get("type") == "missing":
        return f"{loc}: required key is missing"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{loc}: {msg.removeprefix('Value error, ')} (got {shown})"


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from an optional YAML file, the environment and ``overrides``.

    Raises :class:`ConfigError` with one message per problem.
    """
    source = str(path) if path else "defaults and environment"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(source, [f"the top level must be a mapping of groups, got {type(loaded).__name__}"])
        data = loaded
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from exc
