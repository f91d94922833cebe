"""One cluster's HTTP to Prometheus or Thanos Query: the only module that imports ``prometheus_api_client``.

A range query goes through ``PrometheusConnect`` on a ``requests`` session of ours, which
parses with orjson and hands matrix bodies to :class:`RawMatrix` unparsed. Temporary
errors are retried with exponential backoff and jitter (urllib3's own retries are off);
library and ``requests`` exceptions leave as :mod:`collectors.errors`, naming the cluster
and signal, re-raised ``from`` the original. Credentials are read from their files at each
query, so rotated secrets are picked up.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from collectors.errors import (
    AuthenticationFailed,
    CollectorError,
    EndpointUnreachable,
    MalformedResponse,
    NotPrometheus,
    QueryRejected,
)
from collectors.prometheus.parsing import MATRIX_PREFIX, RawMatrix, library_error
from collectors.prometheus.specs import ClusterTarget, Signal
from collectors.resilience import backoff_delays
from collectors.telemetry import CollectorTelemetry
from intelligence.vocabulary import redact_url

log = logging.getLogger(__name__)


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
                if body.startswith(MATRIX_PREFIX):  # converted later, without an object per sample
                    return {"status": "success", "data": {"resultType": "matrix", "result": RawMatrix(body)}}
                return orjson.loads(body)
            finally:
                self.parse_seconds += time.perf_counter() - t

        response.json = fast_json  # type: ignore[method-assign]
        return response


class PrometheusTransport:
    """One cluster's HTTP: a range query with retries (exponential backoff, jitter) and error mapping.

    The URL may carry credentials (they are used, as ``requests`` does); every message names it redacted.
    """

    def __init__(
        self,
        target: ClusterTarget,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        telemetry: CollectorTelemetry | None = None,
    ) -> None:
        self.target = target
        self.shown_url = redact_url(target.url)  # what messages say: no credentials
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
        """The matrix result of one range query (a :class:`RawMatrix`, or a parsed list), after retries."""
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
            status, body = library_error(str(exc))
            if status in (401, 403):
                raise AuthenticationFailed(
                    name, f"authentication failed (HTTP {status}) at {self.shown_url}", signal.name
                ) from exc
            if status == 404:
                raise NotPrometheus(name, f"no Prometheus API at {self.shown_url} (HTTP 404)", signal.name) from exc
            if status in (400, 422):
                raise QueryRejected(name, f"query rejected (HTTP {status}): {body}", signal.name) from exc
            raise EndpointUnreachable(name, f"server error (HTTP {status}): {body}", signal.name) from exc
        except requests.exceptions.JSONDecodeError as exc:
            raise MalformedResponse(name, f"not a Prometheus API response: {exc}", signal.name) from exc
        except requests.exceptions.Timeout as exc:
            raise EndpointUnreachable(name, f"timed out after {self.target.timeout_seconds:g}s", signal.name) from exc
        except requests.exceptions.RequestException as exc:
            raise EndpointUnreachable(
                name, f"unreachable at {self.shown_url}: {type(exc).__name__}", signal.name
            ) from exc
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise MalformedResponse(name, f"not a Prometheus API response: {exc}", signal.name) from exc

    def close(self) -> None:
        self.session.close()
