"""Conformance checks every model kind must pass, in the spirit of ``river.checks``.

Each check states one property in its docstring. ``forecaster_checks()`` and
``detector_checks()`` list those of the per-series protocol, ``vectorised_forecaster_checks()``
and ``vectorised_detector_checks()`` those of kinds that hold many series in slots
(:mod:`models.slots`). The test suite runs every registered kind through every check that
applies to it, in each configuration of :func:`unit_test_params`, so a new kind is tested
with no new test code.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from models.base import Detector, Expectation, Forecaster
from models.slots import SLOT0

STEP = 300.0
HORIZON = 6
SERIES = 3  # series in a batch of the vectorised checks


def unit_test_params(kind: type) -> list[dict[str, Any]]:
    """The configurations the checks run ``kind`` in: what its ``_unit_test_params()`` yields, else its defaults.

    As river's estimators do, a kind declares configurations where its defaults would leave
    some of its code unexercised by the checks (short warm-ups, a ring longer than one, ...).
    """
    declared: Callable[[], Any] | None = getattr(kind, "_unit_test_params", None)
    return list(declared()) if declared is not None else [{}]


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


SCALE_RTOL = 1e-5  # of the largest |value| of the scaled series: float32 state, and the band's tracked quantiles


def check_forecasts_scale_with_the_series(model: Forecaster) -> None:
    """The same series times 10^k (k from -3 to 12) gives forecasts, bands and expectations times 10^k.

    To a tolerance of ``SCALE_RTOL`` times the largest |value| of the scaled series, so
    that a model which works in units of each series' own spread passes whatever the
    unit (bytes, cores, requests); hypothesis draws k and the series (derandomised).
    """
    from hypothesis import example, given, settings  # a test dependency: imported when a check runs
    from hypothesis import strategies as st

    @settings(max_examples=6, derandomize=True, deadline=None, database=None)
    @example(k=-3, seed=0, offset=50.0)
    @example(k=12, seed=1, offset=0.0)
    @given(k=st.integers(-3, 12), seed=st.integers(0, 3), offset=st.sampled_from([0.0, 50.0]))
    def scaled(k: int, seed: int, offset: float) -> None:
        t, y = _series(400, seed)
        y = y - 50.0 + offset  # around 0 too: signs and clipping must scale as well
        base, big = model.clone(), model.clone()
        for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
            base.learn_one(ti, yi)
            big.learn_one(ti, yi * 10.0**k)
        tolerance = SCALE_RTOL * float(np.abs(y).max()) * 10.0**k
        a, b = base.forecast(3 * HORIZON), big.forecast(3 * HORIZON)
        for small, large in ((a.point, b.point), (a.lower, b.lower), (a.upper, b.upper)):
            np.testing.assert_array_equal(np.isnan(small), np.isnan(large))
            np.testing.assert_allclose(large, small * 10.0**k, rtol=0.0, atol=tolerance, equal_nan=True)
        ea, eb = base.expect(t[-1] + STEP), big.expect(t[-1] + STEP)
        assert (ea is None) == (eb is None)
        if ea is not None and eb is not None:
            np.testing.assert_allclose(
                [eb.value, eb.lower, eb.upper], np.array([ea.value, ea.lower, ea.upper]) * 10.0**k, atol=tolerance
            )

    scaled()


def check_non_negative_clips_at_zero(model: Forecaster) -> None:
    """With ``non_negative=True``, points, band edges and expectations are never below 0 (NaN: cannot tell)."""
    clipped = model.clone(non_negative=True)
    t, y = _series(500)
    y = np.maximum(y - 55.0, 0.0)  # a signal at 0 half of the time: unclipped forecasts dip below it
    for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
        clipped.learn_one(ti, yi)
        e = clipped.expect(ti + STEP)
        if e is not None:
            assert all(not v < 0.0 for v in (e.value, e.lower, e.upper))
    fc = clipped.forecast(3 * HORIZON)
    for edge in (fc.point, fc.lower, fc.upper):
        assert not (edge < 0.0).any()
    assert np.isfinite(fc.point).all()


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


# -- vectorised kinds: many series in slots ---------------------------------------------------
Round = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # slots, t, y, a forecaster's expected y
Step = Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]  # one round: what was said
End = Callable[[Any, np.ndarray], list[np.ndarray]]  # what the slots say after the last round


def _rounds(n: int = 600, seed: int = 3) -> list[Round]:
    """Rounds of ``SERIES`` series at different levels, one sample of each series per round, as a fleet feeds them.

    Some series miss some rounds, some values are NaN, half the rounds list their slots out
    of order, the series are sampled a few seconds apart, and the noise quadruples halfway
    (a drift).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)[None, :] * STEP + 7.0 * np.arange(SERIES)[:, None]
    noise = np.where(np.arange(n) < n // 2, 1.0, 4.0)
    levels = 20.0 * (1 + np.arange(SERIES))[:, None]
    clean = levels * (1 + 0.4 * np.sin(2 * np.pi * t / 86_400))
    y = clean + rng.normal(0, 1, (SERIES, n)) * noise
    rounds = []
    for r in range(n):
        slots = np.flatnonzero(rng.random(SERIES) > 0.1)
        if slots.size == 0:
            continue
        if r % 2:
            slots = rng.permutation(slots)
        values = y[slots, r]
        values[rng.random(slots.size) < 0.02] = math.nan
        expected = clean[slots, r].copy()  # as a good forecaster would: the residuals are the noise
        expected[rng.random(slots.size) < 0.05] = math.nan  # no expectation
        rounds.append((slots, t[slots, r], values, expected))
    return rounds


def _forecaster_round(model: Any, slots: np.ndarray, t: np.ndarray, y: np.ndarray, _: np.ndarray) -> list[np.ndarray]:
    """Expect, then learn, one round; returns the expectations (point, lower, upper)."""
    said = list(model.expect_many(slots, t))
    model.learn_many(slots, t, y)
    return said


def _forecaster_end(model: Any, slots: np.ndarray) -> list[np.ndarray]:
    """Forecasts beyond the tracked horizon too, and the surges when the kind has them (the fleet reads both)."""
    said = list(model.forecast_many(slots, 2 * HORIZON))
    surge_many = getattr(model, "surge_many", None)  # optional, as in models.fleet
    return said if surge_many is None else [*said, surge_many(slots, HORIZON)]


def _detector_round(model: Any, slots: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray) -> list[np.ndarray]:
    """Score, explain, then learn, one round; returns the scores and the explanations."""
    scores = model.score_many(slots, t, y, e)
    why = [model.explain(*row) for row in zip(slots.tolist(), t.tolist(), y.tolist(), e.tolist(), strict=True)]
    model.learn_many(slots, t, y, e)
    return [scores, np.array(why)]


def _detector_end(model: Any, slots: np.ndarray) -> list[np.ndarray]:
    """Scores of a probe sample (a spike) after everything: they depend on all the state learnt."""
    t = np.full(slots.size, 1e9)
    return [model.score_many(slots, t, np.full(slots.size, 500.0), np.full(slots.size, 50.0))]


def _together(model: Any, rounds: list[Round], step: Step, end: End) -> list[np.ndarray]:
    """What a model says along ``rounds`` with every series in its own slot of the same arrays."""
    model.ensure(SERIES)
    said = [part for r in rounds for part in step(model, *r)]
    return [*said, *end(model, np.arange(SERIES))]


def _one_by_one(model: Any, rounds: list[Round], step: Step, end: End) -> list[np.ndarray]:
    """The same, with each series in a model of its own (in slot 0), the answers put back in the rounds' order."""
    alone = [model.clone() for _ in range(SERIES)]
    for m in alone:
        m.ensure(1)
    said = []
    for slots, t, y, e in rounds:
        parts = [step(alone[s], SLOT0, t[j : j + 1], y[j : j + 1], e[j : j + 1]) for j, s in enumerate(slots.tolist())]
        said += [np.concatenate(answers) for answers in zip(*parts, strict=True)]
    ends = [end(m, SLOT0) for m in alone]
    return [*said, *(np.concatenate(answers) for answers in zip(*ends, strict=True))]


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y, strict=True)  # NaN equals NaN; shapes and dtypes must match


