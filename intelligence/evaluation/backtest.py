"""Backtests: run forecaster and detector over a CSV, strictly online, and measure accuracy.

Each value column is an independent series with fresh models. At row t the
forecasts written are made from rows before t, the anomaly score uses rows up to
and including t, then row t is learnt. No state is shared between series.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collectors.replay import ReplayFormatError, infer_step, read_wide_csv
from models.kinds import BadModelParams, UnknownModelKind, make_detector, make_forecaster


class BacktestError(Exception):
    """Bad input or options; the message names the file, row and column."""


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    horizon: int = 12
    anomaly: bool = True
    forecast_start: int = 0
    forecast_every: int = 1
    forecaster: str = "seasonal_ar"
    detector: str = "record_ratio"
    interval: float = 0.9
    anomaly_threshold: float = 0.55
    label_window: int = 12  # rows either side of a labelled anomaly in which an alarm counts as detecting it


@dataclass
class SeriesResult:
    name: str
    scores: np.ndarray
    yhat: np.ndarray  # [rows, horizon]
    lo: np.ndarray
    hi: np.ndarray


def run_series(name: str, epoch: np.ndarray, y: np.ndarray, step: float, options: BacktestOptions) -> SeriesResult:
    n, h = len(y), options.horizon
    try:
        forecaster = make_forecaster(
            options.forecaster, step_seconds=step, horizon=max(h, 1), interval=options.interval
        )
        detector = make_detector(options.detector)
    except (UnknownModelKind, BadModelParams) as exc:
        raise BacktestError(str(exc)) from None
    scores = np.full(n, np.nan)
    yhat = np.full((n, h), np.nan)
    lo = np.full((n, h), np.nan)
    hi = np.full((n, h), np.nan)
    for t in range(n):
        if h and t >= options.forecast_start and (t - options.forecast_start) % options.forecast_every == 0:
            fc = forecaster.forecast(h)  # from rows before t only
            yhat[t], lo[t], hi[t] = fc.point, fc.lower, fc.upper
        value = float(y[t])
        if options.anomaly and math.isfinite(value):
            expected = forecaster.expect(float(epoch[t]))
            scores[t], _ = detector.score_one(float(epoch[t]), value, expected)
            detector.learn_one(float(epoch[t]), value, expected)
        forecaster.learn_one(float(epoch[t]), value)
    return SeriesResult(name, scores, yhat, lo, hi)


def accuracy(y: np.ndarray, r: SeriesResult, threshold: float) -> dict[str, float]:
    """MASE (scaled by the in-sample one-step naive MAE), sMAPE (%), band coverage, anomaly count."""
    n, h = r.yhat.shape
    actual = np.full((n, h), np.nan)
    for k in range(h):
        actual[: n - k, k] = y[k:]
    ok = np.isfinite(actual) & np.isfinite(r.yhat)
    out: dict[str, float] = {"anomalies": float(np.sum(r.scores >= threshold))}
    if ok.any():
        err = np.abs(actual - r.yhat)[ok]
        finite = y[np.isfinite(y)]
        naive = np.mean(np.abs(np.diff(finite))) if finite.size > 1 else math.nan
        denom = (np.abs(actual) + np.abs(r.yhat))[ok]
        out["mase"] = float(np.mean(err) / naive) if naive and naive > 0 else math.nan
        out["smape"] = float(100.0 * np.mean(np.where(denom > 0, 2.0 * err / np.where(denom > 0, denom, 1), 0.0)))
        band = ok & np.isfinite(r.lo) & np.isfinite(r.hi)
        out["coverage"] = (
            float(np.mean((actual[band] >= r.lo[band]) & (actual[band] <= r.hi[band]))) if band.any() else math.nan
        )
        out["forecasts"] = float(ok.sum())
    return out


def read_labels(path: Path) -> dict[str | None, list[float]]:
    """Labelled anomalies: a CSV with ``timestamp`` and optionally ``series`` (no series: every series)."""
    from collectors.replay import parse_timestamp

    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise BacktestError(f"{path}: cannot read the labels: {exc.strerror}") from None
    if rows and "timestamp" not in rows[0]:
        raise BacktestError(f"{path}: the labels need a 'timestamp' column (and optionally 'series')")
    labels: dict[str | None, list[float]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            when = parse_timestamp(row["timestamp"], f"{path}:{line}")
        except ReplayFormatError as exc:
            raise BacktestError(str(exc)) from None
        labels.setdefault(row.get("series") or None, []).append(when)
    return labels


def detection(
    scores: np.ndarray, epoch: np.ndarray, labelled: list[float], threshold: float, window: int
) -> dict[str, float]:
    """Precision and recall of the alarms (score >= threshold) against labelled anomalies, +/- ``window`` rows."""
    alarms = np.flatnonzero(np.nan_to_num(scores, nan=0.0) >= threshold)
    rows = np.clip(np.searchsorted(epoch, labelled), 0, len(epoch) - 1) if labelled else np.zeros(0, dtype=np.int64)
    near = np.abs(alarms[:, None] - rows[None, :]) <= window if rows.size else np.zeros((alarms.size, 0), bool)
    true_alarms = int(near.any(axis=1).sum()) if alarms.size else 0
    found = int(near.any(axis=0).sum()) if alarms.size else 0
    precision = true_alarms / alarms.size if alarms.size else math.nan
    recall = found / rows.size if rows.size else math.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else math.nan
    return {"precision": precision, "recall": recall, "f1": f1, "labels": float(rows.size)}


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def _rows(
    raw_ts: list[str], names: list[str], values: np.ndarray, results: list[SeriesResult], options: BacktestOptions
) -> Iterator[list[str]]:
    for t, stamp in enumerate(raw_ts):
        for j, r in enumerate(results):
            row = [stamp, names[j], _cell(values[t, j]), _cell(r.scores[t]) if options.anomaly else ""]
            if options.horizon:
                row += [_cell(v) for v in r.yhat[t]] + [_cell(v) for v in r.lo[t]] + [_cell(v) for v in r.hi[t]]
            yield row


def run_backtest(
    input_path: Path,
    output_path: Path,
    options: BacktestOptions,
    json_out: Path | None = None,
    figures: dict[str, Any] | None = None,
    labels: dict[str | None, list[float]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> str:
    """Run the backtest, write the CSV (and JSON); returns the printed summary, fills ``figures`` if given.

    ``progress(phase, series done, series)`` is called after each series.
    """
    try:
        raw_ts, epoch, names, values = read_wide_csv(input_path)
    except ReplayFormatError as exc:
        raise BacktestError(str(exc)) from None
    step = infer_step(epoch)
    results: list[SeriesResult] = []
    per_series: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        r = run_series(name, epoch, values[:, j], step, options)
        results.append(r)
        per_series[name] = accuracy(values[:, j], r, options.anomaly_threshold)
        if labels is not None and options.anomaly:
            labelled = sorted([*labels.get(None, []), *labels.get(name, [])])
            per_series[name].update(
                detection(r.scores, epoch, labelled, options.anomaly_threshold, options.label_window)
            )
        if progress is not None:
            progress(f"backtest {input_path.name}", j + 1, len(names))
    header = ["timestamp", "series", "value", "anomaly_score"]
    h = options.horizon
    header += (
        [f"yhat_{k}" for k in range(1, h + 1)]
        + [f"lo_{k}" for k in range(1, h + 1)]
        + [f"hi_{k}" for k in range(1, h + 1)]
    )
    try:
        with output_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(_rows(raw_ts, names, values, results, options))
    except OSError as exc:
        raise BacktestError(f"{output_path}: cannot write: {exc.strerror}") from None

    def mean_of(metric: str) -> float:
        vals = [f[metric] for f in per_series.values() if metric in f and math.isfinite(f[metric])]
        return statistics.fmean(vals) if vals else math.nan

    overall = {m: mean_of(m) for m in ("mase", "smape", "coverage", "precision", "recall", "f1")}
    overall = {m: v for m, v in overall.items() if m in ("mase", "smape", "coverage") or math.isfinite(v)}
    overall["anomalies"] = sum(f["anomalies"] for f in per_series.values())
    payload = {
        "input": str(input_path),
        "step_seconds": step,
        "options": asdict(options),
        "overall": overall,
        "series": per_series,
    }
    if figures is not None:
        figures.update(payload)
    if json_out is not None:
        json_out.write_text(json.dumps(_json_safe(payload), indent=2), encoding="utf-8")
    lines = [f"{len(names)} series x {len(raw_ts)} rows, step {step:g}s, {options.forecaster} + {options.detector}"]
    lines.append(f"{'series':<24} {'MASE':>7} {'sMAPE%':>7} {'cover':>6} {'anom':>5}")
    for name, f in [*list(per_series.items()), ("mean / total", overall)]:
        lines.append(
            f"{name[:24]:<24} {f.get('mase', math.nan):7.3f} {f.get('smape', math.nan):7.2f} "
            f"{f.get('coverage', math.nan):6.3f} {int(f.get('anomalies', 0)):5d}"
        )
    if "recall" in overall:
        lines.append(
            f"alarms against the labels (+/- {options.label_window} rows): "
            f"precision {overall.get('precision', math.nan):.2f}, recall {overall['recall']:.2f}, "
            f"F1 {overall.get('f1', math.nan):.2f}"
        )
    return "\n".join(lines)
