"""A calm stream: what is published changes only by at least min_change, never back within the reversal window,
and a move's destination is held for the dwell time."""

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


def floor(value: int) -> Decision:
    explanation = Explanation("knative.predictive-min-scale", f"to {value}")
    rec = Recommendation(ActionKind.SCALE_UP, Lever.KNATIVE_FLOOR, TARGET, {"min_scale": value}, NOW, 0.9, explanation)
    return Decision(TARGET, Outcome.RECOMMEND, explanation, rec)


def move(destination: str) -> Decision:
    explanation = Explanation("reschedule.headroom", f"to {destination}")
    rec = Recommendation(
        ActionKind.REALLOCATION, Lever.PLACEMENT, TARGET, {"cluster": destination}, NOW, 0.9, explanation
    )
    return Decision(TARGET, Outcome.RECOMMEND, explanation, rec)


def published(value: int | str, direction: int, minutes_ago: float) -> Published:
    at = NOW - timedelta(minutes=minutes_ago)
    return Published(value, direction, at, at)


def test_nothing_published_yet_or_the_same_value_passes():
    assert calm(floor(2), None, ENVELOPE, DWELL, NOW) == floor(2)
    assert calm(floor(2), published(2, 1, 1), ENVELOPE, DWELL, NOW) == floor(2)


def test_a_reversal_within_the_window_is_held_on_the_published_value():
    held = calm(floor(1), published(2, +1, 10), ENVELOPE, DWELL, NOW)
    assert (held.outcome, held.recommendation, held.lever) == (Outcome.HOLD, None, Lever.KNATIVE_FLOOR)
    assert "would reverse" in held.explanation.summary
    assert held.explanation.inputs["published"] == 2
    assert held.explanation.inputs["decided"] == 1
    assert calm(floor(1), published(2, +1, 31), ENVELOPE, DWELL, NOW) == floor(1)  # after the window it may turn
    assert calm(floor(3), published(2, +1, 1), ENVELOPE, DWELL, NOW) == floor(3)  # further the same way: at once
    assert calm(floor(3), published(2, -1, 10), ENVELOPE, DWELL, NOW).outcome is Outcome.HOLD  # up after down too


def test_a_change_below_min_change_is_held():
    wide = EnvelopeSpec(min_change=2, reversal_minutes=0)
    assert calm(floor(3), published(2, 0, 60), wide, DWELL, NOW).outcome is Outcome.HOLD
    assert calm(floor(4), published(2, 0, 60), wide, DWELL, NOW) == floor(4)


def test_a_moves_destination_is_held_for_the_dwell_time():
    held = calm(move("cloud-1"), published("fog-2", 0, 30), ENVELOPE, DWELL, NOW)
    assert (held.outcome, held.lever) == (Outcome.HOLD, Lever.PLACEMENT)
    assert "fog-2" in held.explanation.summary
    assert calm(move("cloud-1"), published("fog-2", 0, 241), ENVELOPE, DWELL, NOW) == move("cloud-1")


@settings(max_examples=200, deadline=None)
@given(decided=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=120))
def test_the_published_sequence_never_turns_back_within_the_window(decided):
    """Whatever the decider says every 5 minutes, the published value never reverses within 30 minutes and
    every change is at least min_change."""
    state: Published | None = None
    for i, value in enumerate(decided):
        now = NOW + timedelta(minutes=5 * i)
        out = calm(floor(value), state, ENVELOPE, DWELL, now)
        if out.recommendation is None:
            continue
        new = int(out.recommendation.value)
        if state is None or new != state.value:
            turn = direction(state.value if state else None, new)
            if state is not None:
                assert abs(new - int(state.value)) >= ENVELOPE.min_change
                if state.direction == -turn:
                    assert now - state.changed_at >= timedelta(minutes=ENVELOPE.reversal_minutes)
            state = Published(new, turn, now, now)
