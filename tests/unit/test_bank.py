import threading

import numpy as np
import pytest

from intelligence.runtime.model_specs import model_factory, model_signature
from intelligence.vocabulary import SeriesKey
from models import checkpoint
from models.bank import ModelBank

KEY = SeriesKey.of("edge-1", "requests", {"namespace": "iot", "workload": "ingest"})


@pytest.fixture
def bank(embedded_settings):
    return ModelBank(model_factory(embedded_settings, 300.0), interval=0.9)


def series(n: int, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    t = start + np.arange(n) * 300.0
    return t, 20 + 10 * np.sin(2 * np.pi * t / 86_400) + np.random.default_rng(0).normal(0, 0.5, n)


def test_scores_each_new_sample_once_and_forecasts_with_a_band(bank):
    t, y = series(600)
    scores = bank.observe(KEY, t[:500], y[:500])
    assert len(scores) == 500
    again = bank.observe(KEY, t[:510], y[:510])  # overlapping pull: only the 10 new samples
    assert [s.timestamp for s in again] == list(t[500:510])
    fc = bank.forecast(KEY, 12, 300.0)
    assert fc is not None
    assert fc.origin == t[509]
    assert fc.horizon == 12
    assert set(fc.quantiles) == {0.05, 0.95}
    assert all(lo <= p <= hi for lo, p, hi in zip(fc.lower(), fc.point, fc.upper(), strict=True))


def test_nan_is_a_gap_not_a_sample(bank):
    t, y = series(100)
    y[50:60] = np.nan
    assert len(bank.observe(KEY, t, y)) == 90
    assert bank.forecast(SeriesKey.of("x", "cpu"), 12, 300.0) is None


def test_accuracy_is_reported(bank):
    t, y = series(700)
    bank.observe(KEY, t, y)
    acc = bank.accuracy()
    assert acc.series == 1
    assert acc.scored > 600
    assert 0.8 < acc.coverage < 0.98
    assert acc.relative_mae < 1.0


def test_checkpoint_round_trip_and_refusal_of_other_kinds(bank, embedded_settings, tmp_path):
    t, y = series(400)
    bank.observe(KEY, t, y)
    path = tmp_path / "bank.pkl"
    signature = model_signature(embedded_settings, 300.0)
    checkpoint.write_atomically(path, checkpoint.dump(bank.snapshot(), signature))
    restored = ModelBank(bank.factory, **checkpoint.load(path, signature))
    np.testing.assert_array_equal(restored.forecast(KEY, 12, 300.0).point, bank.forecast(KEY, 12, 300.0).point)
    other = {**signature, "cpu": {**signature["cpu"], "forecaster": "something_else"}}
    with pytest.raises(checkpoint.CheckpointError, match="other model kinds or params"):
        checkpoint.load(path, other)
    path.write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="cannot be read"):
        checkpoint.load(path, signature)
    assert [p.name for p in tmp_path.iterdir()] == ["bank.pkl"]  # no temporary file left behind


def test_the_checkpoint_writer_never_blocks_and_keeps_the_newest_snapshot(tmp_path, monkeypatch):
    gate, writing = threading.Event(), threading.Event()
    real_write = checkpoint.write_atomically

    def held_write(path, payload):
        writing.set()
        gate.wait(10)
        real_write(path, payload)

    monkeypatch.setattr(checkpoint, "write_atomically", held_write)
    path = tmp_path / "bank.pkl"
    writer = checkpoint.CheckpointWriter(path, {"v": 1})
    writer.submit({"series": {"n": 1}, "fleets": {}})
    assert writing.wait(10)  # the first write is in progress, held by the gate
    writer.submit({"series": {"n": 2}, "fleets": {}})  # returns at once
    writer.submit({"series": {"n": 3}, "fleets": {}})  # replaces the waiting one
    assert writer.skipped == 1
    gate.set()
    assert writer.flush(10)
    writer.close(10)
    assert checkpoint.load(path, {"v": 1}) == {"series": {"n": 3}, "fleets": {}}
    assert writer.written == 2
