import numpy as np

from collectors.simulated import ANOMALY, SimulatedCollector, SimulatedContinuum
from intelligence.vocabulary import SeriesKey

ORIGIN = 1_767_225_600.0 + 5.5 * 3600  # 2026-01-01 05:30 UTC


def test_values_are_a_pure_function_of_seed_and_time():
    a = SimulatedContinuum(7, ORIGIN, 300)
    b = SimulatedContinuum(7, ORIGIN, 300)
    ts = np.arange(ORIGIN, ORIGIN + 86_400, 300.0)
    va, vb = a.values(ts), b.values(ts)
    for key in va:
        np.testing.assert_array_equal(va[key], vb[key])
    part = a.values(ts[100:110])
    np.testing.assert_array_equal(part[next(iter(part))], va[next(iter(va))][100:110])
    assert set(va) == set(a.keys())
    assert len(va) == 20  # 7 workloads x cpu, memory; 6 Knative services also have requests


def test_the_edge_cluster_saturates_and_the_anomaly_is_there():
    sim = SimulatedContinuum(7, ORIGIN, 300)
    ts = np.arange(ORIGIN, ORIGIN + 86_400, 300.0)
    v = sim.values(ts)
    edge_cpu = sum(a for k, a in v.items() if k.cluster == "edge-1" and k.signal == "cpu")
    assert edge_cpu.max() <= 4.0 + 1e-9
    assert (np.abs(edge_cpu - 4.0) < 1e-9).sum() >= 12  # flat top: capacity reached for an hour or more
    key = SeriesKey.of(ANOMALY.cluster, "requests", {"namespace": ANOMALY.namespace, "workload": ANOMALY.workload})
    inside = (ts >= ORIGIN + ANOMALY.offset_seconds) & (ts < ORIGIN + ANOMALY.offset_seconds + ANOMALY.duration_seconds)
    quiet = SimulatedContinuum(7, ORIGIN, 300, anomaly=None).values(ts)[key]
    assert np.all(v[key][inside] > 3 * quiet[inside])
    np.testing.assert_array_equal(v[key][~inside], quiet[~inside])


def test_collector_returns_every_step_once():
    col = SimulatedCollector(SimulatedContinuum(7, ORIGIN, 300), history_seconds=3600)
    first = col.pull(ORIGIN)
    assert {len(b) for b in first.batches} == {12}  # one hour of history, up to the origin
    assert first.batches[0].timestamps[-1] == ORIGIN
    assert col.pull(ORIGIN + 299).batches == []
    second = col.pull(ORIGIN + 900)
    assert {len(b) for b in second.batches} == {3}
    assert second.batches[0].timestamps[0] == first.batches[0].timestamps[-1] + 300
    assert {h.cluster for h in second.health} == {"cloud-1", "fog-1", "edge-1"}


def test_recollect_returns_what_was_returned_within_the_window_and_moves_nothing():
    col = SimulatedCollector(SimulatedContinuum(7, ORIGIN, 300), history_seconds=3600)
    first = {b.key: b for b in col.pull(ORIGIN).batches}
    again = col.recollect(ORIGIN)
    assert {b.key: b.timestamps.tolist() for b in again.batches} == {k: b.timestamps.tolist() for k, b in first.items()}
    for b in again.batches:
        np.testing.assert_array_equal(b.values, first[b.key].values)
    later = col.recollect(ORIGIN + 1800)  # the window moves with now: half an hour of the history is too old
    assert {len(b) for b in later.batches} == {6}
    assert {len(b) for b in col.pull(ORIGIN + 600).batches} == {2}  # the next pull goes on where the last ended
