"""Vectorised kinds and the fleet: same arithmetic as one series, bad input, cold start, drift, seasonality."""

import math
import pickle
import re

import numpy as np
import pytest

from intelligence.vocabulary import AnomalyScore, SeriesKey
from models.bank import ModelBank
from models.base import Expectation
from models.fleet import Fleet, ForecastRows, ScoreRows
from models.kinds import ModelSpec
from models.record_ratio import RecordRatio
from models.seasonal_ar import SeasonalAR

STEP = 300.0
SPEC = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": STEP, "horizon": 6}, {})


def key(workload: str, cluster: str = "edge-1", signal: str = "requests") -> SeriesKey:
    return SeriesKey.of(cluster, signal, {"namespace": "iot", "workload": workload})


def daily(n: int, seed: int, level: float = 50.0, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = (start + np.arange(n)) * STEP
    return t, level * (1 + 0.4 * np.sin(2 * np.pi * t / 86_400)) + rng.normal(0, 1, n)


def fleet() -> Fleet:
    f, d = SPEC.build()
    return Fleet(f, d, SPEC.forecaster, SPEC.detector)


def as_in_a_reason(expected: Expectation | None) -> tuple[float | None, float | None, float | None]:
    """(expected, lower, upper) as a score's reason holds them: None where unknown."""
    if expected is None:
        return None, None, None
    value, lower, upper = (None if math.isnan(v) else v for v in (expected.value, expected.lower, expected.upper))
    return value, lower, upper


def test_a_fleet_computes_exactly_what_single_series_models_compute():
    """Every score, every expectation behind it and the final forecasts: bit for bit, no tolerance."""
    series = {key(f"w{i}"): daily(700, seed=i, level=20.0 * (i + 1)) for i in range(3)}
    many = fleet()
    together: dict[SeriesKey, list[tuple]] = {k: [] for k in series}
    for r in range(0, 700, 50):  # pulls of 50 samples: rounds inside each pull
        for s in many.observe([(k, t[r : r + 50], y[r : r + 50]) for k, (t, y) in series.items()]):
            together[s.key].append((s.timestamp, s.score, s.reason.expected, s.reason.lower, s.reason.upper))
    rows = many.forecast(list(series), 6, STEP, 0.9)
    assert rows is not None
    assert rows.keys == list(series)
    for i, (k, (t, y)) in enumerate(series.items()):
        alone, detector = SeasonalAR(step_seconds=STEP, horizon=6), RecordRatio()
        one_by_one = []
        for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
            expected = alone.expect(ti)
            score = detector.score_one(ti, yi, expected)[0]
            one_by_one.append((ti, score, *as_in_a_reason(expected)))
            detector.learn_one(ti, yi, expected)
            alone.learn_one(ti, yi)
        assert len(together[k]) == 700
        assert together[k] == one_by_one
        assert sum(score > 0 for _, score, *_ in one_by_one) > 100  # the detector is past its warm-up: scores differ
        assert sum(lower is not None for _, _, _, lower, _ in one_by_one) > 600  # and most samples had a band
        fc = alone.forecast(6)
        np.testing.assert_array_equal(rows.point[i], fc.point)
        np.testing.assert_array_equal(rows.lower[i], fc.lower)
        np.testing.assert_array_equal(rows.upper[i], fc.upper)
        assert np.isfinite(fc.lower).all()


def test_series_at_different_steps_forecast_together_as_each_alone():
    """A fleet's series need not share their last step (an adopted series, a cluster scraped late): forecasts and
    surges of such a mix are those of each series forecast alone."""
    series = {key(f"w{i}"): daily(600 + 7 * i, seed=i, level=30.0, start=11 * i) for i in range(3)}
    many = fleet()
    many.observe([(k, t, y) for k, (t, y) in series.items()])
    rows = many.forecast(list(series), 6, STEP, 0.9)
    assert rows is not None
    for i, k in enumerate(series):
        alone = many.forecast([k], 6, STEP, 0.9)
        assert alone is not None
        np.testing.assert_array_equal(rows.point[i], alone.point[0])
        np.testing.assert_array_equal(rows.upper[i], alone.upper[0])
        assert rows.surge is not None
        assert alone.surge is not None
        np.testing.assert_array_equal(rows.surge[i], alone.surge[0])


def test_duplicates_late_samples_and_nan_inside_a_pull_are_skipped():
    f = fleet()
    k = key("ingest")
    t = np.array([0.0, 300.0, 300.0, 0.0, 600.0, 900.0]) + 1e6
    y = np.array([1.0, 2.0, 99.0, 99.0, math.nan, 3.0])
    scores = f.observe([(k, t, y)])
    assert [s.timestamp for s in scores] == [1e6, 1e6 + 300, 1e6 + 900]
    assert [s.reason.observed for s in scores] == [1.0, 2.0, 3.0]
    again = f.observe([(k, t, y)])  # the same pull again: nothing new
    assert again == []
    both = f.observe([(k, t[:1] + 1200, y[:1]), (k, t[:1] + 1500, y[:1])])  # one key twice: merged
    assert [s.timestamp for s in both] == [1e6 + 1200, 1e6 + 1500]


def test_reported_scores_are_events_then_the_latest_row_of_each_series():
    f = fleet()
    t, y = daily(400, seed=1)
    y[390] *= 6  # a spike
    out = f.observe([(key("a"), t, y), (key("b"), t, y * 2)], report_at=0.55)
    events = [s for s in out if isinstance(s, AnomalyScore)]
    latest = [s for s in out if isinstance(s, ScoreRows)]
    assert {e.timestamp for e in events} >= {t[390]}
    assert all(e.score >= 0.55 and e.reason.detail for e in events)
    spike = next(e for e in events if e.timestamp == t[390])
    ratio = float(re.search(r"([0-9.]+)x its recent record", spike.reason.detail).group(1))
    damp = 0.8 if "damped" in spike.reason.detail else 1.0  # a repeat within the hold of an earlier alarm
    assert spike.score == pytest.approx(damp * ratio / (1 + ratio), abs=0.01)  # explained before it was learnt
    assert len(latest) == 1
    assert latest[0].keys == [key("a"), key("b")]
    assert latest[0].row(0).timestamp == t[-1]


def test_a_dropped_series_frees_its_slot_and_a_newcomer_starts_fresh():
    f = fleet()
    t, y = daily(300, seed=2)
    f.observe([(key("a"), t, y), (key("b"), t, y)])
    assert f.drop([key("a"), key("zzz")]) == 1
    f.observe([(key("c", signal="cpu"), t[:5], y[:5])])  # another signal: no donor, fresh state
    assert f.slots[key("c", signal="cpu")] == 0  # the freed slot is reused
    assert f.stats["learnt"][0] == 5
    assert f.forecaster.state_["n"][0] == 5  # the models' state too, not the 300 samples of "a"
    assert f.detector.state_["n"][0] == 5
    rows = f.forecast([key("a"), key("b")], 6, STEP, 0.9)
    assert rows is not None
    assert rows.keys == [key("b")]


def one_step_error(f: Fleet, k: SeriesKey, t: np.ndarray, y: np.ndarray) -> float:
    scores = f.observe([(k, t, y)])
    errors = [abs(s.reason.observed - s.reason.expected) for s in scores if s.reason.expected is not None]
    return float(np.mean(errors))


def test_a_new_series_starts_from_a_similar_trained_series():
    trained = fleet()
    t, y = daily(288 * 4, seed=3)
    trained.observe([(key("ingest", cluster="cloud-1"), t, y)])
    newcomer_t, newcomer_y = daily(150, seed=4, level=80.0, start=288 * 4)
    seeded = one_step_error(trained, key("ingest", cluster="edge-1"), newcomer_t, newcomer_y)
    cold = one_step_error(fleet(), key("ingest", cluster="edge-1"), newcomer_t, newcomer_y)
    assert seeded < 0.9 * cold


def test_seasonality_is_found_not_assumed():
    model = SeasonalAR(step_seconds=STEP, horizon=6)
    model.ensure(2)
    rng = np.random.default_rng(5)
    n = 288 * 8
    t = np.arange(n) * STEP
    seasonal = 50 * (1 + 0.5 * np.sin(2 * np.pi * t / 86_400)) + rng.normal(0, 0.5, n)
    walk = 50 + np.cumsum(rng.normal(0, 0.5, n))  # no cycle at all
    for i in range(n):
        model.learn_many(np.array([0, 1]), np.array([t[i], t[i]]), np.array([seasonal[i], walk[i]]))
    day_weight = model.state_["w"][model.p]  # the weight of the daily profile feature, of each series
    assert day_weight[0] > 0.15  # the lags and the pull to the slow level share the rest of the cycle
    assert abs(day_weight[1]) < 0.1


def test_the_surge_is_high_where_recent_days_rose_suddenly_and_nowhere_else():
    model = SeasonalAR(step_seconds=STEP, horizon=3)
    model.ensure(1)
    rng = np.random.default_rng(11)
    days = 10
    t = np.arange(288 * days) * STEP
    y = 20 + rng.normal(0, 0.5, len(t))
    burst = (np.mod(t, 86_400) >= 9 * 3600) & (np.mod(t, 86_400) < 9 * 3600 + 900)  # 09:00 for 15 minutes
    y[burst] += 30
    slot = np.array([0])
    allowance = {}
    for i in range(len(t)):
        model.learn_many(slot, t[i : i + 1], y[i : i + 1])
        hour = (t[i] % 86_400) / 3600
        if i > 288 * (days - 1) and hour in (8.75, 14.75):  # the last day, 15 minutes before 09:00 and 15:00
            point = model.forecast_many(slot, 3)[0]
            allowance[hour] = float((model.surge_many(slot, 3) - point)[0, -1])  # for 09:00 / 15:00
    assert allowance[8.75] > 15.0  # a sudden rise is usual at 09:00: provision for it ahead
    assert allowance[14.75] < 3.0  # nothing happens at 15:00: no more than the noise


def test_timer_triggered_load_is_provisioned_at_its_phase_within_hours():
    model = SeasonalAR(step_seconds=60.0, horizon=6)
    model.ensure(2)
    rng = np.random.default_rng(5)
    n = 240  # four hours of minutes: far from a day of history
    t = np.arange(n) * 60.0
    timer = np.where(np.arange(n) % 5 == 0, 40.0, 2.0) + rng.uniform(0, 0.5, n)  # a burst every 5 minutes
    quiet = 20 + rng.normal(0, 0.5, n)
    for i in range(n):
        model.learn_many(np.array([0, 1]), np.array([t[i], t[i]]), np.array([timer[i], quiet[i]]))
    surge = model.surge_many(np.array([0, 1]), 6)  # steps 240..245: the burst is due at 240 and 245
    assert surge[0, 0] > 35.0
    assert surge[0, 5] > 35.0
    assert surge[0, 1:5].max() < 10.0  # between bursts: no pods held for them
    point = model.forecast_many(np.array([1]), 6)[0]
    assert np.all(surge[1] - point[0] < 5.0)  # a steady series: no more than the noise


def test_after_a_level_shift_the_new_normal_stops_being_flagged():
    f = fleet()
    rng = np.random.default_rng(6)
    n = 2000
    t = np.arange(n) * STEP
    y = 20 + rng.normal(0, 1, n)
    y[1000:] += 30  # a new normal
    scores = np.array([s.score for s in f.observe([(key("a"), t, y)])])
    assert scores[1000:1010].max() >= 0.55  # the shift itself is flagged
    assert scores[1500:].max() < 0.55  # ... and then becomes normal


@pytest.mark.parametrize(("noisier", "drifts"), [(5.0, 1), (1.0, 0)])
def test_drift_is_detected_only_when_there_is_some_and_the_band_stays_calibrated(noisier, drifts):
    model = SeasonalAR(step_seconds=STEP, horizon=6)
    rng = np.random.default_rng(7)
    n = 288 * 10
    t = np.arange(n) * STEP
    noise = np.where(np.arange(n) < 288 * 5, 1.0, noisier)
    y = 50 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 1, n) * noise
    inside = []
    for i in range(n):
        expected = model.expect(t[i])
        if i > 288 * 7 and expected is not None:
            inside.append(expected.lower <= y[i] <= expected.upper)
        model.learn_one(t[i], float(y[i]))
    assert model.state_["drifts"][0] == drifts
    assert 0.85 <= np.mean(inside) <= 0.95


