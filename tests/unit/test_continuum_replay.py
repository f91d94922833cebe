"""The continuum replay: each arm on small synthetic traces, the report, and the command."""

import csv
import json
from datetime import UTC, datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from intelligence.decisions.specs import RescheduleSpec
from intelligence.evaluation.continuum_layout import parse_layout
from intelligence.evaluation.continuum_replay import (
    ContinuumOptions,
    ContinuumReplayError,
    format_report,
    replay_continuum,
    write_moves,
)

STEP = 300.0
DAY = 288  # samples of 5 minutes
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC
LAYOUT = {
    "clusters": [
        {"name": "edge-1", "tier": "edge", "capacity_cores": 4},
        {"name": "edge-2", "tier": "edge", "capacity_cores": 4},
        {"name": "cloud-1", "tier": "cloud", "capacity_cores": 32},
    ],
    "workloads": [
        {"name": "gateway", "cluster": "edge-1", "movable": False},
        {"name": "vision", "cluster": "edge-1"},
        {"name": "sensor", "cluster": "edge-1", "tiers": ["edge"]},
        {"name": "local", "cluster": "edge-2", "tiers": ["edge"]},
    ],
}
NAMES = ["gateway", "vision", "sensor", "local"]


def daily_surge(days: int, seed: int = 3) -> np.ndarray:
    """Cores: on edge-1 a pinned gateway (1), a small sensor (0.5) and vision, 1 core but 3.5 from 10:00 to 14:00
    (5 on a 4-core cluster: saturated for four hours a day); a steady workload on edge-2."""
    minute = (np.arange(days * DAY) % DAY) * 5
    vision = np.where((minute >= 600) & (minute < 840), 3.5, 1.0)
    noise = np.random.default_rng(seed).normal(1.0, 0.02, (len(minute), 4))
    return (
        np.column_stack([np.full(len(minute), 1.0), vision, np.full(len(minute), 0.5), np.full(len(minute), 1.0)])
        * noise
    )


@pytest.fixture(scope="module")
def report():
    demand = daily_surge(4)
    epoch = START + STEP * np.arange(len(demand))
    return replay_continuum(epoch, demand, NAMES, parse_layout(LAYOUT), ContinuumOptions(warmup_days=3.0))


def test_static_placement_throttles_the_saturated_cluster(report):
    static = report.arms["static"]
    assert static.moves == 0
    assert static.throttled_by_cluster["edge-1"] > 0
    assert static.throttled_by_cluster["edge-2"] == static.throttled_by_cluster["cloud-1"] == 0
    # about 1 core over capacity for four hours of the reported day, shared by the three workloads there
    assert static.throttled_core_seconds == pytest.approx(1.0 * 4 * 3600, rel=0.1)
    assert static.saturated_cluster_minutes == pytest.approx(240, abs=15)
    assert static.throttled_by_workload["local"] == 0
    assert static.throttled_by_workload["vision"] > static.throttled_by_workload["sensor"]


def test_the_threshold_rule_moves_the_largest_movable_workload_after_five_minutes(report):
    threshold = report.arms["threshold"]
    moves = [report.move_row(m) for m in report.moves["threshold"]]
    assert moves, "the threshold rule never moved"
    first = moves[0]
    # vision, the largest movable workload; edge-2 is the first cluster where it fits at <= 90% (1 + 3.5 > 3.6): cloud
    assert first[1:] == ["vision", "edge-1", "cloud-1"]
    # the sample at 10:00 is the first 5 minutes above 90%: decided then, in force a minute later
    assert report.moves["threshold"][0].at == datetime(2026, 1, 4, 10, 0, tzinfo=UTC).timestamp()
    assert first[0] == "2026-01-04T10:01:00.000Z"
    assert 0 < threshold.throttled_core_seconds < report.arms["static"].throttled_core_seconds
    assert all(row[1] != "gateway" for row in moves)


