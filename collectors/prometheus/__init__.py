"""Prometheus / Thanos Query collector, one module per seam.

- :mod:`~collectors.prometheus.specs`: what to collect and how (clusters, signals, cadence), plain frozen values;
- :mod:`~collectors.prometheus.parsing`: raw JSON (values as strings) to float arrays, PromQL templates;
- :mod:`~collectors.prometheus.transport`: one cluster's HTTP, retries with jitter, library errors
  mapped to :mod:`collectors.errors`; the only module that imports ``prometheus_api_client``;
- :mod:`~collectors.prometheus.poller`: one cluster's watermarks, chunked range queries, breaker and health;
- :mod:`~collectors.prometheus.collector`: every cluster in parallel, a step waiting at most ``wait_seconds``.
"""

from collectors.prometheus.collector import PrometheusCollector
from collectors.prometheus.parsing import RawMatrix, convert_matrix, render_query
from collectors.prometheus.poller import ClusterPoller
from collectors.prometheus.specs import ClusterTarget, CollectionSpec, Signal
from collectors.prometheus.transport import PrometheusTransport

__all__ = [
    "ClusterPoller",
    "ClusterTarget",
    "CollectionSpec",
    "PrometheusCollector",
    "PrometheusTransport",
    "RawMatrix",
    "Signal",
    "convert_matrix",
    "render_query",
]
