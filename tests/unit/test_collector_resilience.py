"""Retries, error mapping and the circuit breaker, through a transport whose HTTP is faked at the session."""

import random
import re

import pytest
import requests

from collectors.errors import EndpointUnreachable, MalformedResponse, NotPrometheus, QueryRejected
from collectors.prometheus import ClusterPoller, ClusterTarget, CollectionSpec, PrometheusTransport, Signal
from collectors.telemetry import CollectorTelemetry
from intelligence.vocabulary import HealthState, Tier

SIGNAL = Signal("cpu", "up", ("namespace",))
SPEC = CollectionSpec(step_seconds=60, rate_window="5m", backfill_seconds=3600, stale_after_steps=5)
OK = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"namespace":"a"},"values":[[60,"1"]]}]}}'


class FakeHttp:
    """Answers the session's requests from a script: a status and body, or an exception to raise."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def __call__(self, request, **kwargs):
        self.calls += 1
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        status, body = item
        response = requests.Response()
        response.status_code = status
        response._content = body
        response.url = request.url
        response.request = request
        return response


def transport(script, **kw):
    slept: list[float] = []
    target = ClusterTarget("edge-1", Tier.EDGE, "http://prom.invalid", **{"retries": 2, "backoff_seconds": 1.0, **kw})
    t = PrometheusTransport(target, sleep=slept.append, rng=random.Random(1), telemetry=CollectorTelemetry())
    fake = FakeHttp(script)
    t.session.send = fake  # below the library and our session: only the network is fake
    return t, fake, slept


def test_temporary_errors_are_retried_with_growing_jittered_delays():
    t, fake, slept = transport([requests.ConnectionError("refused"), (503, b"overloaded"), (200, OK)])
    result = t.query_range(SIGNAL, "up", 0, 60, 60)
    assert next(iter(result))["metric"] == {"namespace": "a"}
    assert fake.calls == 3
    assert len(slept) == 2
    assert 0.5 <= slept[0] <= 1.0 <= slept[1] <= 2.0


def test_retries_run_out_with_the_last_error():
    t, fake, _slept = transport([requests.Timeout("slow")])
    with pytest.raises(EndpointUnreachable, match="cluster 'edge-1', signal 'cpu': timed out after 10s"):
        t.query_range(SIGNAL, "up", 0, 60, 60)
    assert fake.calls == 3


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (400, QueryRejected, "query rejected (HTTP 400): bad_data: bad"),
        (422, QueryRejected, "query rejected (HTTP 422): bad_data: bad"),
        (404, NotPrometheus, "no Prometheus API at http://prom.invalid"),
    ],
)
def test_permanent_errors_are_not_retried(status, error, message):
    t, fake, slept = transport([(status, b'{"status":"error","errorType":"bad_data","error":"bad"}')])
    with pytest.raises(error, match=re.escape(message)):
        t.query_range(SIGNAL, "up", 0, 60, 60)
    assert fake.calls == 1
    assert slept == []


def test_a_body_that_is_not_json_is_malformed():
    t, _, _ = transport([(200, b"<html>login</html>")])
    with pytest.raises(MalformedResponse, match="not a Prometheus API response"):
        t.query_range(SIGNAL, "up", 0, 60, 60)


def test_poller_opens_the_circuit_and_probes_after_the_cooldown():
    t, fake, _ = transport(
        [requests.ConnectionError("refused")], retries=0, breaker_failures=2, breaker_cooldown_seconds=100.0
    )
    poller = ClusterPoller(t.target, t, [SIGNAL], SPEC, CollectorTelemetry())
    for now in (1000.0, 1060.0):
        assert poller.poll(now) == []
        assert poller.health.state is HealthState.DOWN
    calls = fake.calls
    poller.poll(1120.0)  # open: skipped, no request
    assert fake.calls == calls
    assert "circuit open until" in (poller.health.last_error or "")
    fake.script = [(200, OK.replace(b"[60,", b"[1200,"))]
    assert len(poller.poll(1200.0)) == 1  # after 100 s: the probe goes through and succeeds
    assert poller.health.state is HealthState.UP
    assert poller.breaker.state.value == "closed"


def test_a_cluster_that_answers_without_new_samples_is_stale():
    t, _, _ = transport([(200, OK)])
    poller = ClusterPoller(t.target, t, [SIGNAL], SPEC, CollectorTelemetry())
    poller.poll(120.0)
    assert poller.health.state is HealthState.UP
    poller.poll(60.0 + 6 * 60)  # newest sample at 60 s, 6 steps ago
    assert poller.health.state is HealthState.STALE
    assert "newest sample is 360s old" in (poller.health.last_error or "")
