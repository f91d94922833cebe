"""Series move between shards with their model state, through the checkpoints of one shared directory."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from intelligence.runtime import handover
from intelligence.runtime.checkpoints import Checkpoints, checkpoint_name
from intelligence.runtime.ownership import Ownership, owner
from intelligence.vocabulary import SeriesKey
from models import checkpoint
from models.bank import ModelBank
from models.kinds import ModelSpec

STEP = 300.0
SPEC = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": STEP, "horizon": 4, "interval": 0.9}, {})
SIGNATURE = {"cpu": {"forecaster": "seasonal_ar"}}
KEYS = [
    SeriesKey.of(cluster, signal, {"namespace": "ns", "workload": f"w{i}"})
    for cluster in ("cloud-1", "fog-1", "edge-1")
    for signal in ("requests", "cpu")
    for i in range(8)
]


def new_bank() -> ModelBank:
    return ModelBank(lambda key: SPEC, interval=0.9)


def feed(bank: ModelBank, keys: list[SeriesKey], start: int, count: int) -> None:
    steps = np.arange(start, start + count)
    level = {k: 10.0 + j for j, k in enumerate(KEYS)}  # each series its own values, wherever it is fed
    bank.observe_many([(k, steps * STEP, level[k] + np.sin(steps / 12.0) + 0.3 * np.cos(steps * 1.7)) for k in keys])


def write(directory: Path, shard: int, shards: int, bank: ModelBank, signature: dict = SIGNATURE) -> Path:
    path = directory / checkpoint_name(shard)
    points = Checkpoints(path, signature, meta={"shard": shard, "shards": shards})
    points.take(bank, wait=True)
    points.close()
    return path


def fleet(directory: Path, shards: int, samples: int = 300) -> dict[int, ModelBank]:
    """``shards`` replicas that each learnt ``samples`` samples of their own series, then checkpointed."""
    banks = {}
    for shard in range(shards):
        bank = banks[shard] = new_bank()
        feed(bank, [k for k in KEYS if owner(k, shards) == shard], 0, samples)
        write(directory, shard, shards, bank)
    return banks


def restart(directory: Path, shard: int, shards: int) -> tuple[ModelBank, set[SeriesKey]]:
    """What a replica does at start: restore its own checkpoint, adopt what it owns now, note what it holds."""
    path = directory / checkpoint_name(shard)
    bank = new_bank()
    if path.exists():
        bank = ModelBank(bank.factory, interval=0.9, **checkpoint.load(path, SIGNATURE))
    ownership = Ownership(shard, shards)
    handover.adopt(bank, ownership, directory, path, SIGNATURE)
    return bank, handover.outgoing(bank, ownership)


def forecasts(bank: ModelBank, keys: list[SeriesKey]) -> dict[SeriesKey, tuple[float, ...]]:
    return {k: bank.forecast(k, 4, STEP).point for k in keys}


@pytest.mark.parametrize(("before", "after"), [(3, 2), (2, 3), (1, 4), (4, 1), (3, 3)])
def test_after_a_resize_each_series_has_one_owner_with_its_state(tmp_path, before, after):
    old = fleet(tmp_path, before)
    learnt_before = {k: v for b in old.values() for k, v in b.progress().items()}
    said_before = {k: v for b in old.values() for k, v in forecasts(b, b.series_keys()).items()}
    new = {shard: restart(tmp_path, shard, after) for shard in range(after)}
    owned = [set(bank.series_keys()) - held for bank, held in new.values()]
    assert set().union(*owned) == set(KEYS)
    assert sum(len(o) for o in owned) == len(KEYS)
    for shard, (bank, held) in new.items():
        assert all(owner(k, after) == shard for k in owned[shard])
        assert all(owner(k, after) != shard for k in held)
        # nothing restarts from nothing: every owned series carries what it learnt before the resize
        assert {k: bank.progress()[k] for k in owned[shard]} == {k: learnt_before[k] for k in owned[shard]}
        assert forecasts(bank, sorted(owned[shard])) == {k: said_before[k] for k in sorted(owned[shard])}


def test_an_adopted_series_learns_on_as_if_it_had_not_moved(tmp_path):
    fleet(tmp_path, 3)
    unmoved = new_bank()
    feed(unmoved, KEYS, 0, 300)
    banks = {shard: restart(tmp_path, shard, 2)[0] for shard in range(2)}
    for shard, bank in banks.items():
        mine = [k for k in KEYS if owner(k, 2) == shard]
        feed(bank, mine, 300, 50)
        feed(unmoved, mine, 300, 50)
        assert forecasts(bank, mine) == forecasts(unmoved, mine)
        assert all(bank.progress()[k][1] == 350 for k in mine)


def test_the_newest_state_wins_wherever_it_is(tmp_path):
    """A file of a shard that left long ago is older than the state its series' owners have since written."""
    fleet(tmp_path, 3, samples=100)  # an old fleet of three: bank-shard2.pkl stays behind
    fleet(tmp_path, 2, samples=300)  # then two shards, which adopted everything and learnt on
    bank, _ = restart(tmp_path, 2, 3)  # a third shard again
    mine = [k for k in KEYS if owner(k, 3) == 2]
    assert mine
    assert {bank.progress()[k][1] for k in mine} == {300}  # not its own 100


def test_held_series_are_released_once_their_new_owner_has_checkpointed_them(tmp_path):
    fleet(tmp_path, 2)
    bank0, held0 = restart(tmp_path, 0, 3)  # shard 0 restarts first, with three shards
    assert held0
    assert all(owner(k, 3) == 2 for k in held0)
    write(tmp_path, 0, 3, bank0)  # its checkpoints keep the held series...
    assert handover.release(bank0, held0, 3, tmp_path, tmp_path / checkpoint_name(0)) == held0
    assert held0 <= set(checkpoint.read_header(tmp_path / checkpoint_name(0)).series)
    bank2, _ = restart(tmp_path, 2, 3)  # ...so the new shard finds them, whenever it starts
    assert held0 <= set(bank2.series_keys())
    write(tmp_path, 2, 3, bank2)
    assert handover.release(bank0, held0, 3, tmp_path, tmp_path / checkpoint_name(0)) == set()
    assert not held0 & set(bank0.series_keys())


def test_checkpoints_of_other_model_kinds_are_skipped(tmp_path, caplog):
    fleet(tmp_path, 2)
    write(tmp_path, 1, 2, restart(tmp_path, 1, 2)[0], signature={"cpu": {"forecaster": "other"}})
    with caplog.at_level(logging.WARNING):
        bank, _ = restart(tmp_path, 0, 1)
    assert "made by other model kinds or params" in caplog.text
    assert set(bank.series_keys()) == {k for k in KEYS if owner(k, 2) == 0}
