"""A calm stream: a running pulse is never lowered, a raise smaller than min_change only extends it, and a move's
destination is held for the dwell time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.decisions.outcomes import Decision, Outcome
from intelligence.decisions.publication import Published, calm, direction
from intelligence.decisions.specs import EnvelopeSpec
from intelligence.vocabulary import ActionKind, Explanation, Lever, Recommendation, WorkloadRef

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
TARGET = WorkloadRef("fog-1", "city", "traffic-api")
ENVELOPE = EnvelopeSpec(min_change=1, reversal_minutes=30)
DWELL = timedelta(hours=4)


def floor(value: int, at: datetime = NOW, minutes: float = 10) -> Decision:
    explanation = Explanation("knative.predictive-min-scale", f"to {value}")
    rec = Recommendation(
        ActionKind.SCALE_UP,
        Lever.KNATIVE_FLOOR,
        TARGET,
        {"min_scale": value},
        at,
        0.9,
        explanation,
        valid_until=at + timedelta(minutes=minutes),
        in_force_at=at + timedelta(minutes=2),
    )
    return Decision(TARGET, Outcome.RECOMMEND, explanation, rec)


def move(destination: str) -> Decision:
    explanation = Explanation("reschedule.headroom", f"to {destination}")
    rec = Recommendation(
        ActionKind.REALLOCATION, Lever.PLACEMENT, TARGET, {"cluster": destination}, NOW, 0.9, explanation
    )
    return Decision(TARGET, Outcome.RECOMMEND, explanation, rec)


def pulse(value: int, minutes_ago: float, runs_for: float = 10) -> Published:
    at = NOW - timedelta(minutes=minutes_ago)
    return Published(value, +1, at, at, until=NOW + timedelta(minutes=runs_for))


def test_nothing_published_yet_the_same_value_or_a_pulse_that_has_ended_passes():
    assert calm(floor(2), None, ENVELOPE, DWELL, NOW) == floor(2)
    assert calm(floor(2), pulse(2, 1), ENVELOPE, DWELL, NOW) == floor(2)
    assert calm(floor(1), pulse(5, 30, runs_for=-1), ENVELOPE, DWELL, NOW) == floor(1)
    # a pulse ending now: a lower need starts a pulse of its own, a higher one continues it
    assert calm(floor(1), pulse(5, 30, runs_for=0), ENVELOPE, DWELL, NOW) == floor(1)
    wide = EnvelopeSpec(min_change=2, reversal_minutes=0)
    continued = calm(floor(6), pulse(5, 30, runs_for=0), wide, DWELL, NOW).recommendation
    assert continued is not None
    assert continued.params == {"min_scale": 5}  # +1 is below min_change: the pulse is only extended


def test_a_running_pulse_is_never_lowered_only_extended():
    out = calm(floor(1, minutes=20), pulse(3, 5), ENVELOPE, DWELL, NOW)
    rec = out.recommendation
    assert out.outcome is Outcome.RECOMMEND
    assert rec is not None
    assert rec.params == {"min_scale": 3}
    assert rec.valid_until == NOW + timedelta(minutes=20)  # the decision's end: the pulse runs on
    assert rec.in_force_at is None  # already in force
    assert "keep 3" in rec.explanation.rejected[-1]
    assert rec.explanation.inputs["published"] == 3
    assert rec.explanation.inputs["decided"] == 1


def test_a_raise_below_min_change_only_extends_the_pulse():
    wide = EnvelopeSpec(min_change=2, reversal_minutes=0)
    small = calm(floor(3), pulse(2, 5), wide, DWELL, NOW).recommendation
    assert small is not None
    assert small.params == {"min_scale": 2}
    assert calm(floor(4), pulse(2, 5), wide, DWELL, NOW) == floor(4)


def test_a_moves_destination_is_held_for_the_dwell_time():
    at = NOW - timedelta(minutes=30)
    held = calm(move("cloud-1"), Published("fog-2", 0, at, at), ENVELOPE, DWELL, NOW)
    assert (held.outcome, held.lever, held.recommendation) == (Outcome.HOLD, Lever.PLACEMENT, None)
    assert "fog-2" in held.explanation.summary
    long_ago = NOW - timedelta(minutes=241)
    assert calm(move("cloud-1"), Published("fog-2", 0, long_ago, long_ago), ENVELOPE, DWELL, NOW) == move("cloud-1")


@settings(max_examples=200, deadline=None)
@given(
    decided=st.lists(
        st.tuples(st.integers(min_value=0, max_value=6), st.integers(min_value=5, max_value=30)), max_size=120
    )
)
def test_the_published_floor_never_goes_down_while_a_pulse_runs(decided):
    """Whatever the decider says every 5 minutes, what is published within a running pulse never decreases and
    every change is at least min_change: the stream has no reversals."""
    state: Published | None = None
    for i, (value, minutes) in enumerate(decided):
        now = NOW + timedelta(minutes=5 * i)
        out = calm(floor(value, now, minutes), state, ENVELOPE, DWELL, now)
        rec = out.recommendation
        assert rec is not None
        new = int(rec.value)
        if state is not None and state.running(now):
            assert new >= int(state.value)
            assert new == state.value or new - int(state.value) >= ENVELOPE.min_change
            until = max(state.until or now, rec.valid_until or now)
        else:
            until = rec.valid_until
        changed = state is None or new != state.value
        state = Published(
            new, direction(state.value if state else None, new), now if changed else state.changed_at, now, until
        )
