"""The components' typed inputs, built from the validated settings: the one place that knows both shapes.

No component sees the settings tree: the decision code gets a :class:`PolicySpec`, the
adapters a :class:`KubernetesSpec`, the Prometheus collector :class:`ClusterTarget`,
:class:`Signal` and :class:`CollectionSpec`, as Knative's scaler is handed a
``DeciderSpec`` parsed once from its ConfigMap. A renamed setting breaks here, under mypy,
and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intelligence.actuation.adapters.spec import KubernetesSpec
from intelligence.decisions.specs import (
    EnvelopeSpec,
    KnativeFloorSpec,
    OverrideSpec,
    PlacementScoreSpec,
    PolicySpec,
    RescheduleSpec,
)
from intelligence.settings import (
    ClusterSettings,
    KnativeScalingPolicy,
    KubernetesSettings,
    PolicySettings,
    SafetyEnvelope,
    Settings,
)

if TYPE_CHECKING:  # the collector package imports the HTTP stack: only the Prometheus source needs it
    from collectors.prometheus import ClusterTarget, CollectionSpec, Signal


def knative_floor_spec(p: KnativeScalingPolicy) -> KnativeFloorSpec:
    return KnativeFloorSpec(**p.model_dump())


def envelope_spec(e: SafetyEnvelope) -> EnvelopeSpec:
    return EnvelopeSpec(**e.model_dump())


def policy_spec(p: PolicySettings) -> PolicySpec:
    """Modes, the Knative floor, rescheduling, placement scores, the envelope and the overrides, as one spec."""
    return PolicySpec(
        mode=p.mode,
        knative=knative_floor_spec(p.knative),
        reschedule=RescheduleSpec(**p.reschedule.model_dump()),
        placement_scores=PlacementScoreSpec(**p.placement_scores.model_dump()),
        envelope=envelope_spec(p.envelope),
        overrides=tuple(OverrideSpec(**o.model_dump()) for o in p.overrides),
        recommendation_ttl_minutes=p.recommendation_ttl_minutes,
    )


def kubernetes_spec(k: KubernetesSettings) -> KubernetesSpec:
    return KubernetesSpec(**k.model_dump())


def cluster_target(c: ClusterSettings) -> ClusterTarget:
    """How to reach one cluster: a CA file (if any) replaces ``verify_tls``; a client cert goes with its key."""
    from collectors.prometheus import ClusterTarget

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
    from collectors.prometheus import Signal

    return [Signal(s.name, s.query, tuple(s.workload_labels)) for s in settings.signals]


def collection_spec(settings: Settings) -> CollectionSpec:
    """The ``collection`` settings as the collector takes them (the backfill in seconds, not hours)."""
    from collectors.prometheus import CollectionSpec

    col = settings.collection
    return CollectionSpec(
        step_seconds=col.step_seconds,
        rate_window=col.rate_window,
        backfill_seconds=col.backfill_hours * 3600.0,
        max_workers=col.max_workers,
        wait_seconds=col.pull_wait_seconds,
        stale_after_steps=col.stale_after_steps,
    )
