"""One engine step, driven by hand: learn, forecast, decide; only this replica's shard; clusters that leave."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from collectors.base import PullResult
from intelligence.actuation.actuator import Actuator
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.specs import PolicySpec
from intelligence.runtime.engine import Engine
from intelligence.runtime.ownership import Ownership, owner
from intelligence.runtime.replica import Replica
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.storage.anomalies import AnomalyEvents
from intelligence.storage.database import Database, open_database
from intelligence.storage.fleet_members import FleetMembers
from intelligence.storage.leadership import StaticLeadership
from intelligence.vocabulary import ClusterHealth, HealthState, SeriesBatch, SeriesKey, Tier
from models.bank import ModelBank
from models.kinds import ModelSpec

STEP = 300.0
T0 = 1_767_225_600.0
SPEC = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": STEP, "horizon": 4, "interval": 0.9}, {})
KEYS = [
    SeriesKey.of(cluster, signal, {"namespace": "ns", "workload": f"w{i}"})
    for cluster in ("cloud-1", "edge-1")
    for signal in ("requests", "cpu")
    for i in range(6)
]


class ScriptedCollector:
    """Returns the pulls it was given, one per call (the engine's only view of the continuum)."""

    def __init__(self, pulls: list[PullResult]) -> None:
        self.pulls = list(pulls)

    def pull(self, now: float) -> PullResult:
        return self.pulls.pop(0)

    def close(self) -> None:
        pass


def batches(keys: list[SeriesKey], start: int, count: int) -> list[SeriesBatch]:
    t = T0 + STEP * np.arange(start, start + count)
    out = []
    for j, key in enumerate(keys):
        values = 10.0 + j + np.sin(np.arange(start, start + count) / 12.0) + 0.1 * np.cos(np.arange(count) * 7.0)
        out.append(SeriesBatch(key, t, values))
    return out


def health(*clusters: str) -> tuple[ClusterHealth, ...]:
    return tuple(ClusterHealth(c, Tier.CLOUD, HealthState.UP) for c in clusters)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(f"sqlite:///{tmp_path / 'decisions.db'}")
    yield db
    db.close()


def engine(
    database: Database,
    pulls: list[PullResult],
    shard_index: int = 0,
    shard_count: int = 1,
    replica: Replica | None = None,
) -> Engine:
    book = PolicyBook(PolicySpec())
    return Engine(
        collector=ScriptedCollector(pulls),
        bank=ModelBank(lambda key: SPEC, interval=0.9),
        forecasts=ForecastStore(),
        anomalies=AnomalyStore(0.55, AnomalyEvents(database, retention_seconds=86_400.0)),
        actuator=Actuator(database, book, timedelta(hours=1)),
        book=book,
        horizon=4,
        step_seconds=STEP,
        recommendation_ttl=timedelta(hours=1),
        shard_index=shard_index,
        shard_count=shard_count,
        timer=iter(range(1000)).__next__,
        replica=replica,
    )


def test_a_step_scores_learns_and_forecasts_every_series_of_the_pull(database):
    e = engine(database, [PullResult(batches(KEYS, 0, 50), health("cloud-1", "edge-1"))])
    report = e.step(T0 + 50 * STEP)
    assert (report.samples, report.series) == (50 * len(KEYS), len(KEYS))
    assert sorted(e.bank.series_keys()) == sorted(KEYS)
    forecasts = e.forecasts.query()
    assert sorted(f.key for f in forecasts) == sorted(KEYS)
    assert all(f.origin == T0 + 49 * STEP and f.horizon == 4 for f in forecasts)
    assert len(e.anomalies.latest()) == len(KEYS)
    assert e.status.steps == 1
    assert e.status.samples == 50 * len(KEYS)
    assert [h.cluster for h in e.status.health] == ["cloud-1", "edge-1"]
    assert report.seconds == 1  # the injected timer: started at 0, done at 1


def test_shards_split_the_series_completely_and_disjointly(database):
    modelled: list[set[SeriesKey]] = []
    for index in range(3):
        e = engine(database, [PullResult(batches(KEYS, 0, 20), health("cloud-1", "edge-1"))], index, 3)
        e.step(T0 + 20 * STEP)
        modelled.append(set(e.bank.series_keys()))
        assert {k for k in KEYS if owner(k, 3) == index} == modelled[-1]
    assert set().union(*modelled) == set(KEYS)
    assert sum(len(m) for m in modelled) == len(KEYS)
    # a workload's signals stay together: the decider sees a workload's requests and cpu in one replica
    for m in modelled:
        assert {(k.cluster, k.workload) for k in m}.isdisjoint(
            {(k.cluster, k.workload) for other in modelled if other is not m for k in other}
        )


def test_a_cluster_that_left_is_forgotten(database):
    edge = [k for k in KEYS if k.cluster == "edge-1"]
    cloud = [k for k in KEYS if k.cluster == "cloud-1"]
    pulls = [
        PullResult(batches(KEYS, 0, 30), health("cloud-1", "edge-1")),
        PullResult(batches(cloud, 30, 1), health("cloud-1"), removed_clusters=("edge-1",)),
    ]
    e = engine(database, pulls)
    e.step(T0 + 30 * STEP)
    assert {f.key for f in e.forecasts.query(cluster="edge-1")} == set(edge)
    e.step(T0 + 31 * STEP)
    assert set(e.bank.series_keys()) == set(cloud)
    assert e.forecasts.query(cluster="edge-1") == []
    assert e.anomalies.latest(cluster="edge-1") == []
    assert [h.cluster for h in e.status.health] == ["cloud-1"]


def test_samples_already_learnt_are_not_learnt_again(database):
    first = batches(KEYS[:2], 0, 10)
    e = engine(database, [PullResult(first), PullResult(first + batches(KEYS[:2], 10, 1))])
    e.step(T0 + 10 * STEP)
    learnt = e.bank.accuracy().scored
    e.step(T0 + 11 * STEP)
    assert e.bank.accuracy().scored == learnt + 2  # only the new sample of each series


def test_replicas_of_another_fleet_size_stand_aside_so_no_series_is_modelled_twice(database, caplog):
    """A rolling restart (or ``kubectl scale`` alone) runs two fleet sizes side by side: only one splits the series."""
    caplog.set_level(logging.INFO, logger="intelligence.runtime.engine")

    def shard(index: int, count: int, started_at: float) -> Engine:
        pulls = [PullResult(batches(KEYS, k, 1), health("cloud-1", "edge-1")) for k in range(20, 30)]
        replica = Replica(Ownership(index, count), StaticLeadership(index == 0), members=FleetMembers(database))
        replica.started_at = started_at
        return engine(database, pulls, index, count, replica)

    old_0, old_2 = shard(0, 3, T0), shard(2, 3, T0 + 1)
    new_1 = shard(1, 2, T0 + 600)  # restarted with the new count while the others still run the old one
    for e in (old_0, old_2):
        e.step(T0 + 20 * STEP)
    new_1.step(T0 + 20 * STEP)
    # two of three run 3 shards: the newcomer stands aside (it models, decides and leads nothing)
    assert len(new_1.bank) == 0
    assert new_1.status.samples == 0
    assert "shard 1/2 stands aside: the fleet runs 3 shards (shards 0, 2 run 3; shard 1 runs 2)" in caplog.text
    assert new_1.status.standing_aside is not None
    # the old fleet's shard 2 stops (and says so): one against one, the newer count is in force
    old_2.replica.close()
    for e in (old_0, new_1):
        e.step(T0 + 21 * STEP)
    assert old_0.status.standing_aside is not None
    assert new_1.status.standing_aside is None
    assert old_0.leading is False  # a leader standing aside hands the lead over
    assert set(new_1.bank.series_keys()) == {k for k in KEYS if owner(k, 2) == 1}
    learnt_by_0 = old_0.status.samples
    old_0.step(T0 + 22 * STEP)
    assert old_0.status.samples == learnt_by_0  # it learns nothing while it stands aside
    # once the old replica is gone, the fleet agrees again
    old_0.replica.close()
    new_1.step(T0 + 22 * STEP)
    assert new_1.status.standing_aside is None
    assert "every live replica runs 2 shards again" in caplog.text
