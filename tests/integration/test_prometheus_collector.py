"""The Prometheus collector against real Prometheus servers (tests/stack.py), and a proxy for what they cannot do."""

import logging
import ssl

import numpy as np
import pytest

from collectors.errors import AuthenticationFailed, QueryRejected
from collectors.prometheus import ClusterTarget, CollectionSpec, PrometheusCollector, PrometheusTransport, Signal
from collectors.simulated import SimulatedContinuum
from collectors.telemetry import CollectorTelemetry
from intelligence.runtime import specs
from intelligence.settings import Settings, load_settings
from intelligence.vocabulary import HealthState, SeriesKey, Tier
from tests import stack
from tests.certs import make_pki
from tests.proxy import proxy

pytestmark = pytest.mark.integration

MEMORY = Signal("memory", "container_memory_working_set_bytes{{{selector_bare}}}", ("namespace", "workload"))
REQUESTS = Signal(
    "requests", "sum by (namespace, workload) (rate(revision_app_request_count[{window}]))", ("namespace", "workload")
)
TEN_MINUTES_BACK = CollectionSpec(step_seconds=60, rate_window="5m", backfill_seconds=600)  # 60 s steps, 10 min back
AN_HOUR_BACK = CollectionSpec(step_seconds=60, rate_window="5m", backfill_seconds=3600)


def target(name: str, url: str, **kw) -> ClusterTarget:
    return ClusterTarget(name, Tier.EDGE, url, **{"timeout_seconds": 5.0, "backoff_seconds": 0.0, **kw})


def collector(test_stack, signals, hours: float, extra=(), step: int | None = None) -> PrometheusCollector:
    targets = [target(c, u) for c, u in test_stack.prometheus.items()] + list(extra)
    spec = CollectionSpec(step_seconds=step or test_stack.data["step"], backfill_seconds=hours * 3600)
    return PrometheusCollector(targets, signals, spec)


def collector_from(settings: Settings) -> PrometheusCollector:
    """As the service builds it."""
    targets = [specs.cluster_target(c) for c in settings.clusters]
    return PrometheusCollector(targets, specs.signals(settings), specs.collection_spec(settings))


def expected(test_stack) -> dict[SeriesKey, tuple[np.ndarray, np.ndarray]]:
    d = test_stack.data
    sim = SimulatedContinuum(d["seed"], origin=d["end"], step_seconds=d["step"])
    ts = np.arange(d["start"], d["end"] + d["step"] / 2, d["step"])
    return {k: (ts, v) for k, v in sim.values(ts).items()}


def assert_continuous(stamps: list[float], step: float, what: str) -> None:
    diffs = np.diff(stamps)
    assert (diffs == step).all(), f"{what}: duplicates or gaps at {np.flatnonzero(diffs != step)[:5]}"


def test_backfill_returns_exactly_the_samples_written(test_stack):
    end = test_stack.data["end"]
    col = collector(test_stack, [MEMORY], hours=6)
    result = col.backfill(end)
    truth = expected(test_stack)
    assert {b.key.cluster for b in result.batches} == {"cloud-1", "fog-1", "edge-1"}
    assert len(result.batches) == 7
    for batch in result.batches:
        ts, values = truth[batch.key]
        want = (ts > end - 6 * 3600 - 1) & (ts <= end)
        np.testing.assert_array_equal(batch.timestamps, ts[want])
        np.testing.assert_allclose(batch.values, values[want], rtol=0, atol=0.05)  # written with 0.1 resolution
    assert all(h.state is HealthState.UP for h in result.health)
    col.close()


def test_a_long_backfill_is_chunked_under_the_points_limit(test_stack):
    end = test_stack.data["end"]
    col = collector(test_stack, [MEMORY], hours=60, step=15)  # at 60 s, 3,601 points would fit in one query
    chunks: dict[str, list[tuple[int, int]]] = {}
    result = col.backfill(end, progress=lambda c, done, planned: chunks.setdefault(c, []).append((done, planned)))
    assert chunks["cloud-1"][-1] == (2, 2)  # 60 h at 15 s = 14,401 points: two queries
    for b in result.batches:
        assert_continuous(b.timestamps.tolist(), 15, str(b.key))
        assert b.timestamps[-1] == end
    col.close()


def test_incremental_pulls_have_no_duplicates_and_no_gaps(test_stack):
    end = test_stack.data["end"]
    step = test_stack.data["step"]
    col = collector(test_stack, [MEMORY, REQUESTS], hours=2)
    seen: dict[SeriesKey, list[float]] = {}
    now = end - 3600
    while now <= end:
        for b in col.pull(now).batches:
            seen.setdefault(b.key, []).extend(b.timestamps.tolist())
        now += 7 * step + 13  # not aligned to the step on purpose
    assert len(seen) == 7 + 6
    for key, stamps in seen.items():
        assert_continuous(stamps, step, str(key))
    col.close()


