"""Prometheus / Thanos Query collector (prometheus-api-client).

The only module that imports ``prometheus_api_client``: raw JSON (values as
strings) becomes float arrays here, and library exceptions become
:mod:`collectors.errors`. One poller per cluster, polled in parallel by a bounded
pool; a step waits at most ``wait_seconds``, so a slow cluster delivers at a later
step instead of delaying the others. Each cluster has retries with backoff and
jitter, a circuit breaker and a health state; after an outage its gap is backfilled
from the watermark (within the backfill window).
"""

from __future__ import annotations

import ast
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from collectors.base import PullResult, normalise
from collectors.errors import (
    AuthenticationFailed,
    CollectorError,
    EndpointUnreachable,
    MalformedResponse,
    NotPrometheus,
    QueryRejected,
)
from collectors.resilience import BreakerState, CircuitBreaker, backoff_delays
from collectors.telemetry import CollectorTelemetry
from intelligence.vocabulary import ClusterHealth, HealthState, SeriesBatch, SeriesKey, Tier

log = logging.getLogger(__name__)

MAX_POINTS_PER_QUERY = 11_000  # Prometheus refuses range queries returning more points per series
_STATUS = re.compile(r"HTTP Status Code (\d{3})")

Progress = Callable[[str, int, int], None]  # (cluster, chunks done, chunks planned)


@dataclass(frozen=True, slots=True)
class Signal:
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


def _error_body(text: str) -> str:
    """Prometheus' own error message out of the library's ``HTTP Status Code 400 (b'{...}')``."""
    raw = text.strip().removeprefix("(").removesuffix(")")
    try:
        body = ast.literal_eval(raw)
        message = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    except (ValueError, SyntaxError):
        message = raw
    try:
        parsed = orjson.loads(message)
        if isinstance(parsed, dict) and "error" in parsed:
            message = f"{parsed.get('errorType', 'error')}: {parsed['error']}"
    except orjson.JSONDecodeError:
        pass
    return message.strip()[:300]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def render_query(template: str, selector: dict[str, str], window: str) -> str:
    """Fill ``{selector}`` (``,k="v"...``), ``{selector_bare}`` (``k="v",...``) and ``{window}``."""
    bare = ",".join(f'{k}="{v}"' for k, v in sorted(selector.items()))
    return template.format(selector=("," + bare) if bare else "", selector_bare=bare, window=window)


_MATRIX_PREFIX = b'{"status":"success","data":{"resultType":"matrix","result":['
_METRIC = b'{"metric":'
_VALUES = b'},"values":[['


