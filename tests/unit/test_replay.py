import numpy as np
import pytest

from collectors.replay import ReplayCollector, ReplayFormatError
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import HealthState, ManualClock

INGEST = 'edge-1/requests{namespace="iot",workload="ingest"}'  # a series key as the header: CSV-quoted
CSV = (
    '"timestamp","edge-1/requests{namespace=""iot"",workload=""ingest""}","vm_1"\n'
    "2026-01-01T00:00:00Z,10,1\n"
    "2026-01-01T00:05:00Z,,2\n"
    "2026-01-01T00:10:00Z,12,3\n"
    "2026-01-01T00:15:00Z,13,4\n"
)
T0 = 1_767_225_600.0


def test_csv_replay_returns_each_sample_once_up_to_now(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(CSV)
    col = ReplayCollector.from_file(path, "lab")
    first = col.pull(T0 + 300)
    keys = sorted(str(b.key) for b in first.batches)
    assert keys == [INGEST, "lab/vm_1{}"]
    ingest = next(b for b in first.batches if b.key.cluster == "edge-1")
    assert ingest.timestamps.tolist() == [T0, T0 + 300]
    assert np.isnan(ingest.values[1])  # an empty cell is a missing value
    second = col.pull(T0 + 900)
    assert all(b.timestamps.tolist() == [T0 + 600, T0 + 900] for b in second.batches)
    done = col.pull(T0 + 3600)
    assert done.batches == []
    assert {h.state for h in done.health} == {HealthState.STALE}


def test_recollect_returns_what_the_replay_returned_so_far_and_moves_nothing(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(CSV)
    col = ReplayCollector.from_file(path, "lab")
    assert col.recollect(T0).batches == []
    col.pull(T0 + 300)
    assert {b.timestamps.tolist()[-1] for b in col.recollect(T0 + 300).batches} == {T0 + 300}
    assert all(b.timestamps.tolist() == [T0 + 600, T0 + 900] for b in col.pull(T0 + 900).batches)
    assert all(b.timestamps.tolist() == [T0, T0 + 300, T0 + 600, T0 + 900] for b in col.recollect(T0 + 900).batches)


def test_openmetrics_replay_uses_the_cluster_label(tmp_path):
    path = tmp_path / "trace.om"
    path.write_text(
        "# TYPE mem gauge\n"
        'mem{cluster="fog-1",namespace="a",workload="w"} 5 1767225600\n'
        'mem{cluster="fog-1",namespace="a",workload="w"} 6 1767225660\n'
        'mem{namespace="a",workload="w"} 7 1767225600\n'
        "# EOF\n"
    )
    col = ReplayCollector.from_file(path, "lab")
    result = col.pull(T0 + 60)
    assert sorted(str(b.key) for b in result.batches) == [
        'fog-1/mem{namespace="a",workload="w"}',
        'lab/mem{namespace="a",workload="w"}',
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "time,x\n1,2\n", "first column must be 'timestamp'"),
        ("a.csv", "timestamp,x\n1,zz\n", "line 2, column 'x': 'zz' is not a number"),
        ("a.om", "# TYPE m gauge\nm 1\n# EOF\n", "has no timestamp"),
        ("a.om", "garbage here\n", "not valid OpenMetrics"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ReplayFormatError, match=message):
        ReplayCollector.from_file(path)


def test_the_service_replays_a_file_and_infers_its_spacing(tmp_path):
    rows = ['timestamp,"edge-1/requests{namespace=""iot"",workload=""ingest""}"']
    for i in range(600):
        rows.append(f"{T0 + 300 * i:.0f},{50 + 30 * np.sin(2 * np.pi * i / 288):.3f}")
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(rows) + "\n")
    settings = load_settings(
        None, **{"replay.path": str(path), "storage.state_dir": str(tmp_path / "s"), "mlflow.enabled": False}
    )
    svc = build_service(settings, clock=ManualClock(T0 + 300 * 400))
    svc.warm_up()
    fc = svc.forecasts.query()[0]
    assert fc.step_seconds == 300.0
    assert fc.origin == T0 + 300 * 400
    assert svc.engine.status.steps >= 1
    assert svc.engine.status.last_error is None
    svc.stop()