def test_recollect_returns_the_history_again_and_the_next_pull_goes_on(test_stack, caplog):
    """What a replica taking series over at run time replays: everything pulled within the backfill window; a
    cluster that cannot answer is named and the others' history still comes back."""
    end = test_stack.data["end"]
    step = test_stack.data["step"]
    dead = target("gone-1", "http://127.0.0.1:9", timeout_seconds=1.0, retries=0)
    col = collector(test_stack, [MEMORY], hours=2, extra=[dead])
    first = {b.key: b for b in col.pull(end - 1800).batches}
    assert len(first) == 7
    dead_poller = col._pollers["gone-1"]
    dead_poller.watermarks["memory"] = end - 1800  # as if it had answered before it went away
    with caplog.at_level(logging.WARNING):
        again = {b.key: b for b in col.recollect(end - 1800).batches}
    assert "cluster 'gone-1', signal 'memory'" in caplog.text
    assert "not recollected" in caplog.text
    assert again.keys() == first.keys()
    for key, b in again.items():
        np.testing.assert_array_equal(b.timestamps, first[key].timestamps)
        np.testing.assert_array_equal(b.values, first[key].values)
    nxt = col.pull(end).batches
    assert {b.timestamps[0] for b in nxt if b.key.cluster != "gone-1"} == {first[nxt[0].key].timestamps[-1] + step}
    col.close()


def test_rate_of_the_knative_counter_gives_the_request_rate_back(test_stack):
    end = test_stack.data["end"]
    col = collector(test_stack, [REQUESTS], hours=1)
    truth = expected(test_stack)
    for batch in col.pull(end).batches:
        ts, values = truth[batch.key]
        want = np.isin(ts, batch.timestamps)
        # rate over 5 min of a counter summed every minute: the mean of the last five minutes
        smoothed = np.convolve(values, np.ones(5) / 5, mode="full")[: len(values)][want]
        np.testing.assert_allclose(batch.values[5:], smoothed[5:], rtol=0.05)
    col.close()


def test_a_rejected_query_and_an_unreachable_cluster_do_not_stop_the_others(test_stack):
    end = test_stack.data["end"]
    bad = Signal("broken", "sum(rate(", ("namespace",))
    dead = target("gone-1", "http://127.0.0.1:9", timeout_seconds=1.0, retries=1)
    col = collector(test_stack, [MEMORY, bad], hours=1, extra=[dead])
    result = col.pull(end)
    health = {h.cluster: h for h in result.health}
    assert health["gone-1"].state is HealthState.DOWN
    assert "cluster 'gone-1'" in (health["gone-1"].last_error or "")
    assert "unreachable at http://127.0.0.1:9" in (health["gone-1"].last_error or "")
    for name in ("cloud-1", "fog-1", "edge-1"):
        assert health[name].state is HealthState.DEGRADED
        assert "signal 'broken': query rejected (HTTP 400)" in (health[name].last_error or "")
    assert len([b for b in result.batches if b.key.signal == "memory"]) == 7
    samples = col.telemetry.registry.get_sample_value
    assert samples("icos_collector_errors_total", {"cluster": "cloud-1", "signal": "broken", "kind": "rejected"}) == 1
    assert samples("icos_collector_retries_total", {"cluster": "gone-1"}) == 2  # one retry for each signal
    assert samples("icos_collector_retries_total", {"cluster": "cloud-1"}) is None  # permanent: not retried
    col.close()


def test_nan_inf_and_empty_results(test_stack, caplog):
    end = test_stack.data["end"]
    inf = Signal("inf", "container_memory_working_set_bytes / 0", ("namespace", "workload"))
    nan = Signal(
        "nan",
        "(container_memory_working_set_bytes - container_memory_working_set_bytes) / 0",
        ("namespace", "workload"),
    )
    empty = Signal("nothing", "no_such_metric", ("namespace",))
    col = PrometheusCollector([target("edge-1", test_stack.prometheus["edge-1"])], [inf, nan, empty], TEN_MINUTES_BACK)
    with caplog.at_level(logging.INFO, logger="collectors.prometheus"):
        result = col.pull(end)
    assert {b.key.signal for b in result.batches} == {"inf", "nan"}
    assert all(np.isnan(b.values).all() for b in result.batches)  # +Inf and NaN both become missing values
    assert result.health[0].state is HealthState.UP
    assert "cluster 'edge-1', signal 'nothing': the query matches no series" in caplog.text
    col.close()


