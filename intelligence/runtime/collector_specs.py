"""The Prometheus collector's typed inputs, built from the validated settings.

The collector never sees the settings tree: it is handed plain frozen values
(:class:`ClusterTarget`, :class:`Signal`, :class:`CollectionSpec`), as Knative's scaler is
handed a ``DeciderSpec`` parsed once from its ConfigMap. This module is the one place that
knows both shapes, so a renamed setting breaks here, under mypy, and nowhere else.
"""

from __future__ import annotations

from collectors.prometheus import ClusterTarget, CollectionSpec, Signal
from intelligence.settings import ClusterSettings, Settings


def cluster_target(c: ClusterSettings) -> ClusterTarget:
    """How to reach one cluster: a CA file (if any) replaces ``verify_tls``; a client cert goes with its key."""
    a = c.auth
    return ClusterTarget(
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


def signals(settings: Settings) -> list[Signal]:
    """Every configured signal's name, PromQL template and workload labels (its unit stays in the settings)."""
    return [Signal(s.name, s.query, tuple(s.workload_labels)) for s in settings.signals]


def collection_spec(settings: Settings) -> CollectionSpec:
    """The ``collection`` settings as the collector takes them (the backfill in seconds, not hours)."""
    col = settings.collection
    return CollectionSpec(
        step_seconds=col.step_seconds,
        rate_window=col.rate_window,
        backfill_seconds=col.backfill_hours * 3600.0,
        max_workers=col.max_workers,
        wait_seconds=col.pull_wait_seconds,
        stale_after_steps=col.stale_after_steps,
    )
