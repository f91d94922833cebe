"""The simulated KPA behaves as Knative's autoscaler does at its defaults."""

import numpy as np
import pytest

from intelligence.evaluation.kpa import KpaSettings, load_at, simulate

STEP = 300.0
TICK = 2.0


def steps(*levels: tuple[float, int]) -> np.ndarray:
    """A load held at each level for the given number of samples (one column)."""
    return np.concatenate([np.full(n, level) for level, n in levels])[:, None]


def test_steady_load_gets_the_replicas_its_target_asks_for_and_nothing_else():
    out = simulate(steps((45.0, 20)), STEP, KpaSettings(target_per_replica=10.0))
    assert out.seconds == 19 * STEP
    assert out.replica_seconds[0] == pytest.approx(5 * out.seconds)  # ceil(45 / 10)
    assert out.under_provisioned_seconds[0] == 0.0
    assert out.unserved_requests[0] == 0.0
    assert out.scaling_actions[0] == 0
    assert out.cold_starts[0] == 0
    assert out.requests[0] == pytest.approx(45.0 * out.seconds)


def test_a_step_up_panics_and_is_under_provisioned_until_the_new_pods_are_ready():
    cfg = KpaSettings(target_per_replica=10.0, cold_start_seconds=30.0, interpolation="hold")
    out = simulate(steps((20.0, 10), (200.0, 10)), STEP, cfg, history=True)
    assert out.panic_seconds[0] > 0
    # the panic window sees the step within a tick; the pods serve a cold start later
    assert 30.0 <= out.under_provisioned_seconds[0] <= 40.0
    assert out.cold_starts[0] == 18  # from 2 to 20 replicas
    assert out.unserved_requests[0] > 0
    assert out.ready is not None
    assert out.ready[-1, 0] == 20
    jump = int(9 * STEP / TICK)  # the load is 200 from just after sample 9
    assert out.ready[jump + 5, 0] == 2  # still the old pods: pending ones do not serve
    assert out.pods[jump + 5, 0] > 2  # ...but they exist, and cost
    assert out.ready[jump + 20, 0] > 2


def test_without_cold_start_a_step_is_served_within_a_few_ticks():
    cfg = KpaSettings(target_per_replica=10.0, cold_start_seconds=0.0, interpolation="hold")
    out = simulate(steps((20.0, 10), (200.0, 10)), STEP, cfg)
    assert out.under_provisioned_seconds[0] <= 3 * TICK


def test_scale_down_waits_for_the_stable_window():
    cfg = KpaSettings(target_per_replica=10.0, interpolation="hold")
    out = simulate(steps((200.0, 10), (10.0, 10)), STEP, cfg, history=True)
    drop = int(9 * STEP / TICK)
    assert out.ready is not None
    assert out.ready[drop + 10, 0] > 10  # 20 s after the drop the stable average is still high
    assert out.ready[drop + 31, 0] == 1  # a stable window (60 s) later: ceil(10 / 10)
    assert np.all(np.diff(out.ready[drop:, 0]) <= 0)
    assert out.scaling_actions[0] > 5  # gradual: one change per tick or so


def test_scale_down_is_at_most_halving_per_tick():
    cfg = KpaSettings(target_per_replica=10.0, interpolation="hold", stable_window_seconds=TICK)
    out = simulate(steps((200.0, 10), (5.0, 10)), STEP, cfg, history=True)
    assert out.ready is not None
    ready = out.ready[:, 0]
    changes = ready[np.flatnonzero(np.diff(ready)) + 1]
    assert changes.tolist()[:4] == [10, 5, 2, 1]  # floor(ready / max-scale-down-rate 2) each tick


def test_min_scale_set_over_time_is_a_floor_and_load_above_it_still_scales():
    load = steps((5.0, 10), (120.0, 10))
    floors = np.r_[np.full(5, 1), np.full(15, 8)][:, None]
    cfg = KpaSettings(target_per_replica=10.0, interpolation="hold", cold_start_seconds=0.0)
    out = simulate(load, STEP, cfg, min_scale=floors, floor_delay_seconds=10.0, history=True)
    assert out.ready is not None
    ready = out.ready[:, 0]
    raised = int(5 * STEP / TICK)
    assert ready[raised] == 1  # the floor set at sample 5 is in force 10 s later
    assert ready[raised + 5] == 8
    assert ready[raised + 5 : int(9 * STEP / TICK)].min() == 8  # never below the floor, though 5 rps needs 1
    assert ready[-1] == 12  # ceil(120 / 10) is above the floor


def test_max_scale_caps_and_the_static_min_scale_applies_without_a_schedule():
    cfg = KpaSettings(target_per_replica=10.0, min_scale=3, max_scale=6, interpolation="hold")
    out = simulate(steps((1.0, 5), (500.0, 5)), STEP, cfg, history=True)
    assert out.ready is not None
    assert out.ready[:, 0].min() == 3
    assert out.ready[:, 0].max() == 6
    assert out.under_provisioned_seconds[0] > 0


def test_idle_service_scales_to_zero_after_the_grace_period():
    cfg = KpaSettings(target_per_replica=10.0, interpolation="hold")
    out = simulate(steps((30.0, 2), (0.0, 4)), STEP, cfg, history=True)
    assert out.ready is not None
    assert out.ready[-1, 0] == 0
    zero = int(np.argmax(out.ready[:, 0] == 0))
    assert zero * TICK >= STEP + 60.0 + 30.0 - 2 * TICK  # the stable window drains, then the grace period


def test_the_same_input_gives_the_same_output_and_columns_are_independent():
    rng = np.random.default_rng(7)
    load = np.abs(rng.normal(60.0, 40.0, (60, 3)))
    cfg = KpaSettings()
    a = simulate(load, STEP, cfg, report_from=10)
    b = simulate(load, STEP, cfg, report_from=10)
    alone = simulate(load[:, 1:2], STEP, cfg, report_from=10)
    for name in ("under_provisioned_seconds", "unserved_requests", "replica_seconds", "scaling_actions", "cold_starts"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name)[1] == getattr(alone, name)[0]
    assert a.seconds == 49 * STEP


def test_load_between_samples_is_linear_or_held_from_the_next_sample():
    rates = np.array([[10.0], [20.0]])
    seconds = np.array([0.0, 150.0, 300.0])
    assert load_at(rates, STEP, seconds, "linear")[:, 0].tolist() == [10.0, 15.0, 20.0]
    assert load_at(rates, STEP, seconds, "hold")[:, 0].tolist() == [10.0, 20.0, 20.0]


def test_missing_samples_carry_the_previous_load():
    load = np.array([[40.0], [np.nan], [40.0]])
    out = simulate(load, STEP, KpaSettings(target_per_replica=10.0))
    assert out.replica_seconds[0] == pytest.approx(4 * out.seconds)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="min_scale"):
        KpaSettings(min_scale=5, max_scale=2)
    with pytest.raises(ValueError, match="interpolation"):
        KpaSettings(interpolation="cubic")  # type: ignore[arg-type]
