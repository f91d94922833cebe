"""Continuum replay: do the service's moves pay? Every arm on the same demand, the same clusters, the same delay.

A trace of each workload's CPU demand (cores, evenly spaced) runs through the simulated
continuum (:mod:`intelligence.evaluation.continuum`) once per arm
(:mod:`intelligence.evaluation.continuum_arms`: static, threshold, predictive, oracle). The
first ``warmup_days`` teach the models and are not reported; no arm moves anything during
them, so every arm starts the reported span from the layout's placement.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from intelligence.decisions.specs import EnvelopeSpec, RescheduleSpec
from intelligence.evaluation.continuum import Continuum, Move
from intelligence.evaluation.continuum_arms import (
    ContinuumArm,
    ContinuumView,
    ModelForecasts,
    OracleForecasts,
    ServiceArm,
    StaticArm,
    ThresholdArm,
    workload_keys,
)
from intelligence.evaluation.continuum_layout import ContinuumLayout
from intelligence.evaluation.replay import even_step
from models.kinds import DEFAULT_DETECTOR, DEFAULT_FORECASTER

Progress = Callable[[str, int, int], None]  # (phase, done, total)
ARMS = ("static", "threshold", "predictive", "oracle")
WORKLOADS_SHOWN = 10  # the most throttled workloads in the table (all of them in the JSON)


class ContinuumReplayError(ValueError):
    """The trace, the layout or the options cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class ContinuumOptions:
    """The service's rescheduling policy and envelope, the threshold rule, the moves, and how the models run."""

    reschedule: RescheduleSpec = field(default_factory=RescheduleSpec)
    envelope: EnvelopeSpec = field(default_factory=EnvelopeSpec)
    move_delay_seconds: float = 60.0  # pulling the image and starting: the workload runs on both clusters meanwhile
    horizon_minutes: float = 60.0  # what the predictive arm's forecasts cover
    oracle_minutes: float = 60.0  # what the oracle foresees
    warmup_days: float = 1.0  # learnt, not reported, nothing moved
    threshold: float = 0.9  # the threshold arm: utilisation above this ...
    threshold_minutes: float = 5.0  # ... for this long moves the cluster's largest movable workload
    forecaster: str = DEFAULT_FORECASTER
    forecaster_params: Mapping[str, Any] = field(default_factory=dict)
    detector: str = DEFAULT_DETECTOR
    recommendation_ttl: timedelta = timedelta(hours=1)
    arms: tuple[str, ...] = ARMS
    series_per_cluster: bool = True  # as the service: a moved workload's demand is learnt afresh where it goes

    def describe(self) -> dict[str, Any]:
        envelope = asdict(self.envelope)
        envelope["kill_switch_file"] = None
        return {
            "reschedule": asdict(self.reschedule),
            "envelope": envelope,
            "move_delay_seconds": self.move_delay_seconds,
            "horizon_minutes": self.horizon_minutes,
            "oracle_minutes": self.oracle_minutes,
            "warmup_days": self.warmup_days,
            "threshold": self.threshold,
            "threshold_minutes": self.threshold_minutes,
            "forecaster": self.forecaster,
            "forecaster_params": dict(self.forecaster_params),
            "detector": self.detector,
            "recommendation_ttl_minutes": self.recommendation_ttl.total_seconds() / 60.0,
            "arms": list(self.arms),
            "series_per_cluster": self.series_per_cluster,
        }


@dataclass(frozen=True, slots=True)
class ContinuumFigures:
    """One arm over the reported span."""

    throttled_core_seconds: float
    throttled_share: float  # of all the demand
    saturated_cluster_minutes: float  # summed over clusters: time with demand above capacity
    moves: int
    move_backs: int  # moves to a cluster the workload left less than the dwell time ago
    double_core_seconds: float  # core-seconds of copies running twice during moves
    throttled_by_cluster: Mapping[str, float]
    saturated_minutes_by_cluster: Mapping[str, float]
    throttled_by_workload: Mapping[str, float]
    refused_moves: int = 0  # moves the actuator's envelope did not let through (predictive, oracle)