def _reset_slot_is_untrained(model: Any, step: Step, end: End) -> None:
    rounds = _rounds()
    trained, fresh = model.clone(), model.clone()
    _together(trained, rounds, step, end)
    fresh.ensure(1)
    others = np.array([0, 2])
    before = end(trained, others)
    trained.reset(np.array([1]))
    _assert_same(end(trained, np.array([1])), end(fresh, SLOT0))  # untrained: says what a fresh model says
    _assert_same(end(trained, others), before)  # reset touches only the slots it is given
    for slots, t, y, e in rounds:  # a new series in the reused slot learns as in a fresh model
        if (here := slots == 1).any():
            newcomer = (t[here], y[here], e[here])
            _assert_same(step(trained, slots[here], *newcomer), step(fresh, SLOT0, *newcomer))
    _assert_same(end(trained, np.array([1])), end(fresh, SLOT0))
    _assert_same(end(trained, others), before)  # and the others did not learn from it


def _moved_slot_continues(model: Any, step: Step, end: End) -> None:
    rounds = _rounds()
    half = len(rounds) // 2
    here, there = model.clone(), model.clone()
    here.ensure(SERIES)
    for r in rounds[:half]:
        step(here, *r)
    there.ensure(2)
    moved, into = np.array([2]), np.array([1])  # series 2 moves into slot 1 of another model of the same kind
    there.transplant(here, into, moved)
    _assert_same(end(there, into), end(here, moved))
    for slots, t, y, e in rounds[half:]:
        if (mine := slots == 2).any():
            sample = (t[mine], y[mine], e[mine])
            _assert_same(step(there, into, *sample), step(here, moved, *sample))
    _assert_same(end(there, into), end(here, moved))