def test_the_predictive_arm_moves_ahead_of_the_surge_with_the_services_rules(report):
    predictive = report.arms["predictive"]
    assert predictive.throttled_core_seconds < 0.1 * report.arms["static"].throttled_core_seconds
    assert predictive.throttled_core_seconds <= report.arms["threshold"].throttled_core_seconds
    assert predictive.move_backs == 0
    assert predictive.double_core_seconds > 0
    layout = parse_layout(LAYOUT)
    allowed = {w.name: w for w in layout.workloads}
    clusters = {c.name: c for c in layout.clusters}
    for _, workload, source, destination in (report.move_row(m) for m in report.moves["predictive"]):
        assert allowed[workload].movable
        assert allowed[workload].refusal(clusters[destination]) is None
        assert source != destination


def test_the_oracle_sees_the_next_hour_and_throttles_least(report):
    oracle = report.arms["oracle"]
    assert oracle.throttled_core_seconds <= report.arms["predictive"].throttled_core_seconds + 1e-6
    assert oracle.throttled_core_seconds == pytest.approx(0.0, abs=1.0)
    first = report.moves["oracle"][0]
    assert first.in_force_at < datetime(2026, 1, 4, 10, 0, tzinfo=UTC).timestamp()  # in force before the surge


def test_the_report_says_everything_side_by_side(report):
    assert set(report.arms) == {"static", "threshold", "predictive", "oracle"}
    assert report.warmup_samples == 3 * DAY
    assert report.reported_seconds == pytest.approx(DAY * STEP)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["throttled_ratio"]["predictive"]["static"] < 0.1
    assert data["arms"]["static"]["throttled_by_cluster"]["edge-1"] > 0
    assert data["options"]["move_delay_seconds"] == 60.0
    assert data["options"]["reschedule"]["min_dwell_minutes"] == RescheduleSpec().min_dwell_minutes
    assert {row[1] for row in data["moves"]["predictive"]} <= {"vision", "sensor"}
    table = format_report(report)
    for line in ("throttled core-seconds", "saturated cluster-minutes", "move-backs within the dwell",
                 "core-seconds running twice", "of threshold's", "  edge-1"):  # fmt: skip
        assert line in table
    # the workloads throttled in some arm, the most throttled first; never-throttled ones are left out
    by_workload = table.split("throttled core-seconds by workload")[1].splitlines()[1:]
    assert [line.split()[0] for line in by_workload] == ["vision", "gateway", "sensor"]


def test_a_threshold_rule_needs_the_whole_five_minutes():
    layout = parse_layout(
        {
            "clusters": [
                {"name": "a", "tier": "edge", "capacity_cores": 2},
                {"name": "b", "tier": "edge", "capacity_cores": 4},
            ],
            "workloads": [{"name": "x", "cluster": "a"}, {"name": "y", "cluster": "a"}],
        }
    )
    minute = np.arange(40)
    # at 95% for 4 minutes (no move), then for 5 (a move, of the larger workload, at the fifth)
    busy = ((minute >= 10) & (minute < 14)) | (minute >= 20)
    demand = np.column_stack([np.where(busy, 1.2, 0.5), np.where(busy, 0.7, 0.5)])
    epoch = START + 60.0 * minute
    options = ContinuumOptions(warmup_days=0.0, arms=("threshold",))
    report = replay_continuum(epoch, demand, ["x", "y"], layout, options)
    (move,) = report.moves["threshold"]
    assert move.at == epoch[24]
    assert report.move_row(move)[1:] == ["x", "a", "b"]


def test_a_trace_that_cannot_be_replayed_is_refused():
    layout = parse_layout(LAYOUT)
    epoch = START + STEP * np.arange(DAY)
    with pytest.raises(ContinuumReplayError, match="warm-up"):
        replay_continuum(epoch, np.ones((DAY, 4)), NAMES, layout, ContinuumOptions(warmup_days=1.0))
    uneven = np.r_[epoch[:10], epoch[11:]]
    with pytest.raises(ContinuumReplayError, match="evenly spaced"):
        replay_continuum(uneven, np.ones((len(uneven), 4)), NAMES, layout, ContinuumOptions(warmup_days=0.1))
    with pytest.raises(ContinuumReplayError, match="arms must be among"):
        replay_continuum(epoch, np.ones((DAY, 4)), NAMES, layout, ContinuumOptions(warmup_days=0.1, arms=("magic",)))


# -- the command ------------------------------------------------------------------------------------