@dataclass(frozen=True, slots=True)
class ContinuumReport:
    arms: Mapping[str, ContinuumFigures]
    clusters: tuple[str, ...]
    workloads: tuple[str, ...]
    step_seconds: float
    warmup_samples: int
    reported_seconds: float
    demand_core_seconds: float
    options: dict[str, Any]
    moves: Mapping[str, tuple[Move, ...]] = field(default_factory=dict, repr=False)

    def ratio(self, arm: str, base: str, figure: str = "throttled_core_seconds") -> float:
        """``arm``'s figure over ``base``'s (0.3: 30% of it; NaN when the base is 0 and the arm is not)."""
        new, old = float(getattr(self.arms[arm], figure)), float(getattr(self.arms[base], figure))
        return new / old if old else (1.0 if new == old else math.nan)

    def as_dict(self) -> dict[str, Any]:
        ratios = {
            arm: {
                base: _finite(self.ratio(arm, base))
                for base in ("static", "threshold")
                if base in self.arms and base != arm
            }
            for arm in self.arms
        }
        return {
            "arms": {name: asdict(figures) for name, figures in self.arms.items()},
            "throttled_ratio": ratios,
            "clusters": list(self.clusters),
            "workloads": list(self.workloads),
            "step_seconds": self.step_seconds,
            "warmup_samples": self.warmup_samples,
            "reported_hours": self.reported_seconds / 3600.0,
            "demand_core_seconds": self.demand_core_seconds,
            "options": self.options,
            "moves": {arm: [self.move_row(m) for m in moves] for arm, moves in self.moves.items()},
        }

    def move_row(self, move: Move) -> list[str]:
        """``timestamp,workload,from,to``: in force (serving from the destination alone) from that time."""
        where = (self.workloads[move.workload], self.clusters[move.source], self.clusters[move.destination])
        return [iso(move.in_force_at), *where]


def _finite(value: float) -> float | None:
    """NaN (a ratio against nothing) is not JSON: null."""
    return value if math.isfinite(value) else None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def replay_continuum(
    epoch: np.ndarray,
    demand: np.ndarray,
    names: Sequence[str],
    layout: ContinuumLayout,
    options: ContinuumOptions,
    progress: Progress | None = None,
) -> ContinuumReport:
    """Replay ``demand[samples, workloads]`` (cores at evenly spaced ``epoch`` seconds) in every arm."""
    epoch = np.asarray(epoch, dtype=np.float64)
    demand = np.asarray(demand, dtype=np.float64).reshape(len(epoch), -1)
    step = even_step(epoch, ContinuumReplayError)
    if demand.shape[1] != len(names):
        raise ContinuumReplayError(f"{demand.shape[1]} demand columns but {len(names)} names")
    layout = layout.in_order_of([str(n) for n in names])
    unknown = [a for a in options.arms if a not in ARMS]
    if unknown or not options.arms:
        raise ContinuumReplayError(f"arms must be among {', '.join(ARMS)}; got {list(options.arms)}")
    warmup = math.ceil(options.warmup_days * 86_400.0 / step - 1e-9)
    if warmup >= len(epoch) - 1:
        raise ContinuumReplayError(
            f"the trace covers {(len(epoch) - 1) * step / 86_400.0:.2f} days, not more than the "
            f"{options.warmup_days:g}-day warm-up: nothing would be reported"
        )
    figures: dict[str, ContinuumFigures] = {}
    moves: dict[str, tuple[Move, ...]] = {}
    demand_seconds = 0.0
    for arm in options.arms:
        decider = _arm(arm, epoch, demand, layout, options)
        sim = _run(decider, epoch, demand, layout, options, warmup, arm, progress)
        figures[arm] = _figures(sim, layout, decider.refused)
        moves[arm] = tuple(sim.bill.moves)
        demand_seconds = sim.bill.demand_core_seconds
    return ContinuumReport(
        arms=figures,
        clusters=tuple(c.name for c in layout.clusters),
        workloads=tuple(w.name for w in layout.workloads),
        step_seconds=step,
        warmup_samples=warmup,
        reported_seconds=(len(epoch) - warmup) * step,
        demand_core_seconds=demand_seconds,
        options=options.describe(),
        moves=moves,
    )


def _arm(
    arm: str, epoch: np.ndarray, demand: np.ndarray, layout: ContinuumLayout, options: ContinuumOptions
) -> ContinuumArm:
    if arm == "static":
        return StaticArm()
    if arm == "threshold":
        return ThresholdArm(layout, options.threshold, options.threshold_minutes)
    step = float(epoch[1] - epoch[0])
    spec = options.reschedule
    keys = workload_keys(layout, spec.signal)
    source: ModelForecasts | OracleForecasts
    if arm == "oracle":
        source = OracleForecasts(epoch, demand, keys, _steps(options.oracle_minutes, step), spec.quantile)
    else:
        horizon = _steps(options.horizon_minutes, step)
        params = dict(options.forecaster_params)
        clusters = [c.name for c in layout.clusters] if options.series_per_cluster else []
        source = ModelForecasts(
            epoch, demand, keys, horizon, spec.quantile, options.forecaster, options.detector, params, clusters
        )
    return ServiceArm(layout, source, spec, options.envelope, options.recommendation_ttl)


def _steps(minutes: float, step: float) -> int:
    return max(1, math.ceil(minutes * 60.0 / step - 1e-9))


