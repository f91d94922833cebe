"""What the kinds must be good at beyond the conformance checks (tests/unit/test_conformance.py).

Accuracy and calibration on a daily cycle, a spike flagged, clear errors for unknown kinds and params.
"""

import math

import numpy as np
import pytest

from models.base import Expectation
from models.kinds import BadModelParams, UnknownModelKind, forecaster_kinds, make_detector, make_forecaster

STEP = 300.0


def daily(n: int, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * STEP
    y = 50 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, noise, n)
    return t, y


@pytest.mark.parametrize("kind", forecaster_kinds())
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


@pytest.mark.parametrize("kind", ["residual_robust"])  # the quality of the others is measured on NAB
def test_detector_flags_a_spike(kind):
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
    with pytest.raises(
        UnknownModelKind, match="known: ar_rls, gbm_lags, holt_winters, seasonal_ar, seasonal_holt, snarimax"
    ):
        make_forecaster("prophet")
    with pytest.raises(BadModelParams, match="forecaster 'seasonal_holt'"):
        make_forecaster("seasonal_holt", alpah=0.3)


@pytest.mark.parametrize("flat", [2, 10, 60])
@pytest.mark.parametrize("kind", forecaster_kinds())
def test_a_series_that_starts_flat_gets_a_band_at_its_own_scale(kind, flat):
    """Memory in bytes: flat at 2.1e9 for a few samples, then moving by about 1e6 a step (issue 12: the first error
    was divided by a spread of 1.0 while the spread was still 0, and the band stayed near +-1e11 for good)."""
    f = make_forecaster(kind, step_seconds=STEP, horizon=12)
    rng = np.random.default_rng(3)
    y = np.full(600, 2.1e9)
    y[flat:] += np.cumsum(rng.normal(0, 1e6, 600 - flat))
    for i, value in enumerate(y.tolist()):
        f.learn_one(i * STEP, value)
    fc = f.forecast(12)
    assert np.isfinite(fc.lower).all()
    assert np.isfinite(fc.upper).all()
    assert (fc.upper - fc.lower).max() < 1e9  # about 1e6 a step: the 12-step band is 1e7 to 1e8 wide, not 1e13
    assert np.abs(fc.point - y[-1]).max() < 5e8
