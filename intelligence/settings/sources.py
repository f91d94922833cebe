"""Where samples come from: clusters and their endpoints, signals (PromQL), collection, replay, simulation."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from intelligence.settings.base import _Group, dns_label, http_url
from intelligence.vocabulary import Tier

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
        return dns_label(v)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return http_url(v).rstrip("/")


class SignalSettings(_Group):
    """A named PromQL query and the labels that identify a workload in its result.

    ``{selector}`` in the query is replaced by the cluster's selector (may be empty);
    ``{window}`` by the rate window.
    """

    name: str
    query: str
    workload_labels: tuple[str, ...] = ("namespace", "workload")
    unit: str = ""
    non_negative: bool = True  # forecasts and bands are clipped at 0; false for a signal that can go negative

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


def default_signals() -> list[SignalSettings]:
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
