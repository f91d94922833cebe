"""The Prometheus collector against the three real Prometheus servers of tests/stack.py."""

import numpy as np
import pytest

from collectors.base import HealthState
from collectors.errors import QueryRejected
from collectors.prometheus import ClusterTarget, PrometheusCollector, Signal
from collectors.simulated import SimulatedContinuum
from intelligence.domain import SeriesKey, Tier
from intelligence.settings import load_settings

pytestmark = pytest.mark.integration

MEMORY = Signal("memory", "container_memory_working_set_bytes{{{selector_bare}}}", ("namespace", "workload"))
REQUESTS = Signal(
    "requests", "sum by (namespace, workload) (rate(revision_app_request_count[{window}]))", ("namespace", "workload")
)


def target(name: str, url: str, timeout: float = 5.0) -> ClusterTarget:
    return ClusterTarget(name, Tier.EDGE, url, {}, timeout, {})


def collector(test_stack, signals, hours: float, extra=()) -> PrometheusCollector:
    targets = [target(c, u) for c, u in test_stack.prometheus.items()] + list(extra)
    return PrometheusCollector(targets, signals, test_stack.data["step"], "5m", hours * 3600)


def expected(test_stack) -> dict[SeriesKey, tuple[np.ndarray, np.ndarray]]:
    d = test_stack.data
    sim = SimulatedContinuum(d["seed"], origin=d["end"], step_seconds=d["step"])
    ts = np.arange(d["start"], d["end"] + d["step"] / 2, d["step"])
    return {k: (ts, v) for k, v in sim.values(ts).items()}


def test_backfill_returns_exactly_the_samples_written(test_stack):
    end = test_stack.data["end"]
    col = collector(test_stack, [MEMORY], hours=6)
    result = col.pull(end)
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
        diffs = np.diff(stamps)
        assert (diffs == step).all(), f"{key}: duplicates or gaps"
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
    dead = target("gone-1", "http://127.0.0.1:9", timeout=1.0)
    col = collector(test_stack, [MEMORY, bad], hours=1, extra=[dead])
    result = col.pull(end)
    health = {h.cluster: h for h in result.health}
    assert health["gone-1"].state is HealthState.DOWN
    assert "cluster 'gone-1'" in (health["gone-1"].last_error or "")
    assert "unreachable" in (health["gone-1"].last_error or "")
    for name in ("cloud-1", "fog-1", "edge-1"):
        assert health[name].state is HealthState.DEGRADED
        assert "signal 'broken'" in (health[name].last_error or "")
    assert len([b for b in result.batches if b.key.signal == "memory"]) == 7
    col.close()


def test_query_rejected_error_is_permanent(test_stack):
    from collectors.prometheus import _ClusterClient

    client = _ClusterClient(target("cloud-1", test_stack.prometheus["cloud-1"]))
    with pytest.raises(QueryRejected, match="cluster 'cloud-1', signal 'broken': query rejected") as info:
        client.query_range(Signal("broken", "", ()), "sum(rate(", 0, 60, 60)
    assert not info.value.temporary


def test_collector_from_settings_with_the_default_signals(test_stack, tmp_path):
    clusters = [{"name": c, "url": u, "tier": "edge"} for c, u in test_stack.prometheus.items()]
    settings = load_settings(None, clusters=clusters, **{"collection.backfill_hours": 1})
    col = PrometheusCollector.from_settings(settings)
    result = col.pull(test_stack.data["end"])
    signals = {(b.key.cluster, b.key.signal) for b in result.batches}
    assert signals == {(c, s) for c in test_stack.prometheus for s in ("cpu", "memory", "requests")}
    col.close()
