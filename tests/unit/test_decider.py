"""The predictive Knative floor: a pulse of min-scale just in time for a forecast peak the autoscaler would miss."""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.decisions.knative_floor import decide_knative_floor
from intelligence.decisions.outcomes import Outcome
from intelligence.decisions.planner import DecisionInputs, plan
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.publication import Published
from intelligence.decisions.specs import KnativeFloorSpec, PolicySpec
from intelligence.vocabulary import ActionKind, Forecast, SeriesKey

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
TTL = timedelta(hours=1)
KEY = SeriesKey.of("cloud-1", "requests", {"namespace": "shop", "workload": "frontend"})
TARGET = KEY.workload
POLICY = KnativeFloorSpec(target_per_replica=10, min_scale=1, max_scale=20, max_step_up=5, max_relative_band=1.5)


def forecast(points: list[float], width: float = 2.0, step: float = 300.0, last: float | None = 18.0) -> Forecast:
    return Forecast(
        KEY,
        NOW.timestamp(),
        step,
        tuple(points),
        {0.05: tuple(p - width for p in points), 0.95: tuple(p + width for p in points)},
        last=last,
    )


def running(value: int, minutes: float) -> Published:
    since = NOW - timedelta(minutes=5)
    return Published(value, +1, since, since, NOW + timedelta(minutes=minutes))


def test_a_pulse_is_raised_just_in_time_for_a_peak_the_autoscaler_would_miss():
    # 5-minute steps, 30 s cold start: a floor decided now covers the next two steps (the
    # peak four steps ahead is for a later decision); the autoscaler holds 2 pods for 18/s
    d = decide_knative_floor(forecast([18, 58, 30, 90]), TARGET, None, POLICY, NOW)
    assert d.outcome is Outcome.RECOMMEND
    rec = d.recommendation
    assert rec is not None
    assert (rec.kind, rec.params) == (ActionKind.SCALE_UP, {"min_scale": 6})  # ceil((58 + 2) / 10)
    # in force a cold start before the step that needs it (it starts at +5 min), until that step ends
    assert rec.in_force_at == NOW + timedelta(minutes=5) - timedelta(seconds=30)
    assert rec.valid_until == NOW + timedelta(minutes=10)
    assert rec.explanation.inputs["peak_at"] == (NOW + timedelta(minutes=10)).isoformat()
    assert rec.explanation.inputs["steps_considered"] == 2
    assert rec.explanation.inputs["autoscaler_holds"] == 2
    assert "min-scale 6" in rec.explanation.summary
    assert "the autoscaler holds 2" in rec.explanation.summary
    assert 0.0 <= rec.confidence <= 1.0


def test_a_peak_the_autoscaler_already_holds_pods_for_is_left_to_it():
    d = decide_knative_floor(forecast([58, 50], last=60), TARGET, None, POLICY, NOW)
    assert (d.outcome, d.recommendation) == (Outcome.HOLD, None)
    assert "the autoscaler holds 6 pod(s)" in d.explanation.summary


def test_provisions_for_the_surge_when_the_model_gives_one():
    fc = forecast([20, 30], last=10)
    surged = replace(fc, surge=(45.0, 71.0))
    d = decide_knative_floor(surged, TARGET, None, POLICY, NOW)
    assert d.recommendation is not None
    assert d.recommendation.params == {"min_scale": 6}  # 1 held + max_step_up (8 wanted for the surge 71)
    assert d.explanation.inputs["provision_for"] == "surge"
    assert any("bounded by max_scale 20 and +5" in r for r in d.explanation.rejected)
    d = decide_knative_floor(surged, TARGET, None, replace(POLICY, provision_for="quantile"), NOW)
    assert d.recommendation is not None
    assert d.recommendation.params == {"min_scale": 4}  # ceil((30 + 2) / 10)


def test_a_running_pulse_is_extended_or_raised_never_lowered():
    small = decide_knative_floor(forecast([18, 38]), TARGET, running(8, 3), POLICY, NOW)
    rec = small.recommendation
    assert rec is not None
    assert rec.params == {"min_scale": 8}  # 4 would do; the pulse of 8 is kept
    assert rec.valid_until == NOW + timedelta(minutes=10)  # and extended to the new need's end
    assert rec.in_force_at is None  # already in force
    bigger = decide_knative_floor(forecast([18, 98]), TARGET, running(3, 30), POLICY, NOW)
    assert bigger.recommendation is not None
    assert bigger.recommendation.params == {"min_scale": 7}  # 2 held + 5
    assert bigger.recommendation.valid_until == NOW + timedelta(minutes=30)  # the longer of the two
    quiet = decide_knative_floor(forecast([5.0, 5.0]), TARGET, running(8, 3), POLICY, NOW)
    assert quiet.outcome is Outcome.HOLD
    assert "the pulse of 8 runs until" in quiet.explanation.summary


