"""The continuum simulator: throttling arithmetic, moves that take time and cost twice, move-backs (and properties)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.evaluation.continuum import Continuum

STEP = 300.0
DWELL = 3600.0


def continuum(capacity, placement, delay=60.0):
    return Continuum(np.array(capacity, dtype=float), np.array(placement), delay, DWELL)


def test_demand_above_capacity_is_throttled_in_proportion_to_each_workloads_demand():
    sim = continuum([4.0, 10.0], [0, 0, 1])
    mean = sim.advance(0.0, STEP, np.array([1.0, 3.0, 2.0]), counting=True)
    assert mean.tolist() == [4.0, 2.0]  # exactly at capacity: no throttling yet
    assert sim.bill.throttled_by_cluster.sum() == 0.0
    assert sim.bill.saturated_seconds.tolist() == [0.0, 0.0]
    mean = sim.advance(STEP, 2 * STEP, np.array([2.0, 4.0, 2.0]), counting=True)
    assert mean.tolist() == [6.0, 2.0]
    # 6 cores wanted of 4: 2 cores throttled for 300 s, a third of it for the 2-core workload, two thirds for the 4
    assert sim.bill.throttled_by_cluster.tolist() == pytest.approx([600.0, 0.0])
    assert sim.bill.throttled_by_workload.tolist() == pytest.approx([200.0, 400.0, 0.0])
    assert sim.bill.saturated_seconds.tolist() == [STEP, 0.0]
    assert sim.bill.demand_core_seconds == pytest.approx(6.0 * STEP + 8.0 * STEP)


def test_nothing_is_counted_outside_the_reported_span_and_missing_demand_is_none():
    sim = continuum([1.0], [0, 0])
    sim.advance(0.0, STEP, np.array([5.0, 5.0]), counting=False)
    assert sim.bill.throttled_by_cluster.sum() == 0.0
    assert sim.bill.demand_core_seconds == 0.0
    mean = sim.advance(STEP, 2 * STEP, np.array([np.nan, 0.5]), counting=True)
    assert mean.tolist() == [0.5]
    assert sim.bill.throttled_by_cluster.sum() == 0.0


def test_a_move_runs_on_both_clusters_for_its_delay_and_costs_on_both():
    sim = continuum([10.0, 1.0], [0], delay=60.0)
    move = sim.move(0, 1, at=0.0, counting=True)
    assert (move.source, move.destination, move.in_force_at) == (0, 1, 60.0)
    assert sim.in_flight(0)
    assert sim.placement().tolist() == [1]  # where it is going
    mean = sim.advance(0.0, STEP, np.array([2.0]), counting=True)
    # the source serves it for the first 60 s; the destination (1 core) runs the starting copy then, and all of it after
    assert mean.tolist() == pytest.approx([2.0 * 60 / STEP, 2.0])
    assert sim.bill.double_core_seconds == pytest.approx(2.0 * 60)
    assert sim.bill.throttled_by_cluster.tolist() == pytest.approx([0.0, 1.0 * STEP])
    assert sim.bill.throttled_by_workload.tolist() == pytest.approx([1.0 * STEP])
    assert sim.bill.saturated_seconds.tolist() == [0.0, STEP]
    assert not sim.in_flight(0)
    assert sim.serving.tolist() == [1]
    assert [m.workload for m in sim.bill.moves] == [0]


def test_a_move_longer_than_a_step_completes_in_a_later_interval():
    sim = continuum([8.0, 8.0], [0, 0], delay=450.0)
    sim.move(1, 1, at=0.0, counting=True)
    first = sim.advance(0.0, STEP, np.array([1.0, 2.0]), counting=True)
    assert first.tolist() == pytest.approx([3.0, 2.0])
    assert sim.in_flight(1)
    with pytest.raises(ValueError, match="already moving"):
        sim.move(1, 0, at=STEP, counting=True)
    second = sim.advance(STEP, 2 * STEP, np.array([1.0, 2.0]), counting=True)
    assert second.tolist() == pytest.approx([1.0 + 2.0 * 150 / STEP, 2.0])
    assert sim.bill.double_core_seconds == pytest.approx(2.0 * 450)
    assert not sim.in_flight(1)


def test_a_move_without_delay_is_in_force_at_once():
    sim = continuum([8.0, 8.0], [0], delay=0.0)
    sim.move(0, 1, at=0.0, counting=True)
    assert not sim.in_flight(0)
    assert sim.advance(0.0, STEP, np.array([3.0]), counting=True).tolist() == [0.0, 3.0]
    assert sim.bill.double_core_seconds == 0.0


def test_a_move_back_is_a_return_to_a_cluster_left_less_than_the_dwell_time_ago():
    sim = continuum([8.0, 8.0, 8.0], [0, 0], delay=0.0)
    sim.move(0, 1, at=0.0, counting=True)
    sim.move(0, 2, at=600.0, counting=True)  # onwards, not back
    assert sim.bill.move_backs == 0
    sim.move(0, 0, at=DWELL - 1.0, counting=True)  # back to where it left at 0
    assert sim.bill.move_backs == 1
    sim.move(1, 1, at=0.0, counting=True)
    sim.move(1, 0, at=DWELL, counting=True)  # a full dwell later: not a move-back
    assert sim.bill.move_backs == 1
    assert len(sim.bill.moves) == 5


def test_impossible_moves_are_refused():
    sim = continuum([8.0, 8.0], [0])
    with pytest.raises(ValueError, match="cannot move"):
        sim.move(0, 0, at=0.0, counting=True)
    with pytest.raises(ValueError, match="cannot move"):
        sim.move(0, 5, at=0.0, counting=True)
    with pytest.raises(ValueError, match="start on one of the clusters"):
        continuum([8.0], [1])


# -- properties -------------------------------------------------------------------------------------

plans = st.lists(
    st.tuples(
        st.lists(st.floats(min_value=0.0, max_value=12.0), min_size=4, max_size=4),  # demand of 4 workloads
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), max_size=3),  # moves at the interval's start
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    plan=plans,
    capacity=st.lists(st.floats(min_value=0.5, max_value=16.0), min_size=3, max_size=3),
    delay=st.sampled_from([0.0, 60.0, 300.0, 700.0]),
)
def test_the_bill_adds_up(plan, capacity, delay):
    sim = continuum(capacity, [0, 1, 2, 0], delay=delay)
    demand_seconds = 0.0
    moved_core_seconds = 0.0
    for i, (demand, moves) in enumerate(plan):
        for w, destination in moves:
            if not sim.in_flight(w) and destination != sim.serving[w]:
                sim.move(w, destination, at=i * STEP, counting=True)
        mean = sim.advance(i * STEP, (i + 1) * STEP, np.array(demand), counting=True)
        demand_seconds += sum(demand) * STEP
        moved_core_seconds += mean.sum() * STEP
        assert np.all(mean >= 0)
    bill = sim.bill
    # the same throttling seen per cluster and per workload; never more than what ran
    assert bill.throttled_by_cluster.sum() == pytest.approx(bill.throttled_by_workload.sum(), abs=1e-6)
    assert bill.throttled_by_cluster.sum() <= demand_seconds + bill.double_core_seconds + 1e-6
    assert bill.demand_core_seconds == pytest.approx(demand_seconds)
    # what ran on the clusters is the demand plus the copies running twice
    assert moved_core_seconds == pytest.approx(demand_seconds + bill.double_core_seconds, abs=1e-6)
    assert bill.double_core_seconds <= len(bill.moves) * 12.0 * delay + 1e-6
    assert bill.move_backs <= len(bill.moves)
    assert np.all(bill.saturated_seconds <= len(plan) * STEP + 1e-9)
    # a cluster that was never over capacity throttled nothing
    assert np.all((bill.saturated_seconds > 0) | (bill.throttled_by_cluster < 1e-6))


@settings(max_examples=100, deadline=None)
@given(demand=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=4, max_size=4))
def test_room_for_everything_throttles_nothing(demand):
    sim = continuum([8.0, 8.0, 8.0], [0, 1, 2, 0])
    sim.move(3, 1, at=0.0, counting=True)
    sim.advance(0.0, STEP, np.array(demand), counting=True)
    assert sim.bill.throttled_by_cluster.sum() == 0.0
    assert sim.bill.saturated_seconds.sum() == 0.0