class RawMatrix:
    """A matrix response body, converted straight to float arrays without a Python object per sample.

    Prometheus and Thanos write compact JSON in a fixed shape:
    ``{"metric":{...},"values":[[t,"v"],...]}`` per series. The labels are parsed with orjson;
    the values segment becomes ``t,v,t,v...`` and numpy parses it in C ("NaN", "+Inf" included).
    A label value cannot contain the unescaped separators searched for, so the scan is exact.
    Iterating gives the plain parsed series, for any other consumer.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Any:
        return iter(orjson.loads(self.body)["data"]["result"])

    def series(self) -> Any:
        """Yields (metric labels, timestamps, values) per series that has float samples."""
        body = self.body
        pos = len(_MATRIX_PREFIX) - 1
        while True:
            i = body.find(_METRIC, pos)
            if i < 0:
                return
            j = body.find(_VALUES, i)
            following = body.find(_METRIC, i + len(_METRIC))
            if j < 0 or (0 <= following < j):  # a series without float samples (native histograms)
                pos = i + len(_METRIC)
                continue
            metric = orjson.loads(body[i + len(_METRIC) : j + 1])
            k = body.find(b"]]", j)
            segment = body[j + len(_VALUES) - 1 : k + 1].translate(None, b'[]"')
            flat = np.fromstring(segment, dtype=np.float64, sep=",")
            if flat.size != segment.count(b",") + 1 or flat.size % 2:
                raise ValueError(f"unparseable values after {body[i : i + 120]!r}")
            yield metric, flat[0::2], flat[1::2]
            pos = k


def _pairs(result: Any) -> Any:
    """(metric, timestamps, values) per series of a parsed (list) matrix result."""
    for item in result:
        if isinstance(item, dict) and "values" not in item and "histograms" in item:
            continue  # native histograms only: no float samples
        try:
            metric, values = item["metric"], item["values"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"series without metric/values: {str(item)[:120]}") from exc
        n = len(values)
        ts = np.fromiter((v[0] for v in values), dtype=np.float64, count=n)
        vs = np.array([v[1] for v in values], dtype=np.float64)
        yield metric, ts, vs


def convert_matrix(cluster: str, signal: Signal, result: Any) -> list[SeriesBatch]:
    """Prometheus ``matrix`` result (parsed, or a :class:`RawMatrix`) -> batches keyed by (cluster, signal, labels).

    Values arrive as strings ("1.5", "NaN", "+Inf"); +-Inf becomes NaN (a missing value).
    Two result series that map to the same workload labels are an error in the signal's
    query (it must aggregate ``by`` them), reported rather than silently mixed.
    """
    if isinstance(result, RawMatrix):
        series = result.series()
    elif isinstance(result, list):
        series = _pairs(result)
    else:
        raise MalformedResponse(cluster, f"expected a matrix result, got {type(result).__name__}", signal.name)
    batches: dict[SeriesKey, SeriesBatch] = {}
    try:
        for metric, ts, vs in series:
            if ts.size == 0:
                continue
            labels = {name: metric[name] for name in signal.workload_labels if name in metric}
            key = SeriesKey.of(cluster, signal.name, labels)
            if key in batches:
                raise QueryRejected(
                    cluster,
                    f"two result series map to {key}: aggregate the query by {', '.join(signal.workload_labels)}",
                    signal.name,
                )
            batches[key] = normalise(key, ts, vs)
    except (ValueError, IndexError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
        raise MalformedResponse(cluster, f"unparseable result: {exc}", signal.name) from exc
    return list(batches.values())


class _TimedSession(requests.Session):
    """A session that parses JSON with orjson and accounts where the time goes."""

    def __init__(self) -> None:
        super().__init__()
        self.http_seconds = 0.0  # waiting for the server and the transfer
        self.parse_seconds = 0.0  # parsing JSON: ours

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        response = super().request(*args, **kwargs)
        _ = response.content  # the body is read here: part of the server's time
        self.http_seconds += time.perf_counter() - started

        def fast_json(**_: Any) -> Any:
            t = time.perf_counter()
            try:
                body = response.content
                if body.startswith(_MATRIX_PREFIX):  # converted later, without an object per sample
                    return {"status": "success", "data": {"resultType": "matrix", "result": RawMatrix(body)}}
                return orjson.loads(body)
            finally:
                self.parse_seconds += time.perf_counter() - t

        response.json = fast_json  # type: ignore[method-assign]
        return response


class PrometheusTransport:
    """One cluster's HTTP: a range query with retries (exponential backoff, jitter) and error mapping."""

    def __init__(
        self,
        target: ClusterTarget,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        telemetry: CollectorTelemetry | None = None,
    ) -> None:
        self.target = target
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._telemetry = telemetry
        self.session = _TimedSession()
        self.session.verify = target.verify
        if target.cert:
            self.session.cert = target.cert
        # no retries inside urllib3: ours have backoff with jitter and are counted
        retry = Retry(total=0, connect=0, read=0, redirect=2, status=0, raise_on_status=False)
        self.api = PrometheusConnect(
            url=target.url, retry=retry, session=self.session, timeout=max(1, math.ceil(target.timeout_seconds))
        )

    def _credentials(self, signal: str) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
        t = self.target
        try:
            headers = None
            if t.bearer_token_file:
                headers = {"Authorization": "Bearer " + t.bearer_token_file.read_text().strip()}
            auth = None
            if t.basic_user:
                password = t.basic_password_file.read_text().strip() if t.basic_password_file else ""
                auth = (t.basic_user, password)
        except OSError as exc:  # read at each query: rotated secrets are picked up
            raise AuthenticationFailed(t.name, f"cannot read a credential file: {exc}", signal) from exc
        return headers, auth

    def query_range(self, signal: Signal, query: str, start: float, end: float, step: int) -> Any:
        delays = backoff_delays(self.target.backoff_seconds, self.target.retries, self._rng)
        for attempt in range(len(delays) + 1):
            try:
                return self._query_once(signal, query, start, end, step)
            except CollectorError as exc:
                if not exc.temporary or attempt == len(delays):
                    raise
                if self._telemetry:
                    self._telemetry.retries.labels(self.target.name).inc()
                log.debug("%s; retry %d in %.2fs", exc, attempt + 1, delays[attempt])
                self._sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _query_once(self, signal: Signal, query: str, start: float, end: float, step: int) -> Any:
        name = self.target.name
        self.api.headers, self.api.auth = self._credentials(signal.name)
        try:
            return self.api.custom_query_range(
                query, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), f"{step}s"
            )
        except PrometheusApiClientException as exc:
            text = str(exc)
            match = _STATUS.search(text)
            status = int(match.group(1)) if match else 0
            body = _error_body(text[match.end() :] if match else text)
            if status in (401, 403):
                raise AuthenticationFailed(
                    name, f"authentication failed (HTTP {status}) at {self.target.url}", signal.name
                ) from exc
            if status == 404:
                raise NotPrometheus(name, f"no Prometheus API at {self.target.url} (HTTP 404)", signal.name) from exc
            if status in (400, 422):
                raise QueryRejected(name, f"query rejected (HTTP {status}): {body}", signal.name) from exc
            raise EndpointUnreachable(name, f"server error (HTTP {status}): {body}", signal.name) from exc
        except requests.exceptions.JSONDecodeError as exc:
            raise MalformedResponse(name, f"not a Prometheus API response: {exc}", signal.name) from exc
        except requests.exceptions.Timeout as exc:
            raise EndpointUnreachable(name, f"timed out after {self.target.timeout_seconds:g}s", signal.name) from exc
        except requests.exceptions.RequestException as exc:
            raise EndpointUnreachable(
                name, f"unreachable at {self.target.url}: {type(exc).__name__}", signal.name
            ) from exc
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise MalformedResponse(name, f"not a Prometheus API response: {exc}", signal.name) from exc

    def close(self) -> None:
        self.session.close()


