"""Model benchmark on real data: NAB anomaly detection and Azure VM CPU forecasting.

    .venv/bin/python -m tests.bench.bench_models [--task nab,azure] [--detectors residual_robust,half_space_trees]
        [--forecasters seasonal_holt,snarimax] [--files N] [--series N] [--json FILE]

Reads ../shared/eval at run time only (the project does not ship or depend on it):
- NAB: every file through the same online code the service runs (score, then learn, one
  fresh model per file, one configuration for the corpus), scored by NAB's rules with
  ``shared/eval/nab/nab_score.py``; the published scoreboard is in its README.
- Azure VM CPU traces: the protocol of ``shared/eval/traces/forecast_baselines.py``
  (rolling origins over the last 7 days, one every 12 steps, horizon 12; MASE scaled by
  the in-sample seasonal-naive error, sMAPE) plus the coverage of the 90% band.
Costs are wall time per sample on one core. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import json
import math
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from intelligence.evaluation.backtest import BacktestOptions, run_series
from models.kinds import FORECASTERS, kind_class, make_forecaster

SHARED = Path(__file__).resolve().parents[3] / "shared" / "eval"
SEASON, H, ORIGIN_EVERY, TEST_DAYS = 288, 12, 12, 7


def _nab_module():
    spec = importlib.util.spec_from_file_location("nab_score", SHARED / "nab" / "nab_score.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nab_score"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _nab_file(args: tuple[str, str, str]) -> tuple[str, np.ndarray, float]:
    relpath, detector, forecaster = args
    with (SHARED / "nab" / "data" / relpath).open() as fh:
        rows = list(csv.DictReader(fh))
    from collectors.replay import infer_step, parse_timestamp

    epoch = np.array([parse_timestamp(r["timestamp"], relpath) for r in rows])
    values = np.array([float(r["value"]) for r in rows])
    options = BacktestOptions(horizon=0, anomaly=True, forecaster=forecaster, detector=detector)
    started = time.perf_counter()
    result = run_series(relpath, epoch, values, infer_step(epoch), options)
    return relpath, np.nan_to_num(result.scores, nan=0.0), time.perf_counter() - started


def bench_nab(detector: str, forecaster: str, files: int | None) -> dict[str, float]:
    nab = _nab_module()
    corpus = nab.NabCorpus(str(SHARED / "nab"))
    relpaths = corpus.relpaths[:files] if files else corpus.relpaths
    with Pool(2) as pool:
        results = pool.map(_nab_file, [(r, detector, forecaster) for r in relpaths])
    scores = {r: s for r, s, _ in results}
    seconds = sum(t for _, _, t in results)
    rows = sum(len(s) for s in scores.values())
    scored = corpus.score(scores, allow_missing=files is not None)
    out = {p: float(scored[p]["normalized"]) for p in scored}
    out.update({"rows": rows, "us_per_sample": 1e6 * seconds / rows, "files": len(relpaths)})
    return out


def _load_azure() -> tuple[list[str], np.ndarray]:
    with gzip.open(SHARED / "traces" / "azure_vm_cpu_avg_50.csv.gz", "rt") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = np.array([[float(c) for c in row[1:]] for row in reader])
    return header[1:], data


def _azure_series(args: tuple[str, np.ndarray, str, dict[str, Any]]) -> dict[str, float]:
    sid, y, kind, params = args
    n = len(y)
    test_start = n - TEST_DAYS * SEASON
    origins = set(range(test_start, n - H + 1, ORIGIN_EVERY))
    hist = y[:test_start]
    scale = float(np.mean(np.abs(hist[SEASON:] - hist[:-SEASON])))
    model = make_forecaster(kind, **{"step_seconds": 300.0, "horizon": H, "interval": 0.9, **params})
    errors, smapes, inside, total = [], [], 0, 0
    learn_seconds = 0.0
    for t in range(n):
        if t in origins:
            fc = model.forecast(H)
            actual = y[t : t + H]
            point = np.where(np.isfinite(fc.point), fc.point, y[t - 1])
            errors.append(np.abs(actual - point))
            denom = np.abs(actual) + np.abs(point)
            smapes.append(np.where(denom > 0, 200.0 * np.abs(actual - point) / np.where(denom > 0, denom, 1), 0.0))
            band = np.isfinite(fc.lower) & np.isfinite(fc.upper)
            inside += int(np.sum((actual >= fc.lower) & (actual <= fc.upper) & band))
            total += int(band.sum())
        started = time.perf_counter()
        model.learn_one(t * 300.0, float(y[t]))
        if t >= test_start:
            learn_seconds += time.perf_counter() - started
    err = np.concatenate(errors)
    return {
        "series": sid,
        "mase": float(err.mean() / scale) if scale > 0 else math.nan,
        "smape": float(np.concatenate(smapes).mean()),
        "coverage": inside / total if total else math.nan,
        "us_per_sample": 1e6 * learn_seconds / (n - test_start),
    }


def _azure_fleet(ids: list[str], data: np.ndarray, kind: str, params: dict[str, Any]) -> list[dict[str, float]]:
    """The same protocol for a vectorised kind: every series in one model, one row at a time."""
    n, count = data.shape
    test_start = n - TEST_DAYS * SEASON
    origins = set(range(test_start, n - H + 1, ORIGIN_EVERY))
    hist = data[:test_start]
    scale = np.mean(np.abs(hist[SEASON:] - hist[:-SEASON]), axis=0)
    model: Any = make_forecaster(kind, **{"step_seconds": 300.0, "horizon": H, "interval": 0.9, **params})
    slots = np.arange(count)
    model.ensure(count)
    errors, smapes, inside, total = [], [], np.zeros(count), np.zeros(count)
    learn_seconds = 0.0
    for t in range(n):
        if t in origins:
            point, lower, upper = model.forecast_many(slots, H)
            actual = data[t : t + H].T
            point = np.where(np.isfinite(point), point, data[t - 1][:, None])
            errors.append(np.abs(actual - point).mean(axis=1))
            denom = np.abs(actual) + np.abs(point)
            smape = np.where(denom > 0, 200.0 * np.abs(actual - point) / np.where(denom > 0, denom, 1), 0.0)
            smapes.append(smape.mean(axis=1))
            band = np.isfinite(lower) & np.isfinite(upper)
            inside += np.sum((actual >= lower) & (actual <= upper) & band, axis=1)
            total += band.sum(axis=1)
        started = time.perf_counter()
        model.learn_many(slots, np.full(count, t * 300.0), data[t].copy())
        if t >= test_start:
            learn_seconds += time.perf_counter() - started
    err, sm = np.mean(errors, axis=0), np.mean(smapes, axis=0)
    return [
        {
            "series": ids[j],
            "mase": float(err[j] / scale[j]) if scale[j] > 0 else math.nan,
            "smape": float(sm[j]),
            "coverage": float(inside[j] / total[j]) if total[j] else math.nan,
            "us_per_sample": 1e6 * learn_seconds / ((n - test_start) * count),
        }
        for j in range(count)
    ]


def bench_azure(kind: str, series: int | None, params: dict[str, Any] | None = None) -> dict[str, float]:
    ids, data = _load_azure()
    count = series or len(ids)
    if getattr(kind_class(FORECASTERS, "forecaster", kind), "vectorised", False):
        per = _azure_fleet(ids[:count], data[:, :count], kind, params or {})
    else:
        with Pool(2) as pool:
            per = pool.map(_azure_series, [(ids[j], data[:, j], kind, params or {}) for j in range(count)])
    mase = np.array([p["mase"] for p in per if math.isfinite(p["mase"])])
    return {
        "mase_mean": float(mase.mean()),
        "mase_median": float(np.median(mase)),
        "smape": float(np.mean([p["smape"] for p in per])),
        "coverage": float(np.nanmean([p["coverage"] for p in per])),
        "us_per_sample": float(np.mean([p["us_per_sample"] for p in per])),
        "series": count,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="nab,azure")
    ap.add_argument("--detectors", default="record_ratio,residual_likelihood,half_space_trees")
    ap.add_argument("--forecasters", default="seasonal_ar,ar_rls,seasonal_holt,snarimax")
    ap.add_argument("--nab-forecaster", default="seasonal_ar", help="the forecaster under the NAB detectors")
    ap.add_argument("--files", type=int, default=None, help="only the first N NAB files (not comparable)")
    ap.add_argument("--series", type=int, default=None, help="only the first N Azure series")
    ap.add_argument("--forecaster-params", type=json.loads, default={}, help="JSON params for every forecaster")
    ap.add_argument("--json", type=Path, default=Path("bench-results/models.json"))
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"benchmark data not found at {SHARED}", file=sys.stderr)
        return 2
    tasks = set(args.task.split(","))
    report: dict[str, dict[str, dict[str, float]]] = {"nab": {}, "azure": {}}
    if "nab" in tasks:
        for det in args.detectors.split(","):
            print(f"NAB: {det} on {args.nab_forecaster} ...", file=sys.stderr)
            report["nab"][det] = bench_nab(det, args.nab_forecaster, args.files)
    if "azure" in tasks:
        for kind in args.forecasters.split(","):
            print(f"Azure VM CPU: {kind} ...", file=sys.stderr)
            report["azure"][kind] = bench_azure(kind, args.series, args.forecaster_params)
    if report["nab"]:
        print("\nNAB (normalised score; published: HTM 70.1, KNN-CAD 58.0, Skyline 58.2, RCF 51.7)")
        print(f"{'detector':<20} {'standard':>9} {'low FP':>8} {'low FN':>8} {'us/sample':>10}")
        for det, r in report["nab"].items():
            print(
                f"{det:<20} {r['standard']:9.2f} {r['reward_low_FP_rate']:8.2f} {r['reward_low_FN_rate']:8.2f} "
                f"{r['us_per_sample']:10.1f}"
            )
    if report["azure"]:
        print("\nAzure VM CPU, horizon 12 (river SNARIMAX as shared/ runs it: MASE 0.952 / 0.676, sMAPE 18.25%)")
        print(f"{'forecaster':<20} {'MASE mean':>10} {'median':>8} {'sMAPE %':>8} {'cover90':>8} {'us/sample':>10}")
        for kind, r in report["azure"].items():
            print(
                f"{kind:<20} {r['mase_mean']:10.3f} {r['mase_median']:8.3f} {r['smape']:8.2f} "
                f"{r['coverage']:8.3f} {r['us_per_sample']:10.1f}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