def test_a_stopped_prometheus_goes_down_and_its_gap_is_filled_when_it_returns(test_stack):
    d = test_stack.data
    entry = stack.start_prometheus("edge-1", d["start"], d["end"], name="volatile")
    step = d["step"]
    url, base, port = entry["url"], stack.Path(entry["dir"]), entry["port"]
    volatile = target(
        "volatile-1", url, timeout_seconds=2.0, retries=1, breaker_failures=2, breaker_cooldown_seconds=60.0
    )
    steady = target("cloud-1", test_stack.prometheus["cloud-1"])
    col = PrometheusCollector(
        [volatile, steady], [MEMORY], CollectionSpec(step_seconds=step, backfill_seconds=6 * 3600)
    )
    seen: dict[SeriesKey, list[float]] = {}

    def pull(now: float) -> dict[str, HealthState]:
        result = col.pull(now)
        for b in result.batches:
            seen.setdefault(b.key, []).extend(b.timestamps.tolist())
        return {h.cluster: h.state for h in result.health}

    now = d["end"] - 3 * 3600
    proc = None
    try:
        assert pull(now) == {"volatile-1": HealthState.UP, "cloud-1": HealthState.UP}
        stack.stop_group(entry["pid"])
        for minutes in (10, 20, 30, 40):
            health = pull(now + minutes * 60)
            assert health["volatile-1"] is HealthState.DOWN
            assert health["cloud-1"] is HealthState.UP  # the others go on
        down = {h.cluster: h for h in col.health()}["volatile-1"]
        assert "circuit open" in (down.last_error or "")
        proc = stack.serve_prometheus(base, port, "volatile Prometheus")
        assert pull(now + 41 * 60)["volatile-1"] is HealthState.DOWN  # the circuit is still open (60 s cooldown)
        assert pull(now + 60 * 60)["volatile-1"] is HealthState.UP  # half-open probe succeeds
    finally:
        stack.stop_group(entry["pid"])
        if proc is not None:
            stack.stop_group(proc.pid)
            proc.wait(timeout=30)
    volatile_keys = [k for k in seen if k.cluster == "volatile-1"]
    assert len(volatile_keys) == 2
    for key in volatile_keys:
        stamps = seen[key]
        assert stamps[-1] == now + 3600
        assert_continuous(stamps, step, f"{key} after the outage")
    col.close()


def test_a_server_that_demands_a_token(test_stack, tmp_path):
    end = test_stack.data["end"]
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret\n")
    bad.write_text("guess\n")
    with proxy(test_stack.prometheus["fog-1"], token="s3cret") as guarded:
        ok = PrometheusCollector([target("fog-1", guarded.url, bearer_token_file=good)], [MEMORY], TEN_MINUTES_BACK)
        assert ok.pull(end).health[0].state is HealthState.UP
        ok.close()
        telemetry = CollectorTelemetry()
        wrong = PrometheusCollector(
            [target("fog-1", guarded.url, bearer_token_file=bad, retries=3)],
            [MEMORY],
            TEN_MINUTES_BACK,
            telemetry=telemetry,
        )
        before = guarded.requests
        health = wrong.pull(end).health[0]
        assert health.state is HealthState.DOWN
        assert "cluster 'fog-1', signal 'memory': authentication failed (HTTP 401)" in (health.last_error or "")
        assert guarded.requests == before + 1  # permanent: not retried
        wrong.close()
        missing = PrometheusCollector(
            [target("fog-1", guarded.url, bearer_token_file=tmp_path / "absent")], [MEMORY], TEN_MINUTES_BACK
        )
        health = missing.pull(end).health[0]
        assert "cannot read a credential file" in (health.last_error or "")
        missing.close()


def test_a_slow_cluster_does_not_delay_the_others(test_stack):
    end = test_stack.data["end"]
    with proxy(test_stack.prometheus["edge-1"]) as slow:
        slow.gate.clear()  # every request to edge-1 now waits for the test
        targets = [target("cloud-1", test_stack.prometheus["cloud-1"]), target("edge-1", slow.url)]
        col = PrometheusCollector(targets, [MEMORY], AN_HOUR_BACK)
        first = col.pull(end, wait_seconds=0.5)
        assert {b.key.cluster for b in first.batches} == {"cloud-1"}
        slow.gate.set()
        second = col.pull(end, wait_seconds=30)
        assert {b.key.cluster for b in second.batches} == {"edge-1"}  # the first poll's samples, delivered now
        assert all(len(b) == 61 for b in second.batches)  # the hour before, both ends included
        third = col.pull(end, wait_seconds=30)
        assert third.batches == []  # nothing twice
        col.close()


