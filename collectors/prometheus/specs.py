"""What the Prometheus collector is told to collect: plain frozen values, no settings tree.

A :class:`ClusterTarget` says how to reach one cluster's Prometheus or Thanos Query (URL,
selector, credentials as file paths, TLS, timeouts, retries, breaker); a :class:`Signal`
is a named PromQL template and the labels that identify a workload in its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    retries: int = 2
    backoff_seconds: float = 0.5
    breaker_failures: int = 3
    breaker_cooldown_seconds: float = 30.0

    @classmethod
    def from_settings(cls, c: Any) -> ClusterTarget:
        a = c.auth
        return cls(
            name=c.name,
            tier=c.tier,
            url=c.url,
            selector=dict(c.selector),
            timeout_seconds=c.timeout_seconds,
            bearer_token_file=a.bearer_token_file,
            basic_user=a.basic_user,
            basic_password_file=a.basic_password_file,
            verify=str(a.ca_file) if a.ca_file else a.verify_tls,
            cert=(str(a.client_cert_file), str(a.client_key_file)) if a.client_cert_file else None,
            retries=c.retries,
            backoff_seconds=c.backoff_seconds,
            breaker_failures=c.breaker_failures,
            breaker_cooldown_seconds=c.breaker_cooldown_seconds,
        )


def signals_from_settings(settings: Any) -> list[Signal]:
    return [Signal(s.name, s.query, tuple(s.workload_labels)) for s in settings.signals]
