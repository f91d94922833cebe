"""What the Prometheus collector is told to collect, and how: plain frozen values, never a settings tree.

A :class:`ClusterTarget` says how to reach one cluster's Prometheus or Thanos Query (URL,
selector, credentials as file paths, TLS, timeouts, retries, breaker); a :class:`Signal`
is a named PromQL template and the labels that identify a workload in its result; a
:class:`CollectionSpec` says how often, how far back and how patiently every cluster is
pulled. The composition root builds them from the settings
(``intelligence.runtime.specs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from intelligence.vocabulary import Tier


@dataclass(frozen=True, slots=True)
class Signal:
    """A named PromQL template (``{selector}``, ``{selector_bare}``, ``{window}``) and its workload labels."""

    name: str
    query: str
    workload_labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """Everything needed to reach one cluster's metrics endpoint."""

    name: str
    tier: Tier
    url: str
    selector: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    bearer_token_file: Path | None = None
    basic_user: str | None = None
    basic_password_file: Path | None = None
    verify: bool | str = True  # verify TLS against the system CAs, or the path of a CA bundle; False: do not
    cert: tuple[str, str] | None = None  # client certificate and key files, for mutual TLS
    retries: int = 2
    backoff_seconds: float = 0.5
    breaker_failures: int = 3
    breaker_cooldown_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """How every cluster is pulled; the defaults are those of the service's ``collection`` settings."""

    step_seconds: int = 60  # spacing of every series the models see; queries are aligned to it
    rate_window: str = "5m"  # PromQL range of rate() in signal queries (``{window}``)
    backfill_seconds: float = 48 * 3600.0  # history pulled at start, and the longest gap refilled after an outage
    max_workers: int = 8  # clusters polled in parallel
    wait_seconds: float = 5.0  # a pull waits this long; slower clusters deliver at a later pull
    stale_after_steps: int = 5  # a cluster that answers without new samples for this many steps is stale