def test_a_bank_of_fleets_survives_a_checkpoint(tmp_path):
    bank = ModelBank(lambda k: SPEC)
    t, y = daily(400, seed=8)
    bank.observe_many([(key("a"), t, y), (key("b"), t, y + 5)])
    restored = ModelBank(lambda k: SPEC, **pickle.loads(pickle.dumps(bank.snapshot())))
    for k in (key("a"), key("b")):
        before, after = bank.forecast(k, 6, STEP), restored.forecast(k, 6, STEP)
        assert before is not None
        assert after is not None
        assert before.point == after.point
    assert restored.latest_timestamp() == t[-1]
    many = restored.forecast_many([key("a"), key("b")], 6, STEP)
    assert isinstance(many[0], ForecastRows)


@pytest.mark.parametrize(
    ("kind", "learn"),
    [(SeasonalAR, lambda m, t, y: m.learn_one(t, y)), (RecordRatio, lambda m, t, y: m.learn_one(t, y, None))],
    ids=["seasonal_ar", "record_ratio"],
)
def test_state_size_is_fixed_per_series(kind, learn):
    model = kind()
    size = model.bytes_per_series()
    assert 0 < size < 16_384
    t, y = daily(2000, seed=9)
    for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
        learn(model, ti, yi)
    state = model.ensure(1)
    assert model.bytes_per_series() == size
    assert sum(a.nbytes for a in state.arrays.values()) == state.capacity * size  # no growth with samples learnt
