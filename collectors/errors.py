"""The collectors' own small error tree; library exceptions are translated at the boundary.

The type says the retry policy: ``temporary`` errors are retried (with backoff) and
count towards the circuit breaker; permanent ones are reported and not retried.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every collector error. Names the cluster (and signal) concerned."""

    temporary: bool = True
    kind: str = "error"

    def __init__(self, cluster: str, message: str, signal: str | None = None) -> None:
        self.cluster = cluster
        self.signal = signal
        self.detail = message
        where = f"cluster {cluster!r}" + (f", signal {signal!r}" if signal else "")
        super().__init__(f"{where}: {message}")


class EndpointUnreachable(CollectorError):
    """Connection refused, DNS failure, timeout, 429 or 5xx: retry later."""

    kind = "unreachable"


class QueryRejected(CollectorError):
    """Prometheus refused the query (bad PromQL, too many samples): retrying will not help."""

    temporary = False
    kind = "rejected"


class AuthenticationFailed(CollectorError):
    """401/403 from the endpoint, or a credential file that cannot be read."""

    temporary = False
    kind = "auth"


class MalformedResponse(CollectorError):
    """The endpoint answered something that is not a Prometheus API response."""

    kind = "malformed"


class NotPrometheus(MalformedResponse):
    """404 on the API path: the URL does not point at a Prometheus or Thanos Query."""

    temporary = False
    kind = "not-prometheus"
