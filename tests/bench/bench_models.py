"""Model benchmark on real data, in-sample and held out: NAB anomaly detection and Azure VM CPU forecasting.

    .venv/bin/python -m tests.bench.bench_models [--task nab,azure] [--detectors record_ratio,half_space_trees]
        [--forecasters seasonal_ar,snarimax] [--json FILE]

Reads ../shared/eval at run time only (the project does not ship or depend on it). The
protocol is in :mod:`tests.bench.protocol`: every tuned value is chosen on one part of a
set and reported on the other.

- NAB: every file through the same online code the service runs (score, then learn, one
  fresh model per file), scored by NAB's rules with ``shared/eval/nab/nab_score.py``.
  Vectorised detectors run all files at once, one slot per file (rounds of the r-th row
  of every file, as a fleet does); the others run file by file. Each detector's candidate
  configurations (``NAB_CANDIDATES``) all run; the one with the best standard score on
  half A is reported on half B and the reverse, and the shipped default on all 58 files.
- Azure VM CPU traces: the protocol of ``shared/eval/traces/forecast_baselines.py``
  (rolling origins over the last 7 days, one every 12 steps, horizon 12; MASE scaled by
  the in-sample seasonal-naive error, sMAPE) plus the coverage of the 90% band per step
  ahead. Each forecaster's candidates (``AZURE_CANDIDATES``) are chosen on VMs 1-25 by
  MASE mean + median and reported on VMs 26-50.

Prints tables (in-sample and held-out side by side) and writes JSON.
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
from models.kinds import DETECTORS, FORECASTERS, is_vectorised, make_detector, make_forecaster
from tests.bench.protocol import AZURE_HELD_OUT, AZURE_TUNE, choose, mase_summary, nab_halves

SHARED = Path(__file__).resolve().parents[3] / "shared" / "eval"
SEASON, H, ORIGIN_EVERY, TEST_DAYS = 288, 12, 12, 7

# Candidate configurations per kind: the protocol chooses among them on one half. The first
# is the shipped default; a kind without an entry runs its defaults only.
NAB_CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "record_ratio": [
        {},
        {"channels": ("fast", "slow", "season", "range", "shift", "burst")},  # without the week and vol channels
        {"hold": 240},
        {"alarm": 0.6},
    ],
}
AZURE_CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "seasonal_ar": [{}, {"refit": 48}, {"p": 6}, {"level_seconds": 0.0}],
}


# -- NAB ------------------------------------------------------------------------------------------
def _nab_module() -> Any:
    spec = importlib.util.spec_from_file_location("nab_score", SHARED / "nab" / "nab_score.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nab_score"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _nab_data(relpath: str) -> tuple[np.ndarray, np.ndarray]:
    from collectors.replay import parse_timestamp

    with (SHARED / "nab" / "data" / relpath).open() as fh:
        rows = list(csv.DictReader(fh))
    epoch = np.array([parse_timestamp(r["timestamp"], relpath) for r in rows])
    return epoch, np.array([float(r["value"]) for r in rows])


def _nab_file(args: tuple[str, np.ndarray, np.ndarray, str, dict[str, Any], str]) -> np.ndarray:
    """One file through a per-series detector (the backtest's loop)."""
    from collectors.replay import infer_step

    relpath, epoch, values, detector, params, forecaster = args
    options = BacktestOptions(horizon=0, anomaly=True, forecaster=forecaster, detector=detector)
    if params:
        raise ValueError(f"per-series detector {detector!r}: candidates with params are not supported")
    return np.nan_to_num(run_series(relpath, epoch, values, infer_step(epoch), options).scores, nan=0.0)


def nab_scores_vectorised(
    data: dict[str, tuple[np.ndarray, np.ndarray]], detector: str, params: dict[str, Any], forecaster: str
) -> dict[str, np.ndarray]:
    """Every file in its own slot of one vectorised detector (and forecaster per sampling step), row by row.

    Round ``r`` holds row ``r`` of every file that has one: the files are ordered by length,
    so the active slots are always ``0..k``. Each round expects, scores, then learns.
    """
    from collectors.replay import infer_step

    names = sorted(data, key=lambda r: -len(data[r][0]))
    lengths = np.array([len(data[r][0]) for r in names])
    steps = np.array([infer_step(data[r][0]) for r in names])
    d: Any = make_detector(detector, **params)
    d.ensure(len(names))
    groups = []  # (forecaster, slot positions) per sampling step: the forecaster's step_seconds is a param
    for step in np.unique(steps):
        f: Any = make_forecaster(forecaster, step_seconds=float(step), horizon=1, interval=0.9)
        where = np.flatnonzero(steps == step)
        f.ensure(len(names))
        groups.append((f, where))
    t_all = np.full((len(names), lengths.max()), np.nan)
    y_all = np.full_like(t_all, np.nan)
    for i, r in enumerate(names):
        t_all[i, : lengths[i]], y_all[i, : lengths[i]] = data[r]
    scores = np.zeros_like(t_all)
    active = len(names)
    expected = np.empty(len(names))
    for row in range(int(lengths.max())):
        while lengths[active - 1] <= row:
            active -= 1
        slots = np.arange(active)
        t, y = t_all[:active, row], y_all[:active, row]
        for f, where in groups:
            mine = where[where < active]
            if mine.size:
                expected[mine] = f.expect_many(mine, t[mine])[0]
        scores[:active, row] = d.score_many(slots, t, y, expected[:active])
        d.learn_many(slots, t, y, expected[:active])
        for f, where in groups:
            mine = where[where < active]
            if mine.size:
                f.learn_many(mine, t[mine], y[mine])
    return {r: np.nan_to_num(np.clip(scores[i, : lengths[i]], 0.0, 1.0), nan=0.0) for i, r in enumerate(names)}


def nab_scores(
    data: dict[str, tuple[np.ndarray, np.ndarray]], detector: str, params: dict[str, Any], forecaster: str
) -> dict[str, np.ndarray]:
    if is_vectorised(DETECTORS, "detector", detector) and is_vectorised(FORECASTERS, "forecaster", forecaster):
        return nab_scores_vectorised(data, detector, params, forecaster)
    with Pool(2) as pool:
        out = pool.map(_nab_file, [(r, *data[r], detector, params, forecaster) for r in sorted(data)])
    return dict(zip(sorted(data), out, strict=True))


def _normalised(corpus: Any, scores: dict[str, np.ndarray], files: list[str], thresholds: dict | None = None) -> dict:
    subset = {r: scores[r] for r in files}
    scored = corpus.score(subset, allow_missing=len(files) < len(corpus.relpaths), fixed_thresholds=thresholds)
    return {p: {"score": float(v["normalized"]), "threshold": float(v["threshold"])} for p, v in scored.items()}


def bench_nab(detector: str, forecaster: str) -> dict[str, Any]:
    nab = _nab_module()
    corpus = nab.NabCorpus(str(SHARED / "nab"))
    data = {r: _nab_data(r) for r in corpus.relpaths}
    halves = dict(zip("AB", nab_halves(corpus.relpaths), strict=True))
    candidates = NAB_CANDIDATES.get(detector, [{}])
    runs: list[dict[str, Any]] = []
    for i, params in enumerate(candidates):
        started = time.perf_counter()
        scores = nab_scores(data, detector, params, forecaster)
        runs.append(
            {
                "params": params,
                "all": _normalised(corpus, scores, corpus.relpaths),
                **{h: _normalised(corpus, scores, files) for h, files in halves.items()},
                "scores": scores,
            }
        )
        print(
            f"  {detector} candidate {i + 1}/{len(candidates)} {params}: "
            f"all {runs[-1]['all']['standard']['score']:.2f}, "
            f"A {runs[-1]['A']['standard']['score']:.2f}, B {runs[-1]['B']['standard']['score']:.2f} "
            f"({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )
    out: dict[str, Any] = {"default": {"params": candidates[0], **{k: runs[0][k] for k in ("all", "A", "B")}}}
    for tune, held in (("A", "B"), ("B", "A")):
        best = choose([run[tune]["standard"]["score"] for run in runs])
        chosen = runs[best]
        carried = {p: v["threshold"] for p, v in chosen[tune].items()}
        out[f"tuned_on_{tune}"] = {
            "params": chosen["params"],
            "candidate": best,
            "in_sample": chosen[tune],
            "held_out": chosen[held],
            "held_out_threshold_carried": _normalised(corpus, chosen["scores"], halves[held], carried),
        }
    out["candidates"] = [{k: v for k, v in run.items() if k != "scores"} for run in runs]
    out["halves"] = halves
    return out


# -- Azure VM CPU traces ----------------------------------------------------------------------
def _load_azure() -> tuple[list[str], np.ndarray]:
    with gzip.open(SHARED / "traces" / "azure_vm_cpu_avg_50.csv.gz", "rt") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = np.array([[float(c) for c in row[1:]] for row in reader])
    return header[1:], data


def _per_series(errors: np.ndarray, smape: np.ndarray, inside: np.ndarray, total: np.ndarray, scale: float) -> dict:
    return {
        "mase": float(errors.mean() / scale) if scale > 0 else math.nan,
        "smape": float(smape.mean()),
        "coverage": float(inside.sum() / total.sum()) if total.sum() else math.nan,
        "coverage_by_step": (inside / np.maximum(total, 1)).tolist(),
    }


def _azure_series(args: tuple[np.ndarray, str, dict[str, Any]]) -> dict[str, Any]:
    """One VM through a per-series forecaster."""
    y, kind, params = args
    n = len(y)
    test_start = n - TEST_DAYS * SEASON
    origins = set(range(test_start, n - H + 1, ORIGIN_EVERY))
    hist = y[:test_start]
    scale = float(np.mean(np.abs(hist[SEASON:] - hist[:-SEASON])))
    model = make_forecaster(kind, **{"step_seconds": 300.0, "horizon": H, "interval": 0.9, **params})
    errors, smapes, inside, total = [], [], np.zeros(H), np.zeros(H)
    for t in range(n):
        if t in origins:
            fc = model.forecast(H)
            actual = y[t : t + H]
            point = np.where(np.isfinite(fc.point), fc.point, y[t - 1])
            errors.append(np.abs(actual - point))
            denom = np.abs(actual) + np.abs(point)
            smapes.append(np.where(denom > 0, 200.0 * np.abs(actual - point) / np.where(denom > 0, denom, 1), 0.0))
            band = np.isfinite(fc.lower) & np.isfinite(fc.upper)
            inside += (actual >= fc.lower) & (actual <= fc.upper) & band
            total += band
        model.learn_one(t * 300.0, float(y[t]))
    return _per_series(np.concatenate(errors), np.concatenate(smapes), inside, total, scale)


def _azure_fleet(data: np.ndarray, kind: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The same protocol for a vectorised kind: every VM in one model, one row at a time."""
    n, count = data.shape
    test_start = n - TEST_DAYS * SEASON
    origins = set(range(test_start, n - H + 1, ORIGIN_EVERY))
    hist = data[:test_start]
    scale = np.mean(np.abs(hist[SEASON:] - hist[:-SEASON]), axis=0)
    model: Any = make_forecaster(kind, **{"step_seconds": 300.0, "horizon": H, "interval": 0.9, **params})
    slots = np.arange(count)
    model.ensure(count)
    errors, smapes, inside, total = [], [], np.zeros((count, H)), np.zeros((count, H))
    for t in range(n):
        if t in origins:
            point, lower, upper = model.forecast_many(slots, H)
            actual = data[t : t + H].T
            point = np.where(np.isfinite(point), point, data[t - 1][:, None])
            errors.append(np.abs(actual - point))
            denom = np.abs(actual) + np.abs(point)
            smapes.append(np.where(denom > 0, 200.0 * np.abs(actual - point) / np.where(denom > 0, denom, 1), 0.0))
            band = np.isfinite(lower) & np.isfinite(upper)
            inside += (actual >= lower) & (actual <= upper) & band
            total += band
        model.learn_many(slots, np.full(count, t * 300.0), data[t].copy())
    err, sm = np.stack(errors, axis=1), np.stack(smapes, axis=1)  # [series, origins, H]
    return [_per_series(err[j], sm[j], inside[j], total[j], float(scale[j])) for j in range(count)]


def azure_per_series(data: np.ndarray, kind: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if is_vectorised(FORECASTERS, "forecaster", kind):
        return _azure_fleet(data, kind, params)
    with Pool(2) as pool:
        return pool.map(_azure_series, [(data[:, j], kind, params) for j in range(data.shape[1])])


def summarise(per: list[dict[str, Any]]) -> dict[str, Any]:
    mase = np.array([p["mase"] for p in per])
    by_step = np.array([p["coverage_by_step"] for p in per])
    return {
        **mase_summary(mase),
        "smape": float(np.mean([p["smape"] for p in per])),
        "coverage": float(np.nanmean([p["coverage"] for p in per])),
        "coverage_by_step": np.nanmean(by_step, axis=0).tolist(),
        "series": len(per),
    }


def bench_azure(kind: str) -> dict[str, Any]:
    _, data = _load_azure()
    candidates = AZURE_CANDIDATES.get(kind, [{}])
    runs: list[dict[str, Any]] = []
    for i, params in enumerate(candidates):
        started = time.perf_counter()
        per = azure_per_series(data, kind, params)
        tune, held = summarise(per[AZURE_TUNE]), summarise(per[AZURE_HELD_OUT])
        runs.append({"params": params, "tune": tune, "held_out": held, "all": summarise(per), "per_series": per})
        print(
            f"  {kind} candidate {i + 1}/{len(candidates)} {params}: VMs 1-25 MASE {tune['mase_mean']:.3f} / "
            f"{tune['mase_median']:.3f} ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )
    best = choose([-(run["tune"]["mase_mean"] + run["tune"]["mase_median"]) for run in runs])
    chosen = runs[best]
    return {
        "params": chosen["params"],
        "candidate": best,
        "in_sample": chosen["tune"],
        "held_out": chosen["held_out"],
        "all": chosen["all"],
        "default_is_chosen": best == 0,
        "candidates": [{k: v for k, v in run.items() if k != "per_series"} for run in runs],
        "per_series": chosen["per_series"],
    }


# -- report -------------------------------------------------------------------------------------
PROFILES = (("standard", "standard"), ("reward_low_FP_rate", "low FP"), ("reward_low_FN_rate", "low FN"))


def print_nab(report: dict[str, Any]) -> None:
    print("\nNAB, normalised score (published: HTM 70.1, CAD OSE 69.9, KNN-CAD 58.0, Skyline 58.2, RCF 51.7)")
    print("values chosen on one half, reported on the other; NAB's threshold optimised on the set scored")
    head = f"{'detector':<20} {'profile':<9} {'tuned A':>8} {'held B':>8} {'B carr.':>8} "
    print(head + f"{'tuned B':>8} {'held A':>8} {'A carr.':>8} {'default, all 58':>16}")
    for det, r in report.items():
        for profile, short in PROFILES:
            a, b = r["tuned_on_A"], r["tuned_on_B"]
            print(
                f"{det:<20} {short:<9} {a['in_sample'][profile]['score']:8.2f} {a['held_out'][profile]['score']:8.2f} "
                f"{a['held_out_threshold_carried'][profile]['score']:8.2f} {b['in_sample'][profile]['score']:8.2f} "
                f"{b['held_out'][profile]['score']:8.2f} {b['held_out_threshold_carried'][profile]['score']:8.2f} "
                f"{r['default']['all'][profile]['score']:16.2f}"
            )
        print(f"{'':<20} chosen on A: candidate {r['tuned_on_A']['candidate']}; on B: {r['tuned_on_B']['candidate']}")


def print_azure(report: dict[str, Any]) -> None:
    print("\nAzure VM CPU, horizon 12: chosen on VMs 1-25 (in-sample), reported on VMs 26-50 (held out)")
    print(
        f"{'forecaster':<16} {'VMs':<9} {'MASE mean':>10} {'median':>8} {'sMAPE %':>8} {'cover90':>8} "
        f"{'per step min-max':>17}"
    )
    for kind, r in report.items():
        for name in ("in_sample", "held_out", "all"):
            s = r[name]
            steps = s["coverage_by_step"]
            label = {"in_sample": "1-25", "held_out": "26-50", "all": "all 50"}[name]
            print(
                f"{kind:<16} {label:<9} {s['mase_mean']:10.3f} {s['mase_median']:8.3f} {s['smape']:8.2f} "
                f"{s['coverage']:8.3f} {min(steps):8.3f}-{max(steps):.3f}"
            )
        held = r["held_out"]["coverage_by_step"]
        print(f"{'':<16} held-out coverage by step: {' '.join(f'{c:.3f}' for c in held)}")
    base = report.get("snarimax")
    if base is not None:
        for kind, r in report.items():
            if kind == "snarimax":
                continue
            below = {
                name: {m: 1.0 - r[name][m] / base[name][m] for m in ("mase_mean", "mase_median")}
                for name in ("in_sample", "held_out")
            }
            r["below_snarimax"] = below
            print(
                f"{kind:<16} below river SNARIMAX on the same VMs: 1-25 {100 * below['in_sample']['mase_mean']:.1f}% / "
                f"{100 * below['in_sample']['mase_median']:.1f}%, 26-50 {100 * below['held_out']['mase_mean']:.1f}% / "
                f"{100 * below['held_out']['mase_median']:.1f}% (mean / median; target >= 10% held out)"
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="nab,azure")
    ap.add_argument("--detectors", default="record_ratio,residual_likelihood,half_space_trees")
    ap.add_argument("--forecasters", default="seasonal_ar,ar_rls,seasonal_holt,snarimax")
    ap.add_argument("--nab-forecaster", default="seasonal_ar", help="the forecaster under the NAB detectors")
    ap.add_argument("--json", type=Path, default=Path("bench-results/models.json"))
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"benchmark data not found at {SHARED}", file=sys.stderr)
        return 2
    tasks = set(args.task.split(","))
    report: dict[str, dict[str, Any]] = {"nab": {}, "azure": {}}
    if "nab" in tasks:
        for det in args.detectors.split(","):
            print(f"NAB: {det} on {args.nab_forecaster} ...", file=sys.stderr)
            report["nab"][det] = bench_nab(det, args.nab_forecaster)
    if "azure" in tasks:
        for kind in args.forecasters.split(","):
            print(f"Azure VM CPU: {kind} ...", file=sys.stderr)
            report["azure"][kind] = bench_azure(kind)
    if report["nab"]:
        print_nab(report["nab"])
    if report["azure"]:
        print_azure(report["azure"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwritten {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
