"""Properties every registered forecaster and detector must have (issue 4 grows this into the conformance suite)."""

import math
import pickle

import numpy as np
import pytest

from models.base import Expectation
from models.detectors import DETECTORS
from models.forecasters import FORECASTERS
from models.registry import BadModelParams, UnknownModelKind, make_detector, make_forecaster

STEP = 300.0


def daily(n: int, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * STEP
    y = 50 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, noise, n)
    return t, y


@pytest.mark.parametrize("kind", sorted(FORECASTERS))
def test_forecaster_learns_a_daily_cycle_and_calibrates_its_band(kind):
    f = make_forecaster(kind, step_seconds=STEP, horizon=12)
    t, y = daily(288 * 8)
    inside = total = 0
    errors = []
    for i in range(len(t) - 1):
        f.learn_one(t[i], y[i])
        if i > 288 * 3:
            e = f.expect(t[i + 1])
            assert e is not None
            assert e.lower <= e.value <= e.upper
            total += 1
            inside += e.lower <= y[i + 1] <= e.upper
            errors.append(abs(y[i + 1] - e.value))
    assert 0.85 <= inside / total <= 0.95
    assert np.mean(errors) < 1.5  # noise sigma is 1: close to the irreducible error


@pytest.mark.parametrize("kind", sorted(FORECASTERS))
def test_forecaster_ignores_nan_duplicates_and_late_samples(kind):
    f = make_forecaster(kind, step_seconds=STEP, horizon=3)
    t, y = daily(600)
    for i in range(500):
        f.learn_one(t[i], y[i])
    before = f.forecast(3)
    f.learn_one(t[499] + STEP, math.nan)
    f.learn_one(t[499], 1e9)  # duplicate timestamp, absurd value
    f.learn_one(t[10], -1e9)  # late
    after = f.forecast(3)
    np.testing.assert_array_equal(before.point, after.point)


@pytest.mark.parametrize("kind", sorted(FORECASTERS))
def test_forecaster_clone_is_untrained_and_pickle_keeps_predictions(kind):
    f = make_forecaster(kind, step_seconds=STEP, horizon=4)
    t, y = daily(400)
    for ti, yi in zip(t, y, strict=True):
        f.learn_one(ti, yi)
    twin = f.clone()
    assert twin.get_params() == f.get_params()
    assert np.isnan(twin.forecast(4).point).all()
    copy = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(copy.forecast(4).point, f.forecast(4).point)
    fc = f.forecast(4)
    assert len(fc.point) == 4
    assert (fc.lower <= fc.point).all()
    assert (fc.point <= fc.upper).all()


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_detector_scores_are_in_unit_interval_and_flag_a_spike(kind):
    d = make_detector(kind)
    rng = np.random.default_rng(1)
    scores = []
    for i in range(500):
        y = 10 + rng.normal()
        e = Expectation(10.0, 8.4, 11.6)
        s, reason = d.score_one(i, y, e)
        assert 0.0 <= s <= 1.0
        assert isinstance(reason, str)
        scores.append(s)
        d.learn_one(i, y, e)
    spike, reason = d.score_one(500, 30.0, Expectation(10.0, 8.4, 11.6))
    assert spike > 0.9 > max(scores[100:])
    assert "deviations" in reason
    assert d.score_one(501, math.nan, Expectation(10.0, 8.4, 11.6))[0] == 0.0
    assert d.score_one(501, 10.0, None)[0] == 0.0


def test_registry_names_known_kinds_on_error():
    with pytest.raises(UnknownModelKind, match="known: seasonal_holt"):
        make_forecaster("prophet")
    with pytest.raises(BadModelParams, match="forecaster 'seasonal_holt'"):
        make_forecaster("seasonal_holt", alpah=0.3)
