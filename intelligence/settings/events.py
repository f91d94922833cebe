"""Events for consumers that must not poll: the CloudEvents stream, and webhooks to each subscriber."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from intelligence.settings.base import _Group, dns_label, http_url


class WebhookSettings(_Group):
    """One subscriber: events are POSTed to ``url`` as CloudEvents (structured mode), signed with its secret.

    Delivered in order from the database's outbox; a failed delivery is retried with backoff (doubling up to
    ``max_backoff_seconds``) until it is accepted (any 2xx), so that none is lost, even across restarts.
    """

    name: str  # the subscriber's name: its delivery cursor in the database
    url: str
    secret_file: Path  # the HMAC key (read at each delivery: a rotated secret is picked up)
    types: list[str] = Field(default_factory=list)  # type prefixes to deliver, e.g. ["eu.icos.recommendation."]
    clusters: list[str] = Field(default_factory=list)  # only events about these clusters (empty: all)
    namespaces: list[str] = Field(default_factory=list)  # only events about these namespaces (empty: all)
    timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)  # per delivery attempt
    backoff_seconds: float = Field(default=1.0, gt=0.0, le=3600.0)  # first retry; doubles, with jitter
    max_backoff_seconds: float = Field(default=300.0, gt=0.0, le=86_400.0)

    @field_validator("name")
    @classmethod
    def _dns_name(cls, v: str) -> str:
        return dns_label(v)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return http_url(v)


class EventSettings(_Group):
    """What becomes an event, how long the outbox keeps events, and the webhook subscribers."""

    source: str = "/icos-intelligence"  # the CloudEvents ``source`` of every event (unique per deployment)
    anomaly_min_score: float = Field(default=0.9, ge=0.0, le=1.0)  # anomalies at or above it are events
    anomaly_max_age_steps: int = Field(default=3, ge=1)  # older samples' anomalies (a backfill) are not events
    retention_hours: float = Field(default=168.0, gt=0.0)  # events older than this and delivered are deleted
    poll_seconds: float = Field(default=0.5, gt=0.0, le=60.0)  # the stream and the webhooks look this often
    heartbeat_seconds: float = Field(default=15.0, gt=0.0, le=300.0)  # an idle stream sends a comment this often
    gap_seconds: float = Field(default=5.0, ge=0.0, le=300.0)  # an event id left out waits this long (see docs)
    webhooks: list[WebhookSettings] = Field(default_factory=list)

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, v: list[WebhookSettings]) -> list[WebhookSettings]:
        names = [w.name for w in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate webhook name(s) {', '.join(dupes)}")
        return v
