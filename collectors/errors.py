"""The collectors' own small error tree; library exceptions are translated at the boundary."""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every collector error. Names the cluster (and signal) concerned."""

    temporary: bool = True

    def __init__(self, cluster: str, message: str, signal: str | None = None) -> None:
        self.cluster = cluster
        self.signal = signal
        where = f"cluster {cluster!r}" + (f", signal {signal!r}" if signal else "")
        super().__init__(f"{where}: {message}")


class EndpointUnreachable(CollectorError):
    """Connection refused, DNS failure or timeout: retry later."""


class QueryRejected(CollectorError):
    """Prometheus refused the query (bad PromQL, too many points): retrying will not help."""

    temporary = False


class AuthenticationFailed(CollectorError):
    """401/403 from the endpoint: the credentials are wrong or missing."""

    temporary = False


class MalformedResponse(CollectorError):
    """The endpoint answered something that is not a Prometheus API response."""
