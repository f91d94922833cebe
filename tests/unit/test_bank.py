import threading

import numpy as np
import pytest

from intelligence.runtime.model_specs import model_factory, model_signature, model_spec
from intelligence.vocabulary import SeriesKey
from models import checkpoint
from models.bank import ModelBank
from models.kinds import ModelSpec

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
    assert writer.written == 0  # the submits returned while the first write was still held
    assert writer.skipped == 1
    gate.set()
    assert writer.flush(10)
    writer.close(10)
    assert checkpoint.load(path, {"v": 1}) == {"series": {"n": 3}, "fleets": {}}
    assert writer.written == 2


# -- a challenger's fleet adopted from the shadow bank -----------------------------------------
CHAMPION = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": 300.0, "horizon": 6}, {})
CHALLENGER = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": 300.0, "horizon": 6, "p": 4}, {})
REQUESTS = [SeriesKey.of("edge-1", "requests", {"namespace": "iot", "workload": w}) for w in ("ingest", "api")]
CPU = SeriesKey.of("edge-1", "cpu", {"namespace": "iot", "workload": "ingest"})


def banks(
    shadow_keys: list[SeriesKey], shadow_spec: ModelSpec = CHALLENGER
) -> tuple[ModelBank, ModelBank, dict[str, ModelSpec]]:
    """A champion bank (every series) and a shadow bank (``shadow_keys``), both fed 300 samples of each."""
    active: dict[str, ModelSpec] = {}  # the signal's champion, read at every build (like the service's factory)
    champion = ModelBank(lambda k: active.get(k.signal, CHAMPION))
    shadow = ModelBank(lambda k: shadow_spec)
    t, y = series(300)
    champion.observe_many([(k, t, y + i) for i, k in enumerate([*REQUESTS, CPU])])
    shadow.observe_many([(k, t, y + i) for i, k in enumerate(shadow_keys)])
    return champion, shadow, active


def forecasts(bank: ModelBank, keys: list[SeriesKey]) -> list[tuple[float, ...] | None]:
    return [None if (fc := bank.forecast(k, 6, 300.0)) is None else fc.point for k in keys]


def state(bank: ModelBank) -> tuple:
    """What adopt may change: the series, which fleet object holds each spec, what they forecast."""
    keys = [*REQUESTS, CPU]
    return sorted(bank.series_keys()), {spec: id(f) for spec, f in bank.fleets.items()}, forecasts(bank, keys)


def test_adopt_moves_the_challengers_fleet_with_what_it_learnt():
    champion, shadow, active = banks(REQUESTS)
    fleet = shadow.fleets[CHALLENGER]
    learnt_in_shadow, cpu_before = forecasts(shadow, REQUESTS), forecasts(champion, [CPU])
    active["requests"] = CHALLENGER
    assert champion.adopt(shadow, CHALLENGER, "requests")
    assert champion.fleets[CHALLENGER] is fleet
    assert CHALLENGER not in shadow.fleets
    assert shadow.series_keys() == []
    assert list(champion.fleets[CHAMPION].slots) == [CPU]  # the old champion's series of the signal are gone
    assert forecasts(champion, REQUESTS) == learnt_in_shadow  # no cold start
    assert forecasts(champion, [CPU]) == cpu_before  # other signals untouched
    t, y = series(1, start=300 * 300.0)
    champion.observe_many([(k, t, y) for k in REQUESTS])  # the next samples are learnt by the adopted fleet
    assert [int(fleet.stats["learnt"][fleet.slots[k]]) for k in REQUESTS] == [301, 301]
    assert len(champion) == 3


def test_adopt_drops_what_the_source_still_holds_of_the_signal():
    champion, shadow, _ = banks(REQUESTS)
    stray = SeriesKey.of("edge-2", "requests", {"namespace": "iot", "workload": "ingest"})
    shadow.factory = lambda k: CHAMPION  # the source holds this series of the signal in another fleet
    shadow.observe(stray, *series(10))
    assert champion.adopt(shadow, CHALLENGER, "requests")
    assert shadow.series_keys() == []
    assert stray not in champion.series_keys()


def test_after_adopt_the_source_runs_a_next_challenger_of_the_signal_on_its_own_spec():
    champion, shadow, _ = banks(REQUESTS)
    assert champion.adopt(shadow, CHALLENGER, "requests")
    following = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": 300.0, "horizon": 6, "p": 8}, {})
    shadow.factory = lambda k: following
    shadow.observe(REQUESTS[0], *series(10, start=300 * 300.0))
    assert list(shadow.fleets) == [following]  # not a stale route to the adopted spec


@pytest.mark.parametrize(
    ("shadow_keys", "shadow_spec", "adopted"),
    [
        pytest.param(REQUESTS, CHALLENGER, CHAMPION, id="the source has no fleet for the spec"),
        pytest.param([*REQUESTS, CPU], CHALLENGER, CHALLENGER, id="the source's fleet holds another signal"),
        pytest.param(REQUESTS, CHAMPION, CHAMPION, id="this bank has a fleet for the spec"),
    ],
)
def test_adopt_refuses_and_changes_nothing(shadow_keys, shadow_spec, adopted):
    champion, shadow, _ = banks(shadow_keys, shadow_spec)
    before, shadow_before = state(champion), state(shadow)
    assert not champion.adopt(shadow, adopted, "requests")
    assert state(champion) == before
    assert state(shadow) == shadow_before


def test_each_signal_says_whether_its_forecasts_are_clipped_at_zero(embedded_settings):
    """Most metrics cannot go below 0 (``non_negative`` defaults to true); a signal that can sets it false."""
    signals = [
        s.model_copy(update={"non_negative": False}) if s.name == "cpu" else s for s in embedded_settings.signals
    ]
    settings = embedded_settings.model_copy(update={"signals": signals})
    assert model_spec(settings, "cpu", 300.0)["forecaster_params"]["non_negative"] is False
    assert model_spec(settings, "memory", 300.0)["forecaster_params"]["non_negative"] is True
    assert model_spec(settings, "unconfigured", 300.0)["forecaster_params"]["non_negative"] is True
    bank = ModelBank(model_factory(settings, 300.0))
    t = np.arange(600) * 300.0
    y = np.random.default_rng(1).normal(0.0, 1.0, 600)  # around 0: an unclipped band reaches below it
    cpu, memory = (
        SeriesKey.of("edge-1", signal, {"namespace": "iot", "workload": "ingest"}) for signal in ("cpu", "memory")
    )
    bank.observe_many([(cpu, t, y), (memory, t, y)])
    clipped, free = bank.forecast(memory, 12, 300.0), bank.forecast(cpu, 12, 300.0)
    assert clipped is not None
    assert free is not None
    assert min(clipped.lower()) == 0.0
    assert min(clipped.point) >= 0.0
    assert min(free.lower()) < 0.0
