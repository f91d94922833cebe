"""Continuum replay benchmark: the service's moves against static placement, a threshold rule and an oracle.

    .venv/bin/python -m tests.bench.bench_continuum [--set vm|serverless|both] [--half tune|report|both]
        [--json FILE] [policy options]

The continuum (the same for both sets): little edge capacity. Three edge clusters of 8 cores
(``edge-1..3``, label ``site=plant-a``), two fog clusters of 32 (``fog-1`` with ``site=plant-a``,
``fog-2``), one cloud cluster of 256 (``cloud-1``). Every workload starts at the edge,
round-robin in column order (the k-th workload of a half on ``edge-(k mod 3 + 1)``), and by its
position k: k mod 5 = 0 is pinned (``movable: false``, a device gateway), k mod 5 = 2 may only
run on the edge or fog tiers (latency), k mod 5 = 4 needs ``site=plant-a`` (data stays on the
premises: the edge or fog-1). Moves take 60 s, during which a workload runs on both clusters.

vm          the Azure VM CPU traces (``../shared/eval/traces/azure_vm_cpu_avg_50.csv.gz``; Azure Public
            Dataset V1, Cortez et al., SOSP 2017), 5-minute samples over 27.8 days, the first 7 days
            learnt. Demand in cores = CPU % / 100 x the VM's size, the size being 2, 4 or 8 cores by
            the anonymised VM id modulo 3 (a rule that knows nothing of the load). Halves: VMs 1-25
            (``tune``) and VMs 26-50 (``report``), in the file's column order.
serverless  the Azure Functions 2019 day (``../shared/eval/functions/``; Shahrad et al., USENIX ATC 2020),
            1-minute samples, the first hour learnt. Demand in cores = offered concurrency
            (invocations per minute / 60 x mean execution time in seconds): one core per request in
            flight. Halves by the function's hash as in ``bench_serverless`` (first hex digit even:
            ``tune``, odd: ``report``); in each, the 25 functions with the most concurrency over the
            day among those whose peak fits one edge cluster (at most 8 concurrent requests).

Every tuned value is chosen on the ``tune`` halves and reported on both halves. One value is
tuned: the rescheduling policy's ``move_cost`` (the capacity share a move must relieve), among
``--move-cost-grid`` (0.05, the service's default, 0.1, 0.2, 0.3), by the predictive arm alone on
the ``tune`` half of every set against that half's static and threshold arms. The chosen value
meets the most targets summed over the sets; ties go to the fewest moves summed over the sets (a
move is a cost, and throttling below the targets' bounds is not worth one more), then to the
value listed first. Everything else is the service's
defaults: the rescheduling policy and envelope, the forecaster, a 60-minute forecast horizon.
As in the service, a workload's demand is learnt as a series of the cluster it serves from: after a
move, its model on the destination starts afresh (``--series-follow-workload``: one series follows
it instead, kinder to the forecasts than the service is).
``--no-tune`` skips the search and runs ``--move-cost`` as given.

Targets (the issue), per set and half: the predictive arm's throttled core-seconds at most 30% of
static's and at most 50% of threshold's, with no more moves than threshold and no move-back
within the dwell time. The data is read at run time and never copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from intelligence.decisions.specs import EnvelopeSpec, RescheduleSpec
from intelligence.evaluation.continuum_layout import ContinuumLayout, parse_layout
from intelligence.evaluation.continuum_replay import (
    ContinuumFigures,
    ContinuumOptions,
    ContinuumReport,
    format_report,
    replay_continuum,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "eval"
VM_TRACE = SHARED / "traces" / "azure_vm_cpu_avg_50.csv.gz"
FUNCTIONS = SHARED / "functions"
VM_START = datetime(2017, 1, 1, tzinfo=UTC).timestamp()
FUNCTIONS_START = datetime(2019, 7, 15, tzinfo=UTC).timestamp()
VM_SIZES = (2.0, 4.0, 8.0)  # cores, by the VM id modulo 3
VM_HALVES = {"tune": (0, 25), "report": (25, 50)}
FUNCTION_HALVES = {"tune": "even", "report": "odd"}  # the first hex digit of the function's hash
FUNCTIONS_PER_HALF, EDGE_CORES = 25, 8.0
TARGETS = {"of_static": 0.3, "of_threshold": 0.5}
CLUSTERS = [
    {"name": "edge-1", "tier": "edge", "capacity_cores": 8, "labels": {"site": "plant-a"}},
    {"name": "edge-2", "tier": "edge", "capacity_cores": 8, "labels": {"site": "plant-a"}},
    {"name": "edge-3", "tier": "edge", "capacity_cores": 8, "labels": {"site": "plant-a"}},
    {"name": "fog-1", "tier": "fog", "capacity_cores": 32, "labels": {"site": "plant-a"}},
    {"name": "fog-2", "tier": "fog", "capacity_cores": 32},
    {"name": "cloud-1", "tier": "cloud", "capacity_cores": 256},
]


def layout(names: list[str]) -> ContinuumLayout:
    """Edge first, round-robin; pinned, edge-or-fog and on-premises workloads by position (see the docstring)."""
    workloads = []
    for k, name in enumerate(names):
        workload: dict[str, object] = {"name": name, "cluster": f"edge-{k % 3 + 1}"}
        if k % 5 == 0:
            workload["movable"] = False
        elif k % 5 == 2:
            workload["tiers"] = ["edge", "fog"]
        elif k % 5 == 4:
            workload["labels"] = {"site": "plant-a"}
        workloads.append(workload)
    return parse_layout({"clusters": CLUSTERS, "workloads": workloads}, "bench layout")


def vm_demand(half: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Epoch seconds, names and demand in cores of one half of the VMs."""
    with gzip.open(VM_TRACE, "rt") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = np.array([[float(c) for c in row[1:]] for row in reader])
    lo, hi = VM_HALVES[half]
    ids = header[1:][lo:hi]
    sizes = np.array([VM_SIZES[int(vm) % len(VM_SIZES)] for vm in ids])
    epoch = VM_START + 300.0 * np.arange(data.shape[0])
    return epoch, [f"vm-{vm}" for vm in ids], data[:, lo:hi] / 100.0 * sizes