def write_inputs(tmp_path, layout_text=None):
    demand = daily_surge(2)
    trace = tmp_path / "trace.csv"
    with trace.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", *NAMES])
        for i, row in enumerate(demand):
            writer.writerow([int(START + STEP * i), *np.round(row, 4)])
    layout = tmp_path / "continuum.yaml"
    if layout_text is None:
        import yaml

        layout_text = yaml.safe_dump(LAYOUT)
    layout.write_text(layout_text)
    return layout, trace


def test_cli_replays_and_writes_the_predictive_moves(tmp_path):
    layout, trace = write_inputs(tmp_path)
    out, moves = tmp_path / "report.json", tmp_path / "moves.csv"
    result = CliRunner().invoke(
        app,
        ["replay-continuum", str(layout), str(trace), "--warmup-days", "1", "--json", str(out),
         "--moves-out", str(moves), "--move-delay-seconds", "30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "throttled core-seconds" in result.stdout
    assert "predictive" in result.stdout
    data = json.loads(out.read_text())
    assert set(data["arms"]) == {"static", "threshold", "predictive", "oracle"}
    assert data["options"]["move_delay_seconds"] == 30.0
    with moves.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "workload", "from", "to"]
    assert len(rows) - 1 == data["arms"]["predictive"]["moves"] > 0
    assert rows[1:] == data["moves"]["predictive"]
    stamps = [r[0] for r in rows[1:]]
    assert all(s.endswith("Z") for s in stamps)
    parsed = [datetime.fromisoformat(s) for s in stamps]
    assert parsed == sorted(parsed)
    assert all(p.utcoffset().total_seconds() == 0 for p in parsed)
    # in force a move's delay after a sample's time
    assert all(round(p.timestamp() - 30.0 - START) % int(STEP) == 0 for p in parsed)
    assert all(r[1] in {"vision", "sensor"} and r[2] != r[3] for r in rows[1:])


@pytest.mark.parametrize(
    ("layout_text", "message"),
    [
        (
            "clusters:\n- {name: edge-1, tier: edge, capacity_cores: 0}\n"
            "workloads:\n- {name: vision, cluster: edge-1}\n",
            "cluster 'edge-1': capacity_cores must be a positive number of cores, got 0",
        ),
        (
            "clusters:\n- {name: edge-1, tier: edge, capacity_cores: 4}\n"
            "workloads:\n- {name: vision, cluster: edge-2}\n",
            "workload 'vision': cluster 'edge-2' is not a cluster of the layout",
        ),
        ("clusters: [\n", "not valid YAML"),
    ],
)
def test_cli_names_what_is_wrong_with_the_layout(tmp_path, layout_text, message):
    layout, trace = write_inputs(tmp_path, layout_text)
    result = CliRunner().invoke(app, ["replay-continuum", str(layout), str(trace)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert str(layout) in result.stderr


def test_cli_names_the_columns_the_layout_does_not_know(tmp_path):
    import yaml

    partial = {**LAYOUT, "workloads": LAYOUT["workloads"][:3]}
    layout, trace = write_inputs(tmp_path, yaml.safe_dump(partial))
    result = CliRunner().invoke(app, ["replay-continuum", str(layout), str(trace), "--warmup-days", "1"])
    assert result.exit_code == 2
    assert "column(s) 'local' are not workloads of the layout" in result.stderr


def test_cli_refuses_bad_options(tmp_path):
    layout, trace = write_inputs(tmp_path)
    wrong = CliRunner().invoke(app, ["replay-continuum", str(layout), str(trace), "--target-utilisation", "0.95"])
    assert wrong.exit_code == 2
    assert "target_utilisation" in wrong.stderr
    no_predictive = CliRunner().invoke(
        app, ["replay-continuum", str(layout), str(trace), "--arms", "static", "--moves-out", str(tmp_path / "m.csv")]
    )
    assert no_predictive.exit_code == 2
    assert "keep predictive in --arms" in no_predictive.stderr


def test_cli_holds_the_predictive_moves_to_the_envelopes_budget(tmp_path):
    layout, trace = write_inputs(tmp_path)
    out = tmp_path / "report.json"
    args = ["replay-continuum", str(layout), str(trace), "--warmup-days", "1", "--arms", "predictive"]
    free = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert free.exit_code == 0, free.output
    unlimited = json.loads(out.read_text())["arms"]["predictive"]
    held = CliRunner().invoke(app, [*args, "--json", str(out), "--budget-actions", "0"])
    assert held.exit_code == 0, held.output
    budget = json.loads(out.read_text())
    assert unlimited["moves"] > 0
    assert budget["arms"]["predictive"]["moves"] == 0
    assert budget["arms"]["predictive"]["refused_moves"] > 0
    assert budget["options"]["envelope"]["budget_actions"] == 0
    assert budget["arms"]["predictive"]["throttled_core_seconds"] > unlimited["throttled_core_seconds"]
    assert "refused by the envelope" in held.stdout


def test_write_moves_writes_a_header_even_without_moves(tmp_path, report):
    path = tmp_path / "none.csv"
    assert write_moves(path, report, "static") == 0
    assert path.read_text().splitlines() == ["timestamp,workload,from,to"]


def test_the_threshold_rule_measures_its_five_minutes_again_after_a_move():
    layout = parse_layout(
        {
            "clusters": [
                {"name": "a", "tier": "edge", "capacity_cores": 2},
                {"name": "b", "tier": "edge", "capacity_cores": 4},
            ],
            "workloads": [{"name": n, "cluster": "a"} for n in ("x", "y", "z")],
        }
    )
    minute = np.arange(40)
    busy = minute >= 20  # 2.95 cores on 2: still 97.5% once x has gone
    demand = np.column_stack([np.where(busy, 1.0, 0.2), np.where(busy, 0.95, 0.2), np.where(busy, 1.0, 0.2)])
    epoch = START + 60.0 * minute
    report = replay_continuum(epoch, demand, ["x", "y", "z"], layout, ContinuumOptions(warmup_days=0.0))
    first, second = report.moves["threshold"]
    assert (first.at, report.move_row(first)[1]) == (epoch[24], "x")  # the largest; ties broken by order
    # x is in force on b from minute 25: the next five minutes above 90% end at minute 30
    assert (second.at, report.move_row(second)[1]) == (epoch[30], "z")
    assert report.arms["threshold"].move_backs == 0


# -- the predictive arm's series ----------------------------------------------------------------------


def forecasts_after_a_move(per_cluster: bool):
    """A steady workload learnt for a day on edge-1 (cluster 0), then one sample on cloud-1 (cluster 2)."""
    from intelligence.evaluation.continuum_arms import ModelForecasts, workload_keys

    layout = parse_layout(LAYOUT)
    demand = daily_surge(2)
    epoch = START + STEP * np.arange(len(demand))
    clusters = [c.name for c in layout.clusters] if per_cluster else []
    keys = workload_keys(layout, "cpu")
    source = ModelForecasts(epoch, demand, keys, 12, 0.95, "seasonal_ar", "record_ratio", {}, clusters)
    before, after = np.array([0, 0, 0, 1]), np.array([0, 2, 0, 1])  # vision moves from edge-1 to cloud-1
    for i in range(DAY):
        source.learn(i, before)
    learnt = source.forecasts(DAY - 1, before)[1]
    source.learn(DAY, after)
    return source, learnt, source.forecasts(DAY, after)[1]


def test_as_in_the_service_a_moved_workload_is_learnt_afresh_on_its_new_cluster():
    source, learnt, moved = forecasts_after_a_move(per_cluster=True)
    assert learnt is not None
    assert learnt.key.cluster == "edge-1"
    vision = sorted(str(k) for k in source.bank.series_keys() if k.label("workload") == "vision")
    assert vision == ['cloud-1/cpu{namespace="continuum",workload="vision"}',
                      'edge-1/cpu{namespace="continuum",workload="vision"}']  # fmt: skip
    # what is forecast for it now comes from the one sample learnt there, not from the day on edge-1
    assert moved is not None
    assert moved.key.cluster == "cloud-1"
    assert moved.origin == START + STEP * DAY
    assert moved.last == pytest.approx(daily_surge(2)[DAY, 1])


def test_one_series_can_follow_the_workload_instead():
    source, learnt, moved = forecasts_after_a_move(per_cluster=False)
    assert learnt is not None
    assert moved is not None
    assert moved.key == learnt.key
    assert moved.key.cluster == "continuum"
    assert sum(k.label("workload") == "vision" for k in source.bank.series_keys()) == 1
