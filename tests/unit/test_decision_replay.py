"""The decision replay: the predictive floor against the reactive KPA on the same load."""

import csv
import itertools
import json
import math
from datetime import datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from intelligence.decisions.specs import KnativeFloorSpec
from intelligence.evaluation.kpa import KpaSettings
from intelligence.evaluation.replay import ReplayError, ReplayOptions, format_report, replay

STEP = 300.0
DAY = 288  # samples
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def daily_load(days: int, seed: int = 5) -> np.ndarray:
    """Requests/s: a quiet night, a morning ramp (x1.2 every 5 minutes for an hour), an evening decline."""
    minute = (np.arange(days * DAY) % DAY) * 5
    up = np.clip((minute - 480) / 5.0, 0, 12)  # 08:00..09:00: 20 -> 178 requests/s
    down = np.clip((minute - 1080) / 5.0, 0, 12)  # 18:00..19:00: back to 20
    noise = np.random.default_rng(seed).normal(1.0, 0.03, minute.shape)
    return np.round(20.0 * 1.2 ** (up - down) * noise, 3)


def options(**changes) -> ReplayOptions:
    # a slow cold start (10 minutes: a large model to load) is where the KPA falls behind a
    # ramp it could follow with fast pods; the horizon (15 minutes) covers it
    policy = KnativeFloorSpec(
        target_per_replica=10.0,
        quantile=0.8,
        cold_start_seconds=600.0,
        min_scale=1,
        max_scale=50,
        max_step_up=50,
        max_relative_band=3.0,
    )
    # a 5 s tick keeps the test fast; the KPA's windows are still many ticks long
    kpa = KpaSettings(target_per_replica=10.0, cold_start_seconds=600.0, tick_seconds=5.0, interpolation="linear")
    return ReplayOptions(**{"policy": policy, "kpa": kpa, "horizon": 3, "warmup_days": 2.0, **changes})


@pytest.fixture(scope="module")
def report():
    load = daily_load(3)
    epoch = START + STEP * np.arange(len(load))
    return replay(epoch, load[:, None], ["shop"], options())


def test_the_predictive_floor_is_under_provisioned_less_than_the_reactive_kpa(report):
    assert report.reactive.under_provisioned_seconds > 0
    assert report.predictive.under_provisioned_seconds < 0.5 * report.reactive.under_provisioned_seconds
    assert report.predictive.unserved_requests < report.reactive.unserved_requests
    assert report.series[0].recommendations > 0


def test_the_report_has_both_arms_over_the_same_span_after_the_warm_up(report):
    assert report.warmup_samples == 2 * DAY
    assert report.reported_seconds == pytest.approx((DAY - 1) * STEP)
    assert report.step_seconds == STEP
    for arm in (report.predictive, report.reactive):
        assert 0.0 <= arm.under_provisioned_share <= 1.0
        assert arm.replica_hours > 0
        assert arm.scaling_actions > 0
        assert arm.moves == 0  # no rescheduling in a single-cluster replay
    assert report.series[0].name == "shop"
    assert report.series[0].predictive == report.predictive  # one series: its figures are the totals
    changes = report.changes()
    assert changes["under_provisioned_seconds"] < -0.5
    assert math.isfinite(changes["replica_hours"])
    assert set(changes) >= {"cold_start_hits", "scaling_actions"}
    assert set(report.arms) == {"reactive", "predictive", "naive", "oracle"}
    data = json.loads(json.dumps(report.as_dict()))
    assert data["options"]["policy"]["quantile"] == 0.8
    assert data["options"]["interval"] == 0.6
    table = format_report(report)
    assert "under-provisioned time" in table
    assert "pod-hours" in table


def test_floors_are_pulses_ahead_of_the_ramp_back_to_min_scale_after(report):
    pulses = report.floors["predictive"].pulses[0]
    reported = [p for p in pulses if p.start >= START + report.warmup_samples * STEP]
    assert reported, "no floor raised for the third day's ramp"
    assert max(p.value for p in reported) >= math.ceil(150 / 10)  # raised for the ramp
    for before, after in itertools.pairwise(pulses):
        assert before.start < before.end <= after.start or before.value < after.value  # only raises overlap
    times, values = report.floors["predictive"].events(0)
    assert values[0] == 1
    assert values[-1] == 1
    assert np.all(np.diff(times) >= 0)
    oracle = report.floors["oracle"]
    assert oracle.recommendations[0] > 0
    assert report.arms["oracle"].floor_changes > 0


def test_a_trace_no_longer_than_the_warm_up_is_refused():
    epoch = START + STEP * np.arange(DAY)
    with pytest.raises(ReplayError, match="warm-up"):
        replay(epoch, np.ones((DAY, 1)), ["a"], options())
    uneven = np.r_[epoch[:10], epoch[11:]]
    with pytest.raises(ReplayError, match="evenly spaced"):
        replay(uneven, np.ones((len(uneven), 1)), ["a"], options())


def test_cli_replays_a_csv_and_writes_json(tmp_path):
    load = daily_load(2)
    path = tmp_path / "trace.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "shop", "api"])
        for i, value in enumerate(load):
            writer.writerow([int(START + STEP * i), value, value / 2])
    out, floors = tmp_path / "replay.json", tmp_path / "floors"
    result = CliRunner().invoke(
        app,
        [
            "replay", str(path), "--warmup-days", "1.5", "--horizon", "3", "--tick-seconds", "10",
            "--kpa-target", "14.3", "--cold-start-seconds", "600", "--min-scale", "1",
            "--json", str(out), "--floors-out", str(floors),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "under-provisioned time" in result.stdout
    assert "oracle" in result.stdout
    data = json.loads(out.read_text())
    assert [s["name"] for s in data["series"]] == ["shop", "api"]
    assert data["options"]["horizon"] == 3
    assert set(data["arms"]) == {"reactive", "predictive", "naive", "oracle"}
    assert sorted(p.name for p in floors.iterdir()) == ["api.csv", "shop.csv"]
    with (floors / "shop.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "floor"]
    assert rows[1][1] == "1"  # the static min-scale from the trace's start
    assert len(rows) > 3, "the ramp of the second day raised no floor"
    stamps = [datetime.fromisoformat(r[0]) for r in rows[1:]]
    assert all(r[0].endswith("Z") for r in rows[1:])
    assert stamps == sorted(stamps)
    assert all(int(a[1]) != int(b[1]) for a, b in itertools.pairwise(rows[1:]))  # one row per change


def test_cli_says_why_it_cannot_replay(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("timestamp,shop\n0,1\n300,2\n")
    result = CliRunner().invoke(app, ["replay", str(path)])
    assert result.exit_code == 2
    assert "warm-up" in result.stderr
