"""Conformance checks every model kind must pass, in the spirit of ``river.checks``.

Each check states one property in its docstring. ``forecaster_checks()`` and
``detector_checks()`` list them; the test suite runs every registered kind through
every check, so a new kind is tested with no new test code.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable

import numpy as np

from models.base import Detector, Expectation, Forecaster

STEP = 300.0
HORIZON = 6


def _series(n: int = 700, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * STEP
    return t, 50 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 1, n)


def _train(model: Forecaster, n: int = 700) -> Forecaster:
    t, y = _series(n)
    for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
        model.learn_one(ti, yi)
    return model


def _scores(detector: Detector, n: int = 400) -> list[float]:
    t, y = _series(n, seed=1)
    out = []
    for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
        expected = Expectation(yi + 0.5, yi - 2.0, yi + 3.0)
        score, _ = detector.score_one(ti, yi, expected)
        out.append(score)
        detector.learn_one(ti, yi, expected)
    return out


def check_clone_is_an_untrained_twin(model: Forecaster) -> None:
    """clone() keeps the hyper-parameters and forgets what was learnt."""
    _train(model)
    twin = model.clone()
    assert twin.get_params() == model.get_params()
    assert np.isnan(twin.forecast(HORIZON).point).all()


def check_rebuilt_from_params(model: Forecaster) -> None:
    """The constructor arguments are the hyper-parameters: type(m)(**m.get_params()) works."""
    rebuilt = type(model)(**model.get_params())
    assert rebuilt.get_params() == model.get_params()


def check_pickle_keeps_predictions(model: Forecaster) -> None:
    """A pickled and restored model forecasts exactly as the original."""
    _train(model)
    copy = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    np.testing.assert_array_equal(copy.forecast(HORIZON).point, model.forecast(HORIZON).point)


def check_forecast_length_equals_horizon(model: Forecaster) -> None:
    """forecast(h) returns h points, lower and upper edges, whatever h."""
    _train(model)
    for h in (1, HORIZON, 3 * HORIZON):
        fc = model.forecast(h)
        assert fc.point.shape == fc.lower.shape == fc.upper.shape == (h,)


def check_bands_are_ordered(model: Forecaster) -> None:
    """After warm-up the band is finite and lower <= point <= upper at every step ahead."""
    _train(model)
    fc = model.forecast(HORIZON)
    assert np.isfinite(fc.point).all()
    assert np.isfinite(fc.lower).all()
    assert np.isfinite(fc.upper).all()
    assert (fc.lower <= fc.point + 1e-9).all()
    assert (fc.point <= fc.upper + 1e-9).all()


def check_nan_gaps_duplicates_and_late_samples(model: Forecaster) -> None:
    """NaN is skipped; a gap is not an error; duplicate and late samples change nothing."""
    t, y = _series(500)
    for ti, yi in zip(t[:400].tolist(), y[:400].tolist(), strict=True):
        model.learn_one(ti, yi)
    model.learn_one(t[400], math.nan)
    before = model.forecast(HORIZON).point.copy()
    model.learn_one(t[399], 1e9)  # duplicate timestamp
    model.learn_one(t[10], -1e9)  # late
    np.testing.assert_array_equal(model.forecast(HORIZON).point, before)
    for ti, yi in zip(t[420:].tolist(), y[420:].tolist(), strict=True):  # after a gap of 20 steps
        model.learn_one(ti, yi)
    assert np.isfinite(model.forecast(HORIZON).point).all()


def check_deterministic(model: Forecaster) -> None:
    """Two fresh twins fed the same samples forecast the same."""
    a, b = _train(model.clone()), _train(model.clone())
    np.testing.assert_array_equal(a.forecast(HORIZON).point, b.forecast(HORIZON).point)


def check_detector_clone_is_an_untrained_twin(detector: Detector) -> None:
    """clone() keeps the hyper-parameters; the twin scores like a fresh model."""
    fresh = _scores(detector.clone())
    _scores(detector)
    twin = detector.clone()
    assert twin.get_params() == detector.get_params()
    assert _scores(twin) == fresh


def check_detector_pickle_keeps_scores(detector: Detector) -> None:
    """A pickled and restored detector scores exactly as the original."""
    _scores(detector)
    copy = pickle.loads(pickle.dumps(detector))  # noqa: S301 - our own bytes
    e = Expectation(50.0, 45.0, 55.0)
    assert copy.score_one(1e6, 80.0, e) == detector.score_one(1e6, 80.0, e)


def check_scores_are_finite_and_in_unit_interval(detector: Detector) -> None:
    """Scores are finite and in [0, 1], also for NaN, huge values and no expectation."""
    scores = _scores(detector)
    for y, e in ((math.nan, None), (1e300, Expectation(1.0, 0.0, 2.0)), (-1e300, None), (5.0, None)):
        s, reason = detector.score_one(1e7, y, e)
        scores.append(s)
        assert isinstance(reason, str)
        detector.learn_one(1e7, y, e)
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)


def check_detector_deterministic(detector: Detector) -> None:
    """Two fresh twins fed the same samples score the same."""
    assert _scores(detector.clone()) == _scores(detector.clone())


def forecaster_checks() -> list[Callable[[Forecaster], None]]:
    return [
        check_clone_is_an_untrained_twin,
        check_rebuilt_from_params,
        check_pickle_keeps_predictions,
        check_forecast_length_equals_horizon,
        check_bands_are_ordered,
        check_nan_gaps_duplicates_and_late_samples,
        check_deterministic,
    ]


def detector_checks() -> list[Callable[[Detector], None]]:
    return [
        check_detector_clone_is_an_untrained_twin,
        check_detector_pickle_keeps_scores,
        check_scores_are_finite_and_in_unit_interval,
        check_detector_deterministic,
    ]
