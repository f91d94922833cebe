"""Prometheus / Thanos Query collector (prometheus-api-client).

The only module that imports ``prometheus_api_client``: raw JSON (values as
strings) becomes float arrays here, and library exceptions become
:mod:`collectors.errors`. One client per cluster; clusters are polled in parallel
and one failing cluster never fails the others.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from collectors.base import ClusterHealth, HealthState, PullResult, SeriesBatch, normalise
from collectors.errors import (
    AuthenticationFailed,
    CollectorError,
    EndpointUnreachable,
    MalformedResponse,
    QueryRejected,
)
from intelligence.domain import SeriesKey, Tier

log = logging.getLogger(__name__)

MAX_POINTS_PER_QUERY = 11_000  # Prometheus refuses range queries returning more points per series


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    query: str
    workload_labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    name: str
    tier: Tier
    url: str
    selector: dict[str, str]
    timeout_seconds: float
    headers: dict[str, str]
    basic_auth: tuple[str, str] | None = None
    verify: bool | str = True
    cert: tuple[str, str] | None = None


def render_query(template: str, selector: dict[str, str], window: str) -> str:
    """Fill ``{selector}`` (``,k="v"...``), ``{selector_bare}`` (``k="v",...``) and ``{window}``."""
    bare = ",".join(f'{k}="{v}"' for k, v in sorted(selector.items()))
    return template.format(selector=("," + bare) if bare else "", selector_bare=bare, window=window)


def convert_matrix(cluster: str, signal: Signal, result: Any) -> list[SeriesBatch]:
    """Prometheus ``matrix`` result -> batches keyed by (cluster, signal, workload labels)."""
    if not isinstance(result, list):
        raise MalformedResponse(cluster, f"expected a matrix result, got {type(result).__name__}", signal.name)
    batches = []
    for item in result:
        try:
            metric = item["metric"]
            values = item["values"]
        except (KeyError, TypeError) as exc:
            raise MalformedResponse(cluster, f"series without metric/values: {str(item)[:120]}", signal.name) from exc
        labels = {name: metric[name] for name in signal.workload_labels if name in metric}
        key = SeriesKey.of(cluster, signal.name, labels)
        if not values:
            continue
        try:
            pairs = np.asarray(values, dtype=object)
            ts = pairs[:, 0].astype(np.float64)
            vs = pairs[:, 1].astype(np.float64)  # "NaN", "+Inf" parse; stale points become NaN downstream
        except (ValueError, IndexError, TypeError) as exc:
            raise MalformedResponse(cluster, f"unparseable samples for {key}: {exc}", signal.name) from exc
        batches.append(normalise(key, ts, vs))
    return batches


class _ClusterClient:
    def __init__(self, target: ClusterTarget) -> None:
        self.target = target
        session = requests.Session()
        session.verify = target.verify
        if target.cert:
            session.cert = target.cert
        retry = Retry(
            total=1,
            connect=1,
            read=0,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self.api = PrometheusConnect(
            url=target.url,
            headers=target.headers or None,
            retry=retry,
            auth=target.basic_auth,
            session=session,
            timeout=math.ceil(target.timeout_seconds),
        )

    def query_range(self, signal: Signal, query: str, start: float, end: float, step: int) -> Any:
        name = self.target.name
        try:
            return self.api.custom_query_range(
                query, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), f"{step}s"
            )
        except PrometheusApiClientException as exc:
            text = str(exc)
            if "401" in text[:40] or "403" in text[:40]:
                raise AuthenticationFailed(name, f"authentication failed ({text[:200]})", signal.name) from exc
            if "HTTP Status Code 4" in text:
                raise QueryRejected(name, f"query rejected: {text[:300]}", signal.name) from exc
            raise EndpointUnreachable(name, f"server error: {text[:300]}", signal.name) from exc
        except requests.exceptions.Timeout as exc:
            raise EndpointUnreachable(name, f"timed out after {self.target.timeout_seconds}s", signal.name) from exc
        except requests.exceptions.RequestException as exc:
            raise EndpointUnreachable(
                name, f"unreachable at {self.target.url}: {type(exc).__name__}", signal.name
            ) from exc
        except ValueError as exc:  # response.json() failed
            raise MalformedResponse(name, f"not a Prometheus API response: {exc}", signal.name) from exc


class PrometheusCollector:
    """Incremental range queries per (cluster, signal), aligned to the step and chunked."""

    def __init__(
        self,
        targets: Sequence[ClusterTarget],
        signals: Sequence[Signal],
        step_seconds: int,
        rate_window: str,
        backfill_seconds: float,
        max_workers: int = 8,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.signals = list(signals)
        self.step = step_seconds
        self.rate_window = rate_window
        self.backfill_seconds = backfill_seconds
        self._clients = {t.name: _ClusterClient(t) for t in targets}
        self._watermarks: dict[tuple[str, str], float] = {}
        self._health: dict[str, ClusterHealth] = {
            t.name: ClusterHealth(t.name, t.tier, HealthState.UNKNOWN) for t in targets
        }
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(max_workers, len(targets) or 1)), thread_name_prefix="collect"
        )
        self._timer = timer

    @classmethod
    def from_settings(cls, settings: Any) -> PrometheusCollector:
        targets = []
        for c in settings.clusters:
            headers = {}
            if c.auth.bearer_token_file:
                headers["Authorization"] = "Bearer " + c.auth.bearer_token_file.read_text().strip()
            basic = None
            if c.auth.basic_user:
                password = c.auth.basic_password_file.read_text().strip() if c.auth.basic_password_file else ""
                basic = (c.auth.basic_user, password)
            verify: bool | str = str(c.auth.ca_file) if c.auth.ca_file else c.auth.verify_tls
            cert = (str(c.auth.client_cert_file), str(c.auth.client_key_file)) if c.auth.client_cert_file else None
            targets.append(
                ClusterTarget(c.name, c.tier, c.url, dict(c.selector), c.timeout_seconds, headers, basic, verify, cert)
            )
        signals = [Signal(s.name, s.query, tuple(s.workload_labels)) for s in settings.signals]
        col = settings.collection
        return cls(targets, signals, col.step_seconds, col.rate_window, col.backfill_hours * 3600.0, col.max_workers)

    def health(self) -> list[ClusterHealth]:
        with self._lock:
            return list(self._health.values())

    def pull(self, now: float) -> PullResult:
        futures = [self._pool.submit(self._pull_cluster, name, now) for name in self._clients]
        batches: list[SeriesBatch] = []
        for f in futures:
            batches.extend(f.result())
        return PullResult(batches, self.health())

    def _pull_cluster(self, name: str, now: float) -> list[SeriesBatch]:
        client = self._clients[name]
        end = math.floor(now / self.step) * self.step
        batches: list[SeriesBatch] = []
        errors: list[CollectorError] = []
        started = self._timer()
        for signal in self.signals:
            mark = self._watermarks.get((name, signal.name))
            start = (
                (mark + self.step)
                if mark is not None
                else math.floor((now - self.backfill_seconds) / self.step) * self.step
            )
            if start > end:
                continue
            query = render_query(signal.query, client.target.selector, self.rate_window)
            try:
                batches.extend(self._range(client, signal, query, start, end))
                self._watermarks[(name, signal.name)] = end
            except CollectorError as exc:
                errors.append(exc)
                log.warning("%s", exc)
        latency = self._timer() - started
        previous = self._health[name]
        last_success: float | None
        if not errors:
            state, last_error, last_success = HealthState.UP, None, now
        elif len(errors) < len(self.signals):
            state, last_error, last_success = HealthState.DEGRADED, str(errors[-1]), now
        else:
            state, last_error, last_success = HealthState.DOWN, str(errors[-1]), previous.last_success
        series = len({b.key for b in batches}) or previous.series
        with self._lock:
            self._health[name] = ClusterHealth(
                name, client.target.tier, state, last_success, last_error, latency, series
            )
        return batches

    def _range(self, client: _ClusterClient, signal: Signal, query: str, start: float, end: float) -> list[SeriesBatch]:
        chunk = (MAX_POINTS_PER_QUERY - 1) * self.step
        merged: dict[SeriesKey, list[SeriesBatch]] = {}
        lo = start
        while lo <= end:
            hi = min(end, lo + chunk)
            for b in convert_matrix(client.target.name, signal, client.query_range(signal, query, lo, hi, self.step)):
                merged.setdefault(b.key, []).append(b)
            lo = hi + self.step
        out = []
        for key, parts in merged.items():
            ts = np.concatenate([p.timestamps for p in parts])
            vs = np.concatenate([p.values for p in parts])
            out.append(normalise(key, ts, vs))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