def check_batch_equals_one_by_one(model: Any) -> None:
    """Series learnt together in one set of arrays expect and forecast exactly as each learnt alone."""
    rounds = _rounds()
    _assert_same(
        _together(model.clone(), rounds, _forecaster_round, _forecaster_end),
        _one_by_one(model, rounds, _forecaster_round, _forecaster_end),
    )


def check_batch_deterministic(model: Any) -> None:
    """Two fresh twins fed the same rounds of many series say exactly the same."""
    rounds = _rounds()
    _assert_same(
        _together(model.clone(), rounds, _forecaster_round, _forecaster_end),
        _together(model.clone(), rounds, _forecaster_round, _forecaster_end),
    )


def check_reset_slot_is_untrained(model: Any) -> None:
    """A reset slot (a dropped series) forecasts as a fresh model (nothing), and a new series in it learns as there."""
    _reset_slot_is_untrained(model, _forecaster_round, _forecaster_end)


def check_moved_slot_continues(model: Any) -> None:
    """A series transplanted into another model of the same kind (another replica's) forecasts as if it stayed."""
    _moved_slot_continues(model, _forecaster_round, _forecaster_end)


def check_detector_batch_equals_one_by_one(detector: Any) -> None:
    """Series scored and learnt together in one set of arrays score and explain exactly as each alone."""
    rounds = _rounds()
    _assert_same(
        _together(detector.clone(), rounds, _detector_round, _detector_end),
        _one_by_one(detector, rounds, _detector_round, _detector_end),
    )


def check_detector_batch_deterministic(detector: Any) -> None:
    """Two fresh twins fed the same rounds of many series score and explain exactly the same."""
    rounds = _rounds()
    _assert_same(
        _together(detector.clone(), rounds, _detector_round, _detector_end),
        _together(detector.clone(), rounds, _detector_round, _detector_end),
    )


def check_detector_reset_slot_is_untrained(detector: Any) -> None:
    """A reset slot (a dropped series) scores as a fresh detector, and a new series in it learns as there."""
    _reset_slot_is_untrained(detector, _detector_round, _detector_end)


def check_detector_moved_slot_continues(detector: Any) -> None:
    """A series transplanted into another detector of the same kind scores and explains as if it stayed."""
    _moved_slot_continues(detector, _detector_round, _detector_end)


def forecaster_checks() -> list[Callable[[Forecaster], None]]:
    return [
        check_clone_is_an_untrained_twin,
        check_rebuilt_from_params,
        check_pickle_keeps_predictions,
        check_forecast_length_equals_horizon,
        check_bands_are_ordered,
        check_nan_gaps_duplicates_and_late_samples,
        check_deterministic,
        check_forecasts_scale_with_the_series,
        check_non_negative_clips_at_zero,
    ]


def detector_checks() -> list[Callable[[Detector], None]]:
    return [
        check_detector_clone_is_an_untrained_twin,
        check_detector_pickle_keeps_scores,
        check_scores_are_finite_and_in_unit_interval,
        check_detector_deterministic,
    ]


def vectorised_forecaster_checks() -> list[Callable[[Any], None]]:
    return [
        check_batch_equals_one_by_one,
        check_batch_deterministic,
        check_reset_slot_is_untrained,
        check_moved_slot_continues,
    ]


def vectorised_detector_checks() -> list[Callable[[Any], None]]:
    return [
        check_detector_batch_equals_one_by_one,
        check_detector_batch_deterministic,
        check_detector_reset_slot_is_untrained,
        check_detector_moved_slot_continues,
    ]
