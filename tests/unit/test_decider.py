from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.decisions.knative_floor import decide_knative_floor
from intelligence.decisions.outcomes import FloorState, Outcome
from intelligence.decisions.planner import DecisionInputs, plan
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.specs import KnativeFloorSpec, PolicySpec
from intelligence.vocabulary import ActionKind, Forecast, SeriesKey

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
TTL = timedelta(hours=1)
KEY = SeriesKey.of("cloud-1", "requests", {"namespace": "shop", "workload": "frontend"})
TARGET = KEY.workload
POLICY = KnativeFloorSpec(
    target_per_replica=10,
    min_scale=1,
    max_scale=20,
    max_step_up=5,
    scale_down_per_hour=2,  # slower than the defaults, so that pacing is visible
    scale_down_delay_minutes=60,
    max_relative_band=1.5,
)


def forecast(points: list[float], width: float = 2.0, step: float = 300.0) -> Forecast:
    return Forecast(
        KEY,
        NOW.timestamp(),
        step,
        tuple(points),
        {0.05: tuple(p - width for p in points), 0.95: tuple(p + width for p in points)},
    )


def test_raises_the_floor_before_a_forecast_rise_with_an_explanation():
    # 5-minute steps, 30 s cold start: a floor set now must cover the next two steps; the
    # peak four steps ahead is for a later decision (the autoscaler covers it once started)
    d = decide_knative_floor(forecast([20, 58, 30, 90]), TARGET, FloorState(2), POLICY, NOW, TTL)
    assert d.outcome is Outcome.RECOMMEND
    rec = d.recommendation
    assert rec is not None
    assert rec.kind is ActionKind.SCALE_UP
    assert rec.params == {"min_scale": 6}  # ceil((58 + 2) / 10)
    assert rec.valid_until == NOW + TTL
    assert rec.explanation.inputs["peak_at"] == (NOW + timedelta(minutes=10)).isoformat()
    assert rec.explanation.inputs["steps_considered"] == 2
    assert "from 2 to 6" in rec.explanation.summary
    assert 0.0 <= rec.confidence <= 1.0


def test_provisions_for_the_surge_when_the_model_gives_one():
    fc = forecast([20, 30])
    surged = Forecast(fc.key, fc.origin, fc.step_seconds, fc.point, fc.quantiles, surge=(45.0, 71.0))
    d = decide_knative_floor(surged, TARGET, FloorState(1), POLICY, NOW, TTL)
    assert d.recommendation is not None
    assert d.recommendation.params == {"min_scale": 6}  # 1 + max_step_up (8 wanted for the surge 71)
    assert d.explanation.inputs["provision_for"] == "surge"
    by_quantile = replace(POLICY, provision_for="quantile")
    d = decide_knative_floor(surged, TARGET, FloorState(1), by_quantile, NOW, TTL)
    assert d.recommendation is not None
    assert d.recommendation.params == {"min_scale": 4}  # ceil((30 + 2) / 10)


def test_step_limit_and_bounds_are_reported_as_rejected_alternatives():
    d = decide_knative_floor(forecast([500.0]), TARGET, FloorState(1), POLICY, NOW, TTL)
    assert d.recommendation is not None
    assert d.recommendation.params == {"min_scale": 6}  # 1 + max_step_up
    assert any("outside bounds" in r for r in d.explanation.rejected)
    assert any("step limit" in r for r in d.explanation.rejected)


def test_not_enough_data_and_too_uncertain_are_normal_outcomes():
    assert decide_knative_floor(None, TARGET, FloorState(1), POLICY, NOW, TTL).outcome is Outcome.INSUFFICIENT_DATA
    no_band = Forecast(KEY, NOW.timestamp(), 300.0, (10.0,))
    assert decide_knative_floor(no_band, TARGET, FloorState(1), POLICY, NOW, TTL).outcome is Outcome.INSUFFICIENT_DATA
    wide = forecast([10.0], width=100.0)
    assert decide_knative_floor(wide, TARGET, FloorState(1), POLICY, NOW, TTL).outcome is Outcome.TOO_UNCERTAIN
    lowered = decide_knative_floor(wide, TARGET, FloorState(6, NOW - timedelta(hours=3)), POLICY, NOW, TTL)
    assert lowered.recommendation is not None  # a floor held up by a forecast too uncertain to trust goes down
    assert lowered.recommendation.params == {"min_scale": 1}
    assert "back to the reactive autoscaler" in lowered.explanation.rejected[0]
    short = forecast([10.0], step=10.0)  # 10 s horizon < 30 s cold start
    assert decide_knative_floor(short, TARGET, FloorState(1), POLICY, NOW, TTL).outcome is Outcome.INSUFFICIENT_DATA


def test_predict_up_react_down():
    low = forecast([5.0, 5.0])
    recent = FloorState(8, NOW - timedelta(minutes=30))
    assert decide_knative_floor(low, TARGET, recent, POLICY, NOW, TTL).outcome is Outcome.HOLD
    later = FloorState(8, NOW - timedelta(minutes=90))  # 1.5 h at 2/h: at most 3 down
    d = decide_knative_floor(low, TARGET, later, POLICY, NOW, TTL)
    assert d.recommendation is not None
    assert d.recommendation.kind is ActionKind.SCALE_DOWN
    assert d.recommendation.params == {"min_scale": 5}


def test_only_the_policy_signal_is_decided_on():
    cpu = Forecast(SeriesKey.of("cloud-1", "cpu", {"namespace": "shop", "workload": "frontend"}), 0.0, 60.0, (1.0,))
    book = PolicyBook(PolicySpec(knative=POLICY))
    assert plan(DecisionInputs(scaling=[cpu], load=[]), book, NOW, TTL).decisions == []


floats = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(floats, min_size=1, max_size=24),
    width=st.floats(min_value=0.0, max_value=50.0),
    current=st.integers(min_value=0, max_value=30),
    minutes_since=st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),
)
def test_decisions_stay_within_bounds_and_step_limits_and_are_deterministic(points, width, current, minutes_since):
    changed = None if minutes_since is None else NOW - timedelta(minutes=minutes_since)
    floor = FloorState(current, changed)
    fc = forecast(points, width)
    first = decide_knative_floor(fc, TARGET, floor, POLICY, NOW, TTL)
    assert first == decide_knative_floor(fc, TARGET, floor, POLICY, NOW, TTL)
    if first.recommendation is None:
        return
    proposal = first.recommendation.params["min_scale"]
    assert proposal != current
    if proposal > current:
        assert proposal <= max(POLICY.max_scale, current)
        assert proposal - current <= POLICY.max_step_up
    else:
        assert proposal >= POLICY.min_scale
        assert changed is None or (NOW - changed) >= timedelta(minutes=POLICY.scale_down_delay_minutes)


@settings(max_examples=100, deadline=None)
@given(peak=floats)
def test_no_flapping_a_raised_floor_is_not_lowered_within_the_delay(peak):
    fc = forecast([peak, peak / 2])
    d = decide_knative_floor(fc, TARGET, FloorState(1), POLICY, NOW, TTL)
    if d.recommendation is None:
        return
    floor = FloorState(d.recommendation.params["min_scale"], NOW)
    for minutes in range(0, int(POLICY.scale_down_delay_minutes), 5):
        later = NOW + timedelta(minutes=minutes)
        again = decide_knative_floor(forecast([0.0]), TARGET, floor, POLICY, later, TTL)
        assert again.recommendation is None