class ClusterPoller:
    """Pulls every signal of one cluster from its watermarks; owns the cluster's breaker and health."""

    def __init__(
        self,
        target: ClusterTarget,
        transport: PrometheusTransport,
        signals: Sequence[Signal],
        step: int,
        rate_window: str,
        backfill_seconds: float,
        stale_after_steps: int,
        telemetry: CollectorTelemetry,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.target = target
        self.transport = transport
        self.signals = list(signals)
        self.step = step
        self.rate_window = rate_window
        self.backfill_seconds = backfill_seconds
        self.stale_after = stale_after_steps * step
        self.telemetry = telemetry
        self._timer = timer
        self.watermarks: dict[str, float] = {}
        self.breaker = CircuitBreaker(target.breaker_failures, target.breaker_cooldown_seconds)
        self.newest_sample: float | None = None
        self.progress: Progress | None = None
        self.health = ClusterHealth(target.name, target.tier, HealthState.UNKNOWN)
        self._reported_empty: set[str] = set()
        self._has_data: set[str] = set()  # signals that have returned samples: silence later is staleness

    def _window(self, signal: str, now: float) -> tuple[float, float]:
        end = math.floor(now / self.step) * self.step
        earliest = math.floor((now - self.backfill_seconds) / self.step) * self.step
        mark = self.watermarks.get(signal)
        if mark is None:
            return earliest, end
        if mark + self.step < earliest:
            log.warning(
                "cluster %r, signal %r: gap since %s is longer than the backfill window; samples before %s are lost",
                self.target.name,
                signal,
                _iso(mark),
                _iso(earliest),
            )
            return earliest, end
        return mark + self.step, end

    def poll(self, now: float) -> list[SeriesBatch]:
        name = self.target.name
        if not self.breaker.allows(now):
            self.telemetry.pulls.labels(name, "skipped").inc()
            until = datetime.fromtimestamp(self.breaker.retry_at, UTC).isoformat()
            self.health = ClusterHealth(
                name,
                self.target.tier,
                HealthState.DOWN,
                self.health.last_success,
                f"circuit open until {until}; last error: {self.health.last_error}",
                self.health.latency_seconds,
                self.health.series,
            )
            return []
        started = self._timer()
        batches: list[SeriesBatch] = []
        errors: list[CollectorError] = []
        plans = [(s, *self._window(s.name, now)) for s in self.signals]
        planned = sum(self._chunks(start, end) for _, start, end in plans)
        done = 0
        for signal, start, end in plans:
            if start > end:
                continue
            query = render_query(signal.query, self.target.selector, self.rate_window)
            done += self._chunks(start, end)
            try:
                got = self._range(signal, query, start, end)
            except CollectorError as exc:
                errors.append(exc)
                self.telemetry.errors.labels(name, signal.name, exc.kind).inc()
                log.warning("%s", exc)
                continue
            finally:
                if self.progress is not None:
                    self.progress(name, done, planned)
            self.watermarks[signal.name] = end
            batches.extend(got)
            samples = sum(len(b) for b in got)
            if samples:
                self.telemetry.samples.labels(name, signal.name).inc(samples)
                newest = max(float(b.timestamps[-1]) for b in got if len(b))
                self.newest_sample = max(self.newest_sample or newest, newest)
                self._has_data.add(signal.name)
            elif signal.name not in self._has_data and signal.name not in self._reported_empty:
                self._reported_empty.add(signal.name)
                log.info("cluster %r, signal %r: the query matches no series; nothing to model", name, signal.name)
        latency = self._timer() - started
        self.telemetry.latency.labels(name).observe(latency)
        self._update_health(now, errors, latency, batches)
        return batches

    def _update_health(
        self, now: float, errors: list[CollectorError], latency: float, batches: list[SeriesBatch]
    ) -> None:
        name, previous = self.target.name, self.health
        failed_all = bool(errors) and len(errors) >= len(self.signals)
        self.breaker.record(not failed_all or not any(e.temporary for e in errors), now)
        if self.newest_sample is not None:
            self.telemetry.lag.labels(name).set(max(0.0, now - self.newest_sample))
        if failed_all:
            outcome, state, last_success = "failed", HealthState.DOWN, previous.last_success
        elif errors:
            outcome, state, last_success = "partial", HealthState.DEGRADED, now
        elif self.newest_sample is not None and now - self.newest_sample > self.stale_after:
            outcome, state, last_success = "ok", HealthState.STALE, now
        else:
            outcome, state, last_success = "ok", HealthState.UP, now
        self.telemetry.pulls.labels(name, outcome).inc()
        last_error = str(errors[-1]) if errors else None
        if state is HealthState.STALE:
            age = now - (self.newest_sample or now)
            last_error = f"cluster {name!r}: answers, but its newest sample is {age:.0f}s old"
        if self.breaker.state is BreakerState.OPEN:
            last_error = f"{last_error}; circuit open for {self.breaker.retry_at - now:.0f}s"
        series = len({b.key for b in batches}) or previous.series
        self.health = ClusterHealth(name, self.target.tier, state, last_success, last_error, latency, series)
        if state is not previous.state and previous.state is not HealthState.UNKNOWN:
            log.info(
                "cluster %r is %s (was %s)%s",
                name,
                state.value,
                previous.state.value,
                f": {last_error}" if last_error else "",
            )

    @property
    def _chunk_seconds(self) -> int:
        return (MAX_POINTS_PER_QUERY - 1) * self.step

    def _chunks(self, start: float, end: float) -> int:
        return max(0, math.ceil((end - start + self.step) / (self._chunk_seconds + self.step)))

    def _range(self, signal: Signal, query: str, start: float, end: float) -> list[SeriesBatch]:
        """Range queries in chunks under Prometheus' points-per-series limit, merged per series."""
        chunk = self._chunk_seconds
        merged: dict[SeriesKey, list[SeriesBatch]] = {}
        lo = start
        while lo <= end:
            hi = min(end, lo + chunk)
            raw = self.transport.query_range(signal, query, lo, hi, self.step)
            for b in convert_matrix(self.target.name, signal, raw):
                merged.setdefault(b.key, []).append(b)
            lo = hi + self.step
        out = []
        for key, parts in merged.items():
            if len(parts) == 1:
                out.append(parts[0])
                continue
            out.append(
                normalise(key, np.concatenate([p.timestamps for p in parts]), np.concatenate([p.values for p in parts]))
            )
        return out


class PrometheusCollector:
    """All clusters: a bounded pool, one poll in flight per cluster, clusters added and removed at run time."""

    def __init__(
        self,
        targets: Sequence[ClusterTarget],
        signals: Sequence[Signal],
        step_seconds: int,
        rate_window: str,
        backfill_seconds: float,
        max_workers: int = 8,
        wait_seconds: float = 5.0,
        stale_after_steps: int = 5,
        telemetry: CollectorTelemetry | None = None,
        transport_factory: Callable[[ClusterTarget], PrometheusTransport] | None = None,
    ) -> None:
        self.signals = list(signals)
        self.step = step_seconds
        self.rate_window = rate_window
        self.backfill_seconds = backfill_seconds
        self.wait_seconds = wait_seconds
        self.stale_after_steps = stale_after_steps
        self.telemetry = telemetry or CollectorTelemetry()
        self._transport_factory = transport_factory or (lambda t: PrometheusTransport(t, telemetry=self.telemetry))
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="collect")
        self._lock = threading.Lock()
        self._pollers: dict[str, ClusterPoller] = {}
        self._inflight: dict[str, Future[list[SeriesBatch]]] = {}
        self._removed: list[str] = []
        self.progress: Progress | None = None
        for t in targets:
            self._pollers[t.name] = self._poller(t)

    @classmethod
    def from_settings(cls, settings: Any, telemetry: CollectorTelemetry | None = None) -> PrometheusCollector:
        col = settings.collection
        return cls(
            [ClusterTarget.from_settings(c) for c in settings.clusters],
            signals_from_settings(settings),
            col.step_seconds,
            col.rate_window,
            col.backfill_hours * 3600.0,
            col.max_workers,
            col.pull_wait_seconds,
            col.stale_after_steps,
            telemetry,
        )

    def _poller(self, target: ClusterTarget) -> ClusterPoller:
        return ClusterPoller(
            target,
            self._transport_factory(target),
            self.signals,
            self.step,
            self.rate_window,
            self.backfill_seconds,
            self.stale_after_steps,
            self.telemetry,
        )

    @property
    def clusters(self) -> list[str]:
        with self._lock:
            return list(self._pollers)

    def reconfigure(self, targets: Iterable[ClusterTarget], signals: Sequence[Signal]) -> tuple[list[str], list[str]]:
        """Apply a reloaded configuration; returns (added, removed) cluster names.

        A cluster whose target changed is rebuilt but keeps its watermarks (no re-backfill);
        new signals are backfilled; removed clusters are reported once by the next pull.
        """
        wanted = {t.name: t for t in targets}
        added, removed = [], []
        with self._lock:
            signals_changed = list(signals) != self.signals
            self.signals = list(signals)
            for name in list(self._pollers):
                if name not in wanted:
                    self._pollers.pop(name).transport.close()
                    self._inflight.pop(name, None)
                    self._removed.append(name)
                    self.telemetry.forget(name)
                    removed.append(name)
            for name, target in wanted.items():
                old = self._pollers.get(name)
                if old is None:
                    self._pollers[name] = self._poller(target)
                    added.append(name)
                elif old.target != target or signals_changed:
                    fresh = self._poller(target)
                    fresh.watermarks = {s: m for s, m in old.watermarks.items() if s in {x.name for x in signals}}
                    fresh.newest_sample, fresh.health = old.newest_sample, old.health
                    fresh._has_data = old._has_data & set(fresh.watermarks)
                    self._pollers[name] = fresh
        if added or removed:
            log.info("clusters reconfigured: added %s, removed %s", added or "none", removed or "none")
        return added, removed

    def health(self) -> list[ClusterHealth]:
        with self._lock:
            return [p.health for p in self._pollers.values()]

    def pull(self, now: float, wait_seconds: float | None = None) -> PullResult:
        """Start a poll of every idle cluster, wait up to ``wait_seconds`` and return what has arrived."""
        budget = self.wait_seconds if wait_seconds is None else wait_seconds
        with self._lock:
            for name, poller in self._pollers.items():
                if name not in self._inflight:
                    poller.progress = self.progress
                    self._inflight[name] = self._pool.submit(poller.poll, now)
            pending = dict(self._inflight)
            removed, self._removed = self._removed, []
        deadline = time.monotonic() + budget
        while True:
            waiting = [f for f in pending.values() if not f.done()]
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                break
            wait(waiting, timeout=None if math.isinf(remaining) else remaining, return_when=FIRST_COMPLETED)
        batches: list[SeriesBatch] = []
        with self._lock:
            for name, future in pending.items():
                if not future.done() or self._inflight.get(name) is not future:
                    continue
                del self._inflight[name]
                try:
                    batches.extend(future.result())
                except Exception:  # a bug in a poller must not stop the others
                    log.exception("cluster %r: poll failed unexpectedly", name)
        return PullResult(batches, self.health(), tuple(removed))

    def backfill(self, now: float, progress: Progress | None = None) -> PullResult:
        """The first pull, waiting for every cluster however long it takes, reporting chunk progress."""
        self.progress = progress
        try:
            return self.pull(now, wait_seconds=math.inf)
        finally:
            self.progress = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for poller in self._pollers.values():
                poller.transport.close()


def signals_from_settings(settings: Any) -> list[Signal]:
    return [Signal(s.name, s.query, tuple(s.workload_labels)) for s in settings.signals]