def test_transport_rejects_a_query_permanently(test_stack):
    transport = PrometheusTransport(target("cloud-1", test_stack.prometheus["cloud-1"]))
    with pytest.raises(QueryRejected, match="cluster 'cloud-1', signal 'broken': query rejected") as info:
        transport.query_range(Signal("broken", "", ()), "sum(rate(", 0, 60, 60)
    assert not info.value.temporary
    assert not AuthenticationFailed("c", "x").temporary


def test_collector_built_from_settings_with_the_default_signals(test_stack):
    clusters = [{"name": c, "url": u, "tier": "edge"} for c, u in test_stack.prometheus.items()]
    settings = load_settings(None, clusters=clusters, **{"collection.backfill_hours": 1})
    col = collector_from(settings)
    result = col.pull(test_stack.data["end"])
    signals = {(b.key.cluster, b.key.signal) for b in result.batches}
    assert signals == {(c, s) for c in test_stack.prometheus for s in ("cpu", "memory", "requests")}
    col.close()


def test_one_thanos_holding_many_clusters_is_split_by_the_external_label(test_stack, tmp_path):
    """Two clusters' series in one Prometheus (as behind Thanos Query), told apart by `cluster`."""
    end = int(test_stack.data["end"])
    lines = ["# TYPE container_memory_working_set_bytes gauge"]
    for cluster, value in (("east-1", 100.0), ("west-1", 200.0)):
        labels = f'cluster="{cluster}",namespace="shop",workload="frontend",container="app"'
        lines += [f"container_memory_working_set_bytes{{{labels}}} {value} {t}" for t in range(end - 3600, end + 1, 60)]
    base = stack.STACK_DIR / "prometheus-thanos-like"
    stack.load_openmetrics(base, "\n".join([*lines, "# EOF", ""]))
    port = stack.free_port()
    proc = stack.serve_prometheus(base, port, "Thanos-like Prometheus")
    try:
        url = f"http://127.0.0.1:{port}"
        clusters = [{"name": c, "url": url, "selector": {"cluster": c}} for c in ("east-1", "west-1")]
        settings = load_settings(None, clusters=clusters, **{"collection.backfill_hours": 0.5})
        col = collector_from(settings)
        result = col.pull(end)
        memory = {b.key.cluster: b.values for b in result.batches if b.key.signal == "memory"}
        assert set(memory) == {"east-1", "west-1"}
        assert set(memory["east-1"].tolist()) == {100.0}
        assert set(memory["west-1"].tolist()) == {200.0}
        col.close()
    finally:
        stack.stop_group(proc.pid)


def test_tls_with_a_private_ca_and_a_client_certificate(test_stack, tmp_path):
    """TLS is verified by default: without the CA bundle the cluster is down, with it (and the client cert) up."""
    pki = make_pki(tmp_path / "pki")
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        f"  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
    )
    base = stack.STACK_DIR / "prometheus-tls"
    stack.backfill("edge-1", test_stack.data["end"] - 7200, test_stack.data["end"], base)
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    port = stack.free_port()
    proc = stack.serve_prometheus(base, port, "TLS Prometheus", web_config=web, context=context)
    url = f"https://127.0.0.1:{port}"
    end = test_stack.data["end"]
    try:
        cases = {
            "trusted": target("edge-1", url, verify=str(pki.ca), cert=(str(pki.client_cert), str(pki.client_key))),
            "default verification": target("edge-1", url, cert=(str(pki.client_cert), str(pki.client_key))),
            "no client certificate": target("edge-1", url, verify=str(pki.ca)),
        }
        states = {}
        for name, t in cases.items():
            col = PrometheusCollector([t], [MEMORY], AN_HOUR_BACK)
            health = col.pull(end).health[0]
            states[name] = (health.state, health.last_error or "")
            col.close()
        assert states["trusted"][0] is HealthState.UP
        assert states["default verification"][0] is HealthState.DOWN
        assert "SSLError" in states["default verification"][1]
        assert states["no client certificate"][0] is HealthState.DOWN
    finally:
        stack.stop_group(proc.pid)


def test_basic_auth(test_stack, tmp_path):
    password = tmp_path / "password"
    password.write_text("hunter2\n")
    end = test_stack.data["end"]
    with proxy(test_stack.prometheus["cloud-1"], basic=("icos", "hunter2")) as guarded:
        good = PrometheusCollector(
            [target("cloud-1", guarded.url, basic_user="icos", basic_password_file=password)],
            [MEMORY],
            TEN_MINUTES_BACK,
        )
        assert good.pull(end).health[0].state is HealthState.UP
        good.close()
        bad = PrometheusCollector(
            [target("cloud-1", guarded.url, basic_user="root", basic_password_file=password)],
            [MEMORY],
            TEN_MINUTES_BACK,
        )
        assert "authentication failed (HTTP 401)" in (bad.pull(end).health[0].last_error or "")
        bad.close()