def function_demand(half: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Epoch seconds, names and demand in cores (concurrency) of one half of the functions."""
    with gzip.open(FUNCTIONS / "invocations.csv.gz", "rt") as fh:
        rows = list(csv.reader(fh))[1:]
    with gzip.open(FUNCTIONS / "durations.csv.gz", "rt") as fh:
        seconds = {r[0]: float(r[4]) / 1000.0 for r in list(csv.reader(fh))[1:]}
    names = [r[0] for r in rows]
    invocations = np.array([[float(x) for x in r[3:]] for r in rows]).T
    concurrency = invocations / 60.0 * np.array([seconds.get(n, 0.0) for n in names])[None, :]
    parity = 0 if FUNCTION_HALVES[half] == "even" else 1
    mine = [j for j, n in enumerate(names) if int(n[0], 16) % 2 == parity and concurrency[:, j].max() <= EDGE_CORES]
    chosen = sorted(mine, key=lambda j: -concurrency[:, j].sum())[:FUNCTIONS_PER_HALF]
    epoch = FUNCTIONS_START + 60.0 * np.arange(len(concurrency))
    return epoch, [f"fn-{names[j][:10]}" for j in chosen], concurrency[:, chosen]


class Progress:
    """Each arm's progress every 25%, on stderr."""

    def __init__(self, started: float, prefix: str = "") -> None:
        self.started, self.prefix = started, prefix
        self.last: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        share = done / total
        if share - self.last.get(phase, -1.0) >= 0.25 or done == total:
            self.last[phase] = share
            seconds = time.perf_counter() - self.started
            print(f"  {self.prefix}{phase}: {100 * share:3.0f}% ({seconds:.0f} s)", file=sys.stderr)


def options(
    args: argparse.Namespace,
    warmup_days: float,
    move_cost: float | None = None,
    arms: tuple[str, ...] | None = None,
) -> ContinuumOptions:
    reschedule = RescheduleSpec(
        quantile=args.quantile,
        saturation=args.saturation,
        target_utilisation=args.target_utilisation,
        move_cost=args.move_cost if move_cost is None else move_cost,
        min_dwell_minutes=args.dwell_minutes,
        max_moves_per_decision=args.max_moves,
    )
    return ContinuumOptions(
        reschedule=reschedule,
        envelope=EnvelopeSpec(),
        move_delay_seconds=args.move_delay_seconds,
        horizon_minutes=args.horizon_minutes,
        warmup_days=warmup_days,
        forecaster_params=args.forecaster_params,
        arms=tuple(args.arms.split(",")) if arms is None else arms,
        series_per_cluster=not args.series_follow_workload,
    )


def verdict(report: ContinuumReport) -> dict[str, bool]:
    arms = report.arms
    if not {"static", "threshold", "predictive"} <= set(arms):
        return {}
    return targets_met(arms["static"], arms["threshold"], arms["predictive"])


def targets_met(static: ContinuumFigures, threshold: ContinuumFigures, arm: ContinuumFigures) -> dict[str, bool]:
    """The issue's targets for ``arm`` against the static and threshold arms on the same half."""
    return {
        "throttled_at_most_30pct_of_static": arm.throttled_core_seconds
        <= TARGETS["of_static"] * static.throttled_core_seconds,
        "throttled_at_most_50pct_of_threshold": arm.throttled_core_seconds
        <= TARGETS["of_threshold"] * threshold.throttled_core_seconds,
        "no_more_moves_than_threshold": arm.moves <= threshold.moves,
        "no_move_back_within_dwell": arm.move_backs == 0,
    }


def demand_of(which: str, half: str) -> tuple[np.ndarray, list[str], np.ndarray, float]:
    """Epoch seconds, names, demand and warm-up days of one half of one set."""
    epoch, names, demand = vm_demand(half) if which == "vm" else function_demand(half)
    return epoch, names, demand, 7.0 if which == "vm" else 1.0 / 24.0


def tune(args: argparse.Namespace, sets: list[str]) -> tuple[float, list[dict[str, object]]]:
    """The ``move_cost`` of the grid that does best on the ``tune`` halves (see the docstring), and every trial."""
    grid = [float(v) for v in args.move_cost_grid.split(",")]
    trials: dict[float, dict[str, object]] = {cost: {"move_cost": cost, "sets": {}} for cost in grid}
    for which in sets:
        epoch, names, demand, warmup_days = demand_of(which, "tune")
        print(f"tuning on {which}/tune: {len(names)} workloads x {len(epoch)} samples", file=sys.stderr)
        started = time.perf_counter()
        plan = layout(names)
        bases = replay_continuum(
            epoch, demand, names, plan, options(args, warmup_days, arms=("static", "threshold")), Progress(started)
        )
        static, threshold = bases.arms["static"], bases.arms["threshold"]
        for cost in grid:
            run = replay_continuum(
                epoch,
                demand,
                names,
                plan,
                options(args, warmup_days, move_cost=cost, arms=("predictive",)),
                Progress(started, f"move_cost {cost:g}: "),
            )
            arm = run.arms["predictive"]
            sets_of = trials[cost]["sets"]
            assert isinstance(sets_of, dict)
            sets_of[which] = {
                "of_static": arm.throttled_core_seconds / static.throttled_core_seconds
                if static.throttled_core_seconds
                else None,
                "of_threshold": arm.throttled_core_seconds / threshold.throttled_core_seconds
                if threshold.throttled_core_seconds
                else None,
                "moves": arm.moves,
                "threshold_moves": threshold.moves,
                "move_backs": arm.move_backs,
                "met": targets_met(static, threshold, arm),
            }

    def score(trial: dict[str, object]) -> tuple[int, int]:
        sets_of = trial["sets"]
        assert isinstance(sets_of, dict)
        met = sum(sum(s["met"].values()) for s in sets_of.values())
        moves = sum(int(s["moves"]) for s in sets_of.values())
        return -met, moves

    chosen = min(grid, key=lambda cost: score(trials[cost]))  # min keeps the first of equals
    print("\ntuning move_cost on the tune halves (predictive arm; throttled of static's / threshold's, moves):")
    for cost in grid:
        sets_of = trials[cost]["sets"]
        assert isinstance(sets_of, dict)
        cells = [
            f"{w}: {_pct(s['of_static'])} / {_pct(s['of_threshold'])}, {s['moves']} moves "
            f"(threshold {s['threshold_moves']}), {sum(s['met'].values())}/4 targets"
            for w, s in sets_of.items()
        ]
        print(f"  {'*' if cost == chosen else ' '} {cost:<5g} " + "; ".join(cells))
    return chosen, list(trials.values())


def _pct(value: object) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, float) else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["vm", "serverless", "both"], default="both")
    ap.add_argument("--half", choices=["tune", "report", "both"], default="both")
    defaults = RescheduleSpec()  # the service's defaults unless told otherwise
    ap.add_argument("--quantile", type=float, default=defaults.quantile)
    ap.add_argument("--saturation", type=float, default=defaults.saturation)
    ap.add_argument("--target-utilisation", type=float, default=defaults.target_utilisation)
    ap.add_argument("--move-cost", type=float, default=defaults.move_cost)
    ap.add_argument("--dwell-minutes", type=float, default=defaults.min_dwell_minutes)
    ap.add_argument("--max-moves", type=int, default=defaults.max_moves_per_decision)
    ap.add_argument("--move-delay-seconds", type=float, default=60.0)
    ap.add_argument("--horizon-minutes", type=float, default=60.0)
    ap.add_argument("--forecaster-params", type=json.loads, default={}, help="e.g. '{\"surge_z\": 2.0}'")
    ap.add_argument("--arms", default="static,threshold,predictive,oracle")
    ap.add_argument("--move-cost-grid", default="0.05,0.1,0.2,0.3", help="move_cost values tried on the tune halves")
    ap.add_argument("--no-tune", dest="tune", action="store_false", help="run --move-cost as given")
    ap.add_argument(
        "--series-follow-workload",
        action="store_true",
        help="one series per workload wherever it runs (the service learns a moved workload afresh)",
    )
    ap.add_argument("--json", type=Path, default=Path("bench-results/continuum.json"))
    args = ap.parse_args()
    if not VM_TRACE.is_file() or not (FUNCTIONS / "invocations.csv.gz").is_file():
        print(f"benchmark data not found under {SHARED}", file=sys.stderr)
        return 2
    sets = ["vm", "serverless"] if args.set == "both" else [args.set]
    halves = ["tune", "report"] if args.half == "both" else [args.half]
    tuning: list[dict[str, object]] = []
    if args.tune:
        args.move_cost, tuning = tune(args, sets)
        print(f"chosen on the tune halves: move_cost {args.move_cost:g}", file=sys.stderr)
    results: dict[str, object] = {}
    for which in sets:
        for half in halves:
            epoch, names, demand, warmup_days = demand_of(which, half)
            what = f"{which}/{half}"
            print(f"{what}: {len(names)} workloads x {len(epoch)} samples", file=sys.stderr)
            started = time.perf_counter()
            report = replay_continuum(
                epoch, demand, names, layout(names), options(args, warmup_days), Progress(started)
            )
            seconds = time.perf_counter() - started
            met = verdict(report)
            print(f"\n{what} ({'tuned on' if half == 'tune' else 'reported on'}), {seconds:.0f} s")
            print(format_report(report))
            print("targets:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
            results[what] = {**report.as_dict(), "met": met, "seconds": seconds}
    print(f"\nsummary (move_cost {args.move_cost:g}): throttled core-seconds / moves / move-backs within the dwell")
    for what, result in results.items():
        assert isinstance(result, dict)
        cells = [
            f"{arm} {figures['throttled_core_seconds']:,.0f} / {figures['moves']} / {figures['move_backs']}"
            for arm, figures in result["arms"].items()
        ]
        met = result["met"]
        print(f"  {what:<18} " + "; ".join(cells) + f"; targets met {sum(met.values())}/{len(met)}")
    out = {
        "targets": TARGETS,
        "halves": {"vm": VM_HALVES, "serverless": FUNCTION_HALVES},
        "clusters": CLUSTERS,
        "vm_sizes": VM_SIZES,
        "move_cost": args.move_cost,
        "tuning": tuning,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=lambda v: None))
    print(f"written {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