def _run(
    arm: ContinuumArm,
    epoch: np.ndarray,
    demand: np.ndarray,
    layout: ContinuumLayout,
    options: ContinuumOptions,
    warmup: int,
    phase: str,
    progress: Progress | None,
) -> Continuum:
    step = float(epoch[1] - epoch[0])
    where = layout.cluster_index()
    sim = Continuum(
        np.array([c.capacity_cores for c in layout.clusters]),
        np.array([where[w.cluster] for w in layout.workloads]),
        options.move_delay_seconds,
        options.reschedule.min_dwell_minutes * 60.0,
    )
    count = len(epoch)
    cluster_demand = np.zeros((count, len(layout.clusters)))
    every = max(1, count // 100)
    for i in range(count):
        reported = i >= warmup
        cluster_demand[i] = sim.advance(float(epoch[i]) - step, float(epoch[i]), demand[i], reported)
        view = ContinuumView(i, float(epoch[i]), step, demand[: i + 1], cluster_demand[: i + 1], sim)
        for w, destination in arm.decide(view, reported and i < count - 1):
            sim.move(w, destination, float(epoch[i]), counting=True)
        if progress is not None and (i % every == 0 or i == count - 1):
            progress(phase, i + 1, count)
    return sim


def _figures(sim: Continuum, layout: ContinuumLayout, refused: int) -> ContinuumFigures:
    bill = sim.bill
    throttled = float(bill.throttled_by_cluster.sum())
    clusters = [c.name for c in layout.clusters]
    return ContinuumFigures(
        throttled_core_seconds=throttled,
        throttled_share=throttled / bill.demand_core_seconds if bill.demand_core_seconds else 0.0,
        saturated_cluster_minutes=float(bill.saturated_seconds.sum()) / 60.0,
        moves=len(bill.moves),
        move_backs=bill.move_backs,
        double_core_seconds=bill.double_core_seconds,
        throttled_by_cluster=dict(zip(clusters, bill.throttled_by_cluster.tolist(), strict=True)),
        saturated_minutes_by_cluster=dict(zip(clusters, (bill.saturated_seconds / 60.0).tolist(), strict=True)),
        throttled_by_workload=dict(
            zip([w.name for w in layout.workloads], bill.throttled_by_workload.tolist(), strict=True)
        ),
        refused_moves=refused,
    )


def write_moves(path: Path, report: ContinuumReport, arm: str = "predictive") -> int:
    """``timestamp,workload,from,to`` per move of ``arm``, in time order; returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    moves = report.moves[arm]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "workload", "from", "to"])
        writer.writerows(report.move_row(m) for m in moves)
    return len(moves)


def format_report(report: ContinuumReport) -> str:
    """Every arm side by side, throttling against static and threshold, and where it happened."""
    arms = list(report.arms)

    def ratio(arm: str, base: str) -> str:
        if base not in report.arms or arm == base:
            return ""
        value = report.ratio(arm, base)
        return f"{100 * value:.0f}%" if math.isfinite(value) else "n/a"

    def row(name: str, cell: Callable[[str], str]) -> list[str]:
        return [name, *(cell(a) for a in arms)]

    hours = report.reported_seconds / 3600.0
    rows = [
        ["", *arms],
        row("throttled core-seconds", lambda a: f"{report.arms[a].throttled_core_seconds:,.0f}"),
        row("  share of the demand", lambda a: f"{100 * report.arms[a].throttled_share:.3f}%"),
        row("  of static's", lambda a: ratio(a, "static")),
        row("  of threshold's", lambda a: ratio(a, "threshold")),
        row("saturated cluster-minutes", lambda a: f"{report.arms[a].saturated_cluster_minutes:,.0f}"),
        row("moves", lambda a: f"{report.arms[a].moves:,}"),
        row("  refused by the envelope", lambda a: f"{report.arms[a].refused_moves:,}"),
        row("move-backs within the dwell", lambda a: f"{report.arms[a].move_backs:,}"),
        row("core-seconds running twice", lambda a: f"{report.arms[a].double_core_seconds:,.0f}"),
        ["throttled core-seconds by cluster", *[""] * len(arms)],
        *(
            row(f"  {c}", lambda a, c=c: f"{report.arms[a].throttled_by_cluster[c]:,.0f}")  # type: ignore[misc]
            for c in report.clusters
        ),
    ]
    worst = sorted(
        (w for w in report.workloads if any(report.arms[a].throttled_by_workload[w] > 0 for a in arms)),
        key=lambda w: (-max(report.arms[a].throttled_by_workload[w] for a in arms), w),
    )
    if worst:
        rest = f" ({len(worst) - WORKLOADS_SHOWN} more in the JSON)" if len(worst) > WORKLOADS_SHOWN else ""
        rows.append([f"throttled core-seconds by workload{rest}", *[""] * len(arms)])
        rows.extend(
            row(f"  {w}", lambda a, w=w: f"{report.arms[a].throttled_by_workload[w]:,.0f}")  # type: ignore[misc]
            for w in worst[:WORKLOADS_SHOWN]
        )
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"{len(report.workloads)} workloads on {len(report.clusters)} clusters, {hours:.1f} h reported after "
        f"{report.warmup_samples} warm-up samples of {report.step_seconds:g}s; "
        f"demand {report.demand_core_seconds / 3600.0:,.0f} core-hours",
        *("  ".join(c.ljust(width[i]) if i == 0 else c.rjust(width[i]) for i, c in enumerate(r)) for r in rows),
    ]
    return "\n".join(lines)
