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
from intelligence.runtime import handover
from intelligence.runtime.checkpoints import Checkpoints, checkpoint_name
from intelligence.runtime.engine import Engine
from intelligence.runtime.handover import Handover
from intelligence.runtime.ownership import Ownership, owner
from intelligence.runtime.replica import Replica
from intelligence.runtime.stores import AnomalyStore, ForecastStore
from intelligence.storage.anomalies import AnomalyEvents
from intelligence.storage.database import Database, open_database
from intelligence.storage.fleet_members import FleetMembers
from intelligence.storage.leadership import StaticLeadership
from intelligence.vocabulary import ClusterHealth, HealthState, SeriesBatch, SeriesKey, Tier
from models import checkpoint
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


class KeptCollector:
    """Every series of ``KEYS`` at every step up to ``now``, each sample once; and, like the Prometheus collector,
    everything returned so far again on ``recollect``."""

    def __init__(self, keys: list[SeriesKey] = KEYS) -> None:
        self.keys = keys
        self.watermark = -1  # the last step returned
        self.recollected: list[int] = []  # how many steps each recollect returned

    def pull(self, now: float) -> PullResult:
        last = int((now - T0) // STEP)
        got = batches(self.keys, self.watermark + 1, last - self.watermark)
        self.watermark = last
        return PullResult(got, health("cloud-1", "edge-1"))

    def recollect(self, now: float, since: float | None = None) -> PullResult:
        first = 0 if since is None else int((since - T0) // STEP)
        self.recollected.append(self.watermark + 1 - first)
        return PullResult(batches(self.keys, first, self.watermark + 1 - first), health("cloud-1", "edge-1"))

    def close(self) -> None:
        pass


SIGNATURE = {"cpu": {"forecaster": "seasonal_ar"}}


class Shard:
    """A replica of a sharded fleet as the service wires it: restored from its checkpoint in the shared directory,
    adopting what it owns from the others' at start, and checkpointing as the service does."""

    def __init__(
        self,
        database: Database,
        directory: Path,
        index: int,
        count: int,
        started_at: float,
        takeover_after: float = 3600,
    ) -> None:
        path = directory / checkpoint_name(index)
        replica = Replica(Ownership(index, count), StaticLeadership(index == 0), members=FleetMembers(database))
        replica.started_at = started_at
        self.engine = e = engine(database, [], index, count, replica)
        e.collector = KeptCollector()
        e.split.takeover_after = takeover_after
        if path.exists():
            e.bank = ModelBank(e.bank.factory, interval=0.9, **checkpoint.load(path, SIGNATURE))
        e.handover = Handover(path, lambda: SIGNATURE)
        e.handover.adopt(e.bank, e.ownership)
        e.outgoing = handover.outgoing(e.bank, e.ownership)
        self.points = Checkpoints(path, SIGNATURE, meta={"shard": index, "shards": count})

    def step(self, k: int) -> None:
        self.engine.step(T0 + k * STEP)

    def checkpoint(self) -> None:
        e = self.engine
        if e.outgoing and e.handover is not None:
            e.outgoing = e.handover.release(e.bank, e.outgoing, e.fleet_count)
        self.points.take(e.bank, wait=True, shards=e.fleet_count)

    def stop(self) -> None:
        self.checkpoint()
        self.points.close()
        self.engine.replica.close()

    def modelled(self) -> dict[SeriesKey, tuple[float, int]]:
        """The series it models (not those it holds for another), with their last learnt step and samples."""
        e = self.engine
        return {k: v for k, v in e.bank.progress().items() if k not in e.outgoing}


def learnt_once_up_to(shard: Shard, k: int) -> bool:
    """Every series it models learnt every step 0..k, once."""
    return all(v == (T0 + k * STEP, k + 1) for v in shard.modelled().values())


def test_a_shrink_rolled_out_pod_by_pod_never_leaves_a_series_unmodelled(database, tmp_path, caplog):
    """3 -> 2 as a StatefulSet rolls it out: the last ordinal goes, then shard 1 restarts with 2 while shard 0 still
    runs 3. Shard 0 follows the count in force at once: it takes shard 2's series it owns in a fleet of two over from
    shard 2's checkpoint and replays their history since from the collector."""
    caplog.set_level(logging.INFO, logger="intelligence.runtime")
    old = [Shard(database, tmp_path, i, 3, T0 + i) for i in range(3)]
    for k in range(20, 26):
        for shard in old:
            shard.step(k)
    for shard in old[1:]:
        shard.stop()  # shard 2 is deleted, shard 1 restarts with the new count
    new_1 = Shard(database, tmp_path, 1, 2, T0 + 600)
    for shard in (new_1, old[0]):  # shard 0 sees the newcomer at its next step
        shard.step(26)
    modelled = [old[0].modelled(), new_1.modelled()]
    assert set(modelled[0]) == {k for k in KEYS if owner(k, 2) == 0}
    assert set(modelled[1]) == {k for k in KEYS if owner(k, 2) == 1}
    assert learnt_once_up_to(old[0], 26)
    assert learnt_once_up_to(new_1, 26)
    assert "shard 0/3 follows the fleet's 2 shards (shard 1 runs 2; shard 0 runs 3) as shard 0/2" in caplog.text
    assert "are back" not in caplog.text  # the shards of another count are other shards
    assert old[0].engine.status.out_of_step.endswith("restart it with engine.shard_count=2")
    assert {f.key for f in old[0].engine.forecasts.query()} == set(modelled[0])  # it forecasts what it took over
    # then shard 0 restarts with the new count: it goes on from its own checkpoint, which lists the split of two
    old[0].stop()
    assert checkpoint.read_header(tmp_path / checkpoint_name(0)).meta["shards"] == 2
    new_0 = Shard(database, tmp_path, 0, 2, T0 + 1200)
    new_0.step(27)
    new_1.step(27)
    assert new_0.modelled().keys() == modelled[0].keys()
    assert learnt_once_up_to(new_0, 27)
    assert learnt_once_up_to(new_1, 27)
    assert new_0.engine.status.out_of_step is None
    assert new_1.engine.status.out_of_step is None


def test_a_growth_rolled_out_pod_by_pod_hands_series_over_with_their_state(database, tmp_path, caplog):
    """2 -> 3: the new last ordinal starts first and stands aside (a fleet of two has no shard 2); once shard 1
    restarts with 3, shard 0 follows three shards: shard 2 takes its series over, and shard 0 holds them until
    shard 2's checkpoint has them."""
    caplog.set_level(logging.INFO, logger="intelligence.runtime")
    old = [Shard(database, tmp_path, i, 2, T0 + i) for i in range(2)]
    for k in range(20, 24):
        for shard in old:
            shard.step(k)
    for shard in old:
        shard.checkpoint()
    new_2 = Shard(database, tmp_path, 2, 3, T0 + 600)
    new_2.step(24)
    assert new_2.engine.aside
    assert new_2.modelled() == {}
    assert new_2.engine.status.samples == 0
    assert "shard 2/3 stands aside: the fleet runs 2 shards" in caplog.text
    for shard in old:
        shard.step(24)
    old[1].stop()
    new_1 = Shard(database, tmp_path, 1, 3, T0 + 1200)
    for shard in (new_1, new_2, old[0]):
        shard.step(25)
    shards = [old[0], new_1, new_2]
    modelled = [set(s.modelled()) for s in shards]
    assert modelled == [{k for k in KEYS if owner(k, 3) == i} for i in range(3)]
    assert all(learnt_once_up_to(s, 25) for s in shards)
    held = old[0].engine.outgoing
    assert held == {k for k in KEYS if owner(k, 2) == 0 and owner(k, 3) == 2}
    assert not {f.key for f in old[0].engine.forecasts.query()} & held  # it no longer answers for them
    old[0].checkpoint()
    assert old[0].engine.outgoing == held  # shard 2 has not checkpointed them yet
    new_2.checkpoint()
    old[0].checkpoint()
    assert old[0].engine.outgoing == set()
    assert not held & set(old[0].engine.bank.series_keys())


def test_the_series_of_a_shard_gone_for_good_are_taken_over_until_it_is_back(database, tmp_path, caplog):
    """``kubectl scale`` alone, a pod evicted or stuck on a lost node: no live replica runs shard 2. Once it has been
    absent for ``takeover_after``, each of its series goes to its runner-up with its state; when shard 2 is back, it
    has them again, and the others hand them back."""
    caplog.set_level(logging.INFO, logger="intelligence.runtime")
    shards = [Shard(database, tmp_path, i, 3, T0 + i, takeover_after=3 * STEP) for i in range(3)]
    for k in range(20, 24):
        for shard in shards:
            shard.step(k)
        shards[2].checkpoint()
    survivors = shards[:2]  # shard 2 dies without a word at step 23 (its checkpoint has learnt up to step 23)
    for k in range(24, 31):
        for shard in survivors:
            shard.step(k)
        if k < 30:  # live for three steps, then absent for three more before the others take over
            assert [set(s.modelled()) for s in survivors] == [{x for x in KEYS if owner(x, 3) == i} for i in (0, 1)]
    assert "no live replica runs shard(s) 2 of 3 for 900 s or more" in caplog.text
    assert all("no live replica runs shard(s) 2 of 3" in (s.engine.status.out_of_step or "") for s in survivors)
    taken = [set(s.modelled()) for s in survivors]
    assert taken == [{x for x in KEYS if owner(x, 3, frozenset({2})) == i} for i in (0, 1)]
    assert all(learnt_once_up_to(s, 30) for s in survivors)  # from shard 2's state, and its history since
    assert [s.engine.collector.recollected for s in survivors] == [[8], [8]]  # steps 23..30, not the whole window
    for shard in survivors:
        shard.checkpoint()
    back = Shard(database, tmp_path, 2, 3, T0 + 9000, takeover_after=3 * STEP)  # the pod is rescheduled
    back.step(31)
    assert set(back.modelled()) == {x for x in KEYS if owner(x, 3) == 2}
    assert learnt_once_up_to(back, 31)  # adopted from the survivors' newer checkpoints, not its own older one
    for shard in survivors:
        shard.step(31)
    assert "shard(s) 2 of 3 are back" in caplog.text
    assert all(s.engine.status.out_of_step is None for s in survivors)
    assert [set(s.modelled()) for s in survivors] == [{x for x in KEYS if owner(x, 3) == i} for i in (0, 1)]
    back.checkpoint()
    for shard in survivors:
        shard.checkpoint()
        assert shard.engine.outgoing == set()
