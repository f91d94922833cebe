import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app


def write_csv(path, rows, header=("timestamp", "value")):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def cycle(n: int, spike_at: int | None = None) -> list[float]:
    rng = np.random.default_rng(3)
    y = 50 + 20 * np.sin(2 * np.pi * np.arange(n) / 48) + rng.normal(0, 1, n)
    if spike_at is not None:
        y[spike_at] += 60
    return y.tolist()


def run(tmp_path, *args):
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["backtest", "--output", str(out), *args])
    return result, out


def read(out):
    with out.open() as fh:
        return list(csv.DictReader(fh))


def test_wide_file_gives_one_line_per_row_and_series_with_scores_and_bands(tmp_path):
    ys = cycle(400, spike_at=300)
    zs = cycle(400)
    rows = [(f"2026-01-01 {i // 12:02d}:{(i % 12) * 5:02d}:00", ys[i], "" if i == 50 else zs[i]) for i in range(288)]
    rows += [(f"2026-01-02T{(i - 288) // 12:02d}:{(i % 12) * 5:02d}:00Z", ys[i], zs[i]) for i in range(288, 400)]
    path = write_csv(tmp_path / "in.csv", rows, ("timestamp", "a", "b"))
    result, out = run(tmp_path, "--input", str(path), "--horizon", "3", "--json", str(tmp_path / "acc.json"))
    assert result.exit_code == 0, result.output
    lines = read(out)
    assert list(lines[0]) == ["timestamp", "series", "value", "anomaly_score"] + [
        f"{p}_{k}" for p in ("yhat", "lo", "hi") for k in (1, 2, 3)
    ]
    assert len(lines) == 800
    assert lines[0]["yhat_1"] == ""  # nothing learnt before the first row
    b50 = next(r for r in lines if r["series"] == "b" and r["timestamp"].endswith("04:10:00"))
    assert b50["value"] == ""
    scores = [float(r["anomaly_score"]) for r in lines if r["series"] == "a" and r["anomaly_score"]]
    assert int(np.argmax(scores)) == 300
    figures = json.loads((tmp_path / "acc.json").read_text())
    assert 0.7 < figures["overall"]["coverage"] < 1.0
    assert 0 < figures["overall"]["mase"] < 3  # a 4-hour cycle: the default looks for a daily one
    assert "MASE" in result.output


def test_no_look_ahead_changing_row_t_does_not_change_its_forecasts(tmp_path):
    ys = cycle(200)
    base = [(i * 300, y) for i, y in enumerate(ys)]
    changed = list(base)
    changed[150] = (150 * 300, 1e6)
    _, out1 = run(tmp_path, "--input", str(write_csv(tmp_path / "a.csv", base)), "--horizon", "2")
    first = read(out1)
    _, out2 = run(tmp_path, "--input", str(write_csv(tmp_path / "b.csv", changed)), "--horizon", "2")
    second = read(out2)
    for col in ("yhat_1", "yhat_2", "lo_1", "hi_2"):
        assert first[150][col] == second[150][col]
    assert first[151]["yhat_1"] != second[151]["yhat_1"]


def test_forecast_every_k_rows_and_tasks(tmp_path):
    path = write_csv(tmp_path / "in.csv", [(i * 60, y) for i, y in enumerate(cycle(100))])
    result, out = run(
        tmp_path, "--input", str(path), "--forecast-start", "50", "--forecast-every", "10", "--tasks", "forecast"
    )
    assert result.exit_code == 0, result.output
    lines = read(out)
    filled = [i for i, r in enumerate(lines) if r["yhat_1"]]
    assert filled == [50, 60, 70, 80, 90]
    assert all(r["anomaly_score"] == "" for r in lines)
    result, out = run(tmp_path, "--input", str(path), "--horizon", "0")
    assert list(read(out)[0]) == ["timestamp", "series", "value", "anomaly_score"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,value\n1,2\n", "first column must be 'timestamp'"),
        ("timestamp\n1\n", "no value column"),
        ("timestamp,value\n1,abc\n", "line 2, column 'value': 'abc' is not a number"),
        ("timestamp,value\nyesterday,1\n", "neither ISO 8601 nor epoch seconds"),
        ("timestamp,value\n1,2,3\n", "line 2: 3 cells"),
        ("", "empty file"),
    ],
)
def test_bad_input_is_a_clear_error_without_traceback(tmp_path, text, message):
    path = tmp_path / "in.csv"
    path.write_text(text)
    result, _ = run(tmp_path, "--input", str(path))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_model_kind(tmp_path):
    path = write_csv(tmp_path / "in.csv", [(i, 1.0) for i in range(3)])
    result, _ = run(tmp_path, "--input", str(path), "--forecaster", "nope")
    assert result.exit_code == 2
    assert "unknown forecaster kind 'nope'" in result.output
