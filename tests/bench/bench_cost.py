"""Cost of the models per sample per series, with many series in one bank, on one core.

    .venv/bin/python -m tests.bench.bench_cost [--series 10000,100000] [--steps 200] [--json FILE]

Synthetic series (daily cycle, noise, random phases; 60 s steps). Each bank first learns
``--warmup`` steps (past every warm-up), then ``--steps`` steps are timed:

- ``pair``: the default forecaster + detector, vectorised: expect, score, learn, and the
  horizon-12 forecast of every series at every step (what the engine needs);
- ``bank``: the same through ``ModelBank`` (domain objects: scores, reasons, forecasts);
- river SNARIMAX and HalfSpaceTrees per series (their natural form), on fewer series:
  their cost is linear in the number of series.

Memory per series is the size of the state arrays (vectorised kinds) or of the pickled
model (river). Both wall-clock and CPU time of this process are reported: on a machine
shared with other work the wall clock includes time spent waiting for a core, the CPU
time does not (``make bench-cost`` limits BLAS to one thread). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from intelligence.vocabulary import SeriesKey
from models.bank import ModelBank
from models.kinds import ModelSpec, make_detector, make_forecaster

STEP, H = 60.0, 12


def _values(n: int, steps: np.ndarray, seed: int = 0) -> np.ndarray:
    """[len(steps), n] values: a daily cycle per series with its own phase, level and noise."""
    rng = np.random.default_rng(seed)
    phase, level = rng.uniform(0, 2 * np.pi, n), rng.uniform(10, 100, n)
    t = steps[:, None] * STEP
    return level * (1 + 0.3 * np.sin(2 * np.pi * t / 86_400 + phase)) + rng.normal(0, 1, (len(steps), n))


def bench_pair(n: int, warmup: int, steps: int, forecaster: str, detector: str) -> dict[str, float]:
    f: Any = make_forecaster(forecaster, step_seconds=STEP, horizon=H)
    d: Any = make_detector(detector)
    slots = np.arange(n)
    f.ensure(n)
    d.ensure(n)
    ys = _values(n, np.arange(warmup + steps))
    timed = cpu = 0.0
    for i in range(warmup + steps):
        t = np.full(n, i * STEP)
        started, started_cpu = time.perf_counter(), time.process_time()
        point, _, _ = f.expect_many(slots, t)
        d.score_many(slots, t, ys[i], point)
        d.learn_many(slots, t, ys[i], point)
        f.learn_many(slots, t, ys[i])
        f.forecast_many(slots, H)
        if i >= warmup:
            timed += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
        if i % 100 == 0:
            print(f"  pair {n} series: step {i}/{warmup + steps}", file=sys.stderr)
    return {
        "us_per_sample": 1e6 * timed / (steps * n),
        "cpu_us_per_sample": 1e6 * cpu / (steps * n),
        "bytes_per_series": float(f.bytes_per_series() + d.bytes_per_series()),
    }


def bench_bank(n: int, warmup: int, steps: int, forecaster: str, detector: str) -> dict[str, float]:
    spec = ModelSpec.of(forecaster, detector, {"step_seconds": STEP, "horizon": H}, {})
    bank = ModelBank(lambda key: spec)
    keys = [SeriesKey.of(f"c{j % 10}", "cpu", {"namespace": "ns", "workload": f"w{j}"}) for j in range(n)]
    ys = _values(n, np.arange(warmup + steps), seed=1)
    timed = cpu = 0.0
    for i in range(warmup + steps):
        t = np.array([i * STEP])
        started, started_cpu = time.perf_counter(), time.process_time()
        bank.observe_many([(k, t, ys[i, j : j + 1]) for j, k in enumerate(keys)], report_at=0.7)
        bank.forecast_many(keys, H, STEP)
        if i >= warmup:
            timed += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
        if i % 100 == 0:
            print(f"  bank {n} series: step {i}/{warmup + steps}", file=sys.stderr)
    return {"us_per_sample": 1e6 * timed / (steps * n), "cpu_us_per_sample": 1e6 * cpu / (steps * n)}


def bench_river(kind: str, n: int, warmup: int, steps: int) -> dict[str, float]:
    """A river kind per series, as the bank runs it (expect, score or learn, forecast)."""
    ys = _values(n, np.arange(warmup + steps), seed=2)
    if kind == "half_space_trees":
        models: list[Any] = [make_detector(kind) for _ in range(n)]
    else:
        models = [make_forecaster(kind, step_seconds=STEP, horizon=H) for _ in range(n)]
    timed = cpu = 0.0
    for i in range(warmup + steps):
        started, started_cpu = time.perf_counter(), time.process_time()
        for j, m in enumerate(models):
            y = float(ys[i, j])
            if kind == "half_space_trees":
                m.score_one(i * STEP, y, None)
                m.learn_one(i * STEP, y, None)
            else:
                m.expect(i * STEP)
                m.learn_one(i * STEP, y)
                m.forecast(H)
        if i >= warmup:
            timed += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
    size = float(np.mean([len(pickle.dumps(m)) for m in models]))
    return {
        "us_per_sample": 1e6 * timed / (steps * n),
        "cpu_us_per_sample": 1e6 * cpu / (steps * n),
        "bytes_per_series": size,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default="10000,100000")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--forecaster", default="seasonal_ar")
    ap.add_argument("--detector", default="record_ratio")
    ap.add_argument("--river-series", type=int, default=200)
    ap.add_argument("--bank-max", type=int, default=100_000, help="the bank runs with at most this many series")
    ap.add_argument("--json", type=Path, default=Path("bench-results/cost.json"))
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    for n in (int(s) for s in args.series.split(",")):
        pair = bench_pair(n, args.warmup, args.steps, args.forecaster, args.detector)
        rows.append({"what": f"{args.forecaster} + {args.detector} (vectorised)", "series": n, **pair})
        if n <= args.bank_max:
            bank = bench_bank(n, args.warmup, args.steps, args.forecaster, args.detector)
            rows.append({"what": "  the same through ModelBank (domain objects)", "series": n, **bank})
    for kind in ("snarimax", "half_space_trees"):
        print(f"  river {kind}, {args.river_series} series ...", file=sys.stderr)
        r = bench_river(kind, args.river_series, 50, 50)
        rows.append({"what": f"river {kind} (per series)", "series": args.river_series, **r})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nModel cost on one core (horizon {H}, step {STEP:.0f} s), microseconds per sample per series")
    print("targets with 100,000 series: the pair <= 1.0, through ModelBank <= 2.0, state <= 6 KiB per series")
    print(f"{'model':<52} {'series':>8} {'us wall':>8} {'us CPU':>8} {'KiB/series':>11}")
    for r in rows:
        kib = f"{r['bytes_per_series'] / 1024:11.2f}" if "bytes_per_series" in r else f"{'':>11}"
        print(f"{r['what']:<52} {r['series']:>8} {r['us_per_sample']:8.2f} {r['cpu_us_per_sample']:8.2f} {kib}")
    print(f"peak RSS of the run: {peak_mb:.0f} MiB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "peak_rss_mib": peak_mb}, indent=2))
    print(f"written {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
