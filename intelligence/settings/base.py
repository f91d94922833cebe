"""The base of every settings group: frozen, and unknown keys are errors."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HTTP_URL = re.compile(r"^https?://[^/\s]+")


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def dns_label(v: str) -> str:
    """A name used as a Kubernetes object or label (a cluster, a webhook subscriber)."""
    if not _DNS_LABEL.match(v):
        raise ValueError("must be a DNS-1123 label (lower case letters, digits and '-')")
    return v


def http_url(v: str) -> str:
    if not _HTTP_URL.match(v):
        raise ValueError("must be an http:// or https:// URL")
    return v
