"""Cross-cluster rescheduling: pure functions of forecasts and cluster state.

A cluster's forecast load is the sum over its workloads of each workload's upper
quantile, at the worst step of the horizon. Summing upper quantiles over-states the
upper quantile of the sum (it assumes the peaks coincide), which is the safe side
for "will it saturate?" and for "will the destination still fit?".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from intelligence.decisions.outcomes import Decision, Outcome, hold
from intelligence.decisions.policies import WorkloadPolicy
from intelligence.decisions.specs import RescheduleSpec
from intelligence.vocabulary import ActionKind, Explanation, Forecast, Lever, Recommendation, Tier, WorkloadRef

RULE_RESCHEDULE = "reschedule.headroom"


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What the decider knows about one member cluster."""

    name: str
    tier: Tier
    capacity: float  # in the reschedule signal's unit (cores); 0 = unknown
    labels: Mapping[str, str] = field(default_factory=dict)
    up: bool = True
    anomalous: bool = False


@dataclass(frozen=True, slots=True)
class ClusterLoad:
    cluster: ClusterView
    peak: float  # summed upper quantile at the worst step of the horizon
    workloads: Mapping[WorkloadRef, float]  # each workload's own peak upper quantile

    @property
    def utilisation(self) -> float:
        return self.peak / self.cluster.capacity if self.cluster.capacity > 0 else math.nan

    @property
    def headroom(self) -> float:
        """Share of capacity left at the forecast peak (negative: over capacity; nan: capacity unknown)."""
        return 1.0 - self.utilisation


def cluster_loads(
    clusters: Iterable[ClusterView], forecasts: Iterable[Forecast], quantile: float
) -> dict[str, ClusterLoad]:
    """Forecast load per cluster from its workloads' forecasts (clusters without forecasts: zero load)."""
    per_step: dict[str, list[float]] = {}
    workloads: dict[str, dict[WorkloadRef, float]] = defaultdict(dict)
    for fc in forecasts:
        upper = [u for u in fc.upper(quantile) if math.isfinite(u)]
        if not upper:
            continue
        upper = [max(u, 0.0) for u in upper]
        steps = per_step.setdefault(fc.key.cluster, [0.0] * len(upper))
        for i, u in enumerate(upper[: len(steps)]):
            steps[i] += u
        workloads[fc.key.cluster][fc.key.workload] = max(upper)
    return {
        c.name: ClusterLoad(c, max(per_step.get(c.name, [0.0]), default=0.0), dict(workloads.get(c.name, {})))
        for c in clusters
    }


def _reason(load: ClusterLoad, policy: RescheduleSpec) -> str | None:
    c = load.cluster
    if not c.up:
        return "down"
    if c.anomalous:
        return "anomalous"
    if c.capacity > 0 and load.utilisation > policy.saturation:
        return f"forecast to saturate ({load.peak:.2f} of {c.capacity:g} at q{policy.quantile})"
    return None


def _refusal(dest: ClusterLoad, load: float, wp: WorkloadPolicy, policy: RescheduleSpec) -> str | None:
    c = dest.cluster
    if not c.up or c.anomalous:
        return "down" if not c.up else "anomalous"
    if wp.tiers is not None and c.tier not in wp.tiers:
        return f"tier {c.tier.value} not in {[t.value for t in wp.tiers]}"
    missing = [f"{k}={v}" for k, v in wp.cluster_labels if c.labels.get(k) != v]
    if missing:
        return f"lacks label(s) {', '.join(missing)}"
    if c.capacity <= 0:
        return "capacity unknown"
    after = (dest.peak + load) / c.capacity
    if after > policy.target_utilisation:
        return f"would be at {after:.0%} (> {policy.target_utilisation:.0%})"
    return None