def test_not_enough_data_and_too_uncertain_are_normal_outcomes():
    assert decide_knative_floor(None, TARGET, None, POLICY, NOW).outcome is Outcome.INSUFFICIENT_DATA
    no_band = Forecast(KEY, NOW.timestamp(), 300.0, (10.0,))
    assert decide_knative_floor(no_band, TARGET, None, POLICY, NOW).outcome is Outcome.INSUFFICIENT_DATA
    wide = forecast([10.0], width=100.0)
    assert decide_knative_floor(wide, TARGET, None, POLICY, NOW).outcome is Outcome.TOO_UNCERTAIN
    # a pulse running when the forecast turns too uncertain is not lowered: it runs out
    assert decide_knative_floor(wide, TARGET, running(6, 3), POLICY, NOW).recommendation is None
    short = forecast([10.0], step=10.0)  # 10 s horizon < 30 s cold start
    assert decide_knative_floor(short, TARGET, None, POLICY, NOW).outcome is Outcome.INSUFFICIENT_DATA
    nan = forecast([float("nan"), 10.0])
    assert decide_knative_floor(nan, TARGET, None, POLICY, NOW).outcome is Outcome.INSUFFICIENT_DATA


def test_only_the_policy_signal_is_decided_on():
    cpu = Forecast(SeriesKey.of("cloud-1", "cpu", {"namespace": "shop", "workload": "frontend"}), 0.0, 60.0, (1.0,))
    book = PolicyBook(PolicySpec(knative=POLICY))
    assert plan(DecisionInputs(scaling=[cpu], load=[]), book, NOW, TTL).decisions == []


floats = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(floats, min_size=1, max_size=24),
    width=st.floats(min_value=0.0, max_value=50.0),
    last=st.one_of(st.none(), floats),
    pulse=st.one_of(st.none(), st.tuples(st.integers(min_value=0, max_value=30), st.integers(-10, 60))),
)
def test_pulses_stay_within_bounds_never_go_down_and_are_deterministic(points, width, last, pulse):
    published = None if pulse is None else running(pulse[0], pulse[1])
    fc = forecast(points, width, last=last)
    first = decide_knative_floor(fc, TARGET, published, POLICY, NOW)
    assert first == decide_knative_floor(fc, TARGET, published, POLICY, NOW)
    rec = first.recommendation
    if rec is None:
        return
    value = rec.params["min_scale"]
    assert rec.valid_until is not None
    assert rec.valid_until > NOW
    assert rec.in_force_at is None or NOW < rec.in_force_at < rec.valid_until
    active = published if published is not None and published.running(NOW) else None
    if active is not None:
        assert value >= int(active.value)
        assert rec.valid_until >= (active.until or NOW)
    else:
        # the autoscaler holds at most the pods for the load now, at least min_scale, until the peak
        held_now = max(POLICY.min_scale, math.ceil((last or 0.0) / 10 - 1e-9))
        assert POLICY.min_scale < value <= POLICY.max_scale
        assert value <= held_now + POLICY.max_step_up


def test_a_pulse_ending_now_is_continued_by_a_need_at_least_as_high_not_by_a_lower_one():
    ending = Published(5, +1, NOW - timedelta(minutes=10), NOW - timedelta(minutes=10), NOW)
    higher = decide_knative_floor(forecast([18, 58]), TARGET, ending, POLICY, NOW).recommendation
    assert higher is not None
    assert higher.params == {"min_scale": 6}
    assert higher.in_force_at == NOW + timedelta(minutes=5) - timedelta(seconds=30)  # 5 held until the 6 is due
    lower = decide_knative_floor(forecast([18, 38]), TARGET, ending, POLICY, NOW).recommendation
    assert lower is not None
    assert lower.params == {"min_scale": 4}  # the old pulse is over: nothing is held higher than needed
    assert lower.in_force_at == NOW + timedelta(minutes=5) - timedelta(seconds=30)
