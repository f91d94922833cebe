"""Decision replay on serverless load: the predictive floor on Azure Functions, beside the reactive KPA, a naive
floor and an oracle.

    .venv/bin/python -m tests.bench.bench_serverless [--half A|B|both] [--json FILE] [policy options]

Load: ``../shared/eval/functions/`` (Azure Functions Trace 2019, Microsoft, CC BY 4.0; Shahrad et al.,
"Serverless in the Wild", USENIX ATC 2020; sampled by vHive/invitro), read at run time only: one day of
invocations per minute of 1,220 functions with their mean execution time. Offered concurrency (what
Knative's KPA scales on) = invocations per minute / 60 x mean execution time in seconds.

Knative's defaults: target 100 concurrent requests per pod at 70% utilisation, scale to zero (min-scale 0),
stable window 60 s, panic 6 s at 200%, 30 s scale-to-zero grace; a cold start of 10 s; floors in force 15 s
after their sample. The first hour is learnt (a new function), the other 23 are reported.

Two groups, each split into two halves by the function's hash (half A: first hex digit even; half B: odd),
so that every tuned value is chosen on one half and reported on the other:

busiest  the 50 functions of the half with the most offered concurrency over the day
bursty   the 20 timer-triggered functions of the half with the most invocations: idle in at least half of the
         minutes, invoked in at least 48, and whose activity recurs at a fixed period (the autocorrelation of
         "invoked in this minute" at some lag of 1 to 60 minutes is at least 0.9)

Targets (the issue), per group: under-provisioned seconds at most 20% of the reactive KPA's, cold-start hits
at most 10% of its, at no more than 10% more pod-hours.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from intelligence.decisions.specs import EnvelopeSpec, KnativeFloorSpec
from intelligence.evaluation.kpa import KpaSettings
from intelligence.evaluation.replay import ReplayOptions, ReplayReport, format_report, replay

SHARED = Path(__file__).resolve().parents[3] / "shared" / "eval" / "functions"
START = datetime(2019, 7, 15, tzinfo=UTC).timestamp()
STEP = 60.0
ACTUATION = 15.0  # seconds from a sample's time to a floor written on the cluster (the replay's default)
TARGETS = {"under_provisioned_seconds": -0.8, "cold_start_hits": -0.9, "replica_hours": 0.10}
BUSIEST, BURSTY = 50, 20


def read() -> tuple[list[str], np.ndarray]:
    """Function hashes and offered concurrency ``[minutes, functions]``."""
    with gzip.open(SHARED / "invocations.csv.gz", "rt") as fh:
        rows = list(csv.reader(fh))[1:]
    with gzip.open(SHARED / "durations.csv.gz", "rt") as fh:
        seconds = {r[0]: float(r[4]) / 1000.0 for r in list(csv.reader(fh))[1:]}
    names = [r[0] for r in rows]
    invocations = np.array([[float(x) for x in r[3:]] for r in rows]).T
    concurrency = invocations / 60.0 * np.array([seconds.get(n, 0.0) for n in names])[None, :]
    return names, concurrency


def _timer_like(active: np.ndarray) -> bool:
    a = active.astype(np.float64)
    mean = a.mean()
    return any(np.mean(a[lag:] * a[:-lag]) / mean >= 0.9 for lag in range(1, 61))


def groups(names: list[str], concurrency: np.ndarray, half: str) -> dict[str, list[int]]:
    """The busiest and the bursty functions of one half (see the module's docstring)."""
    mine = [j for j, n in enumerate(names) if (int(n[0], 16) % 2 == 0) == (half == "A")]
    busiest = sorted(mine, key=lambda j: -concurrency[:, j].sum())[:BUSIEST]
    active = concurrency > 0
    minutes = active.sum(axis=0)
    candidates = [j for j in mine if 48 <= minutes[j] <= len(concurrency) / 2 and _timer_like(active[:, j])]
    bursty = sorted(candidates, key=lambda j: -minutes[j])[:BURSTY]
    return {"busiest": busiest, "bursty": bursty}


def options(args: argparse.Namespace, series: int) -> ReplayOptions:
    kpa = KpaSettings(target_per_replica=100.0 * 0.7, cold_start_seconds=10.0, min_scale=0)
    policy = KnativeFloorSpec(
        signal="concurrency",
        target_per_replica=args.floor_per_replica or kpa.target_per_replica,  # the KPA's own target by default
        quantile=args.quantile,
        min_scale=0,
        max_scale=200,
        cold_start_seconds=kpa.cold_start_seconds + ACTUATION,  # the lead time: the pod's start and the write's
        max_step_up=200,
        max_relative_band=args.max_relative_band,
        provision_for=args.provision_for,
        linger_minutes=args.linger_minutes,
    )
    # the operator sizes the action budget to the fleet: 30 changes per workload and hour (warm-ups included)
    envelope = EnvelopeSpec(
        budget_actions=30 * series, reversal_minutes=args.reversal_minutes, cooldown_minutes=args.cooldown_minutes
    )
    return ReplayOptions(
        policy=policy,
        envelope=envelope,
        kpa=kpa,
        horizon=args.horizon,
        warmup_days=1.0 / 24.0,
        forecaster=args.forecaster,
        forecaster_params=args.forecaster_params,
    )


def verdict(report: ReplayReport, arm: str = "predictive") -> dict[str, bool]:
    if arm not in report.arms:
        return {}
    change = report.changes(arm)
    return {name: change[name] <= bound for name, bound in TARGETS.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", choices=["A", "B", "both"], default="both")
    ap.add_argument("--group", choices=["busiest", "bursty", "both"], default="both")
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--floor-per-replica", type=float, default=None)
    ap.add_argument("--quantile", type=float, default=KnativeFloorSpec().quantile)
    ap.add_argument("--max-relative-band", type=float, default=KnativeFloorSpec().max_relative_band)
    ap.add_argument("--provision-for", choices=["surge", "quantile"], default=KnativeFloorSpec().provision_for)
    ap.add_argument("--linger-minutes", type=float, default=KnativeFloorSpec().linger_minutes)
    ap.add_argument("--reversal-minutes", type=float, default=EnvelopeSpec().reversal_minutes)
    ap.add_argument("--cooldown-minutes", type=float, default=EnvelopeSpec().cooldown_minutes)
    ap.add_argument("--forecaster", default=ReplayOptions().forecaster)
    ap.add_argument("--forecaster-params", type=json.loads, default={})
    ap.add_argument("--arms", default="reactive,predictive,naive,oracle")
    ap.add_argument("--json", type=Path, default=Path("bench-results/serverless.json"))
    args = ap.parse_args()
    if not (SHARED / "invocations.csv.gz").is_file():
        print(f"benchmark data not found at {SHARED}", file=sys.stderr)
        return 2
    names, concurrency = read()
    epoch = START + STEP * np.arange(len(concurrency))
    out: dict[str, object] = {"targets": TARGETS, "results": {}}
    halves = ["A", "B"] if args.half == "both" else [args.half]
    kinds = ["busiest", "bursty"] if args.group == "both" else [args.group]
    for half in halves:
        chosen = groups(names, concurrency, half)
        for kind in kinds:
            columns = chosen[kind]
            started = time.perf_counter()
            opts = replace(options(args, len(columns)), arms=tuple(args.arms.split(",")))
            report = replay(epoch, concurrency[:, columns], [names[j][:12] for j in columns], opts)
            seconds = time.perf_counter() - started
            met = verdict(report)
            print(f"\nhalf {half}, {kind} ({len(columns)} functions), {seconds:.0f} s")
            print(format_report(report))
            print("targets:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
            out["results"][f"{half}/{kind}"] = {**report.as_dict(), "met": met, "seconds": seconds}  # type: ignore[index]
    out["options"] = options(args, 1).describe()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=lambda v: None))
    print(f"written {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