def decide_moves(
    loads: Mapping[str, ClusterLoad],
    policy_of: Callable[[WorkloadRef], WorkloadPolicy],
    last_moved: Mapping[tuple[str, str], datetime],
    policy: RescheduleSpec,
    now: datetime,
    ttl: timedelta,
) -> list[Decision]:
    """Moves off saturated, anomalous or down clusters, largest workloads first.

    The destination is the allowed cluster with the most forecast headroom left
    after the move; a move must relieve at least ``move_cost`` of the source's
    capacity (except off a down or anomalous cluster); a workload moved less than
    ``min_dwell_minutes`` ago stays (no back and forth). Deterministic: clusters
    and workloads are visited in a fixed order, ties broken by name.
    """
    if not policy.enabled:
        return []
    peaks = {name: load.peak for name, load in loads.items()}  # updated as moves are planned
    decisions: list[Decision] = []
    moves = 0
    dwell = timedelta(minutes=policy.min_dwell_minutes)
    for name in sorted(loads):
        source = loads[name]
        reason = _reason(source, policy)
        if reason is None:
            continue
        capacity = source.cluster.capacity
        hard = not source.cluster.up or source.cluster.anomalous
        excess = math.inf if hard else peaks[name] - policy.target_utilisation * capacity
        for ref, load in sorted(source.workloads.items(), key=lambda kv: (-kv[1], kv[0])):
            if excess <= 0 or moves >= policy.max_moves_per_decision:
                break
            wp = policy_of(ref)
            inputs: dict[str, object] = {
                "source": name,
                "source_reason": reason,
                "source_peak": round(source.peak, 4),
                "source_capacity": capacity,
                f"workload_peak_q{policy.quantile}": round(load, 4),
            }
            if not wp.movable:
                continue
            moved_at = last_moved.get((ref.namespace, ref.name))
            if moved_at is not None and now - moved_at < dwell:
                stays = (
                    f"{ref} stays on {name}: moved {(now - moved_at).total_seconds() / 60:.0f} min ago "
                    f"(dwell {policy.min_dwell_minutes:g} min)"
                )
                decisions.append(hold(ref, Outcome.HOLD, stays, inputs, RULE_RESCHEDULE, lever=Lever.PLACEMENT))
                continue
            gain = min(load, excess) / capacity if capacity > 0 and not hard else 1.0
            if gain < policy.move_cost:
                small = (
                    f"moving {ref} would relieve {gain:.1%} of {name}, less than the move cost {policy.move_cost:.0%}"
                )
                decisions.append(hold(ref, Outcome.HOLD, small, inputs, RULE_RESCHEDULE, lever=Lever.PLACEMENT))
                continue
            decision = _best_move(ref, load, source, loads, peaks, wp, policy, inputs, now, ttl)
            decisions.append(decision)
            if decision.recommendation is not None:
                dest = str(decision.recommendation.params["cluster"])
                peaks[dest] += load
                peaks[name] -= load
                excess -= load
                moves += 1
    return decisions


def _best_move(
    ref: WorkloadRef,
    load: float,
    source: ClusterLoad,
    loads: Mapping[str, ClusterLoad],
    peaks: Mapping[str, float],
    wp: WorkloadPolicy,
    policy: RescheduleSpec,
    inputs: dict[str, object],
    now: datetime,
    ttl: timedelta,
) -> Decision:
    rejected: list[str] = []
    best: tuple[float, str] | None = None
    for dest_name in sorted(loads):
        if dest_name == source.cluster.name:
            continue
        dest = ClusterLoad(loads[dest_name].cluster, peaks[dest_name], loads[dest_name].workloads)
        refusal = _refusal(dest, load, wp, policy)
        if refusal is not None:
            rejected.append(f"{dest_name}: {refusal}")
            continue
        headroom_after = 1.0 - (dest.peak + load) / dest.cluster.capacity
        if best is None or headroom_after > best[0]:
            if best is not None:
                rejected.append(f"{best[1]}: less headroom ({best[0]:.0%}) after the move")
            best = (headroom_after, dest_name)
        else:
            rejected.append(f"{dest_name}: less headroom ({headroom_after:.0%}) after the move")
    name = source.cluster.name
    if best is None:
        nowhere = f"{name} is {inputs['source_reason']}, but no cluster can take {ref}"
        return hold(ref, Outcome.HOLD, nowhere, inputs, RULE_RESCHEDULE, tuple(rejected), Lever.PLACEMENT)
    headroom_after, dest_name = best
    inputs["destination_headroom_after"] = round(headroom_after, 4)
    explanation = Explanation(
        rule=RULE_RESCHEDULE,
        summary=f"move {ref} from {name} ({inputs['source_reason']}) to {dest_name}, "
        f"which keeps {headroom_after:.0%} headroom at the forecast peak",
        inputs=inputs,
        rejected=tuple(rejected),
        expected_effect=f"{name} relieved of {load:.2f} at its peak; {dest_name} at "
        f"{1.0 - headroom_after:.0%} of capacity",
    )
    rec = Recommendation(
        kind=ActionKind.REALLOCATION,
        lever=Lever.PLACEMENT,
        target=ref,
        params={"cluster": dest_name},
        created_at=now,
        confidence=round(max(0.0, min(1.0, headroom_after / max(1.0 - policy.target_utilisation, 1e-9))), 3),
        explanation=explanation,
        valid_until=now + ttl,
    )
    return Decision(ref, Outcome.RECOMMEND, explanation, rec)


def anomalous_clusters(scores: Iterable[tuple[WorkloadRef, float]], threshold: float) -> set[str]:
    """Clusters where at least half of the scored workloads reach ``threshold`` (one noisy workload is not enough)."""
    seen: dict[str, list[bool]] = defaultdict(list)
    for ref, score in scores:
        seen[ref.cluster].append(score >= threshold)
    return {c for c, flags in seen.items() if len(flags) >= 2 and sum(flags) * 2 >= len(flags)}


def fresh(forecasts: Sequence[Forecast], now: float, max_age: float) -> list[Forecast]:
    """Forecasts made in the last ``max_age`` seconds (a moved or vanished workload's old ones drop out)."""
    return [f for f in forecasts if now - f.origin <= max_age]
