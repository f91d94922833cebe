"""Everything the decider decides in one step: Knative floors, moves, placement scores, then made calm.

Pure: (inputs, policies, now) -> plan. No I/O, no clock reads; the engine gathers the
inputs (forecasts, the clusters, the last published value of each target) and the
actuator acts on the plan. Every decision passes :func:`~intelligence.decisions.publication.calm`
before it is published, whatever the mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from intelligence.decisions.knative_floor import decide_knative_floor
from intelligence.decisions.outcomes import Decision
from intelligence.decisions.placement import placement_scores
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.publication import Published, calm
from intelligence.decisions.rescheduling import ClusterLoad, ClusterView, cluster_loads, decide_moves
from intelligence.vocabulary import ActionKind, Forecast, Lever, WorkloadKind, WorkloadRef


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    scaling: Sequence[Forecast]  # forecasts of the Knative scaling signal (request rate or concurrency)
    load: Sequence[Forecast]  # forecasts of the rescheduling signal (cores), fresh ones only
    clusters: Sequence[ClusterView] = ()
    last_moved: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    published: Mapping[tuple[WorkloadRef, Lever], Published] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    decisions: list[Decision]
    loads: dict[str, ClusterLoad]
    scores: dict[str, int]  # AddOnPlacementScore values per cluster


def _as_deployment(decision: Decision) -> Decision:
    """A plain Deployment gets the same floor as replicas through its scale subresource."""
    rec = decision.recommendation
    if rec is None:
        return replace(decision, lever=Lever.REPLICAS) if decision.lever is Lever.KNATIVE_FLOOR else decision
    kind = ActionKind.SCALE_OUT if rec.kind is ActionKind.SCALE_UP else ActionKind.SCALE_IN
    rec = replace(rec, kind=kind, lever=Lever.REPLICAS, params={"replicas": rec.params["min_scale"]})
    return replace(decision, recommendation=rec)


def plan(inputs: DecisionInputs, book: PolicyBook, now: datetime, ttl: timedelta) -> Plan:
    decisions: list[Decision] = []
    for fc in sorted(inputs.scaling, key=lambda f: f.key):
        target = fc.key.workload
        wp = book.for_workload(target)
        if fc.key.signal != wp.knative.signal:
            continue
        lever = Lever.REPLICAS if wp.kind is WorkloadKind.DEPLOYMENT else Lever.KNATIVE_FLOOR
        decision = decide_knative_floor(fc, target, inputs.published.get((target, lever)), wp.knative, now)
        decisions.append(_as_deployment(decision) if lever is Lever.REPLICAS else decision)
    resched = book.spec.reschedule
    loads = cluster_loads(inputs.clusters, inputs.load, resched.quantile)
    decisions += decide_moves(loads, book.for_workload, inputs.last_moved, resched, now, ttl)
    envelope, dwell = book.spec.envelope, timedelta(minutes=resched.min_dwell_minutes)
    calmed = [
        calm(d, inputs.published.get((d.target, d.about)) if d.about else None, envelope, dwell, now) for d in decisions
    ]
    return Plan(calmed, loads, placement_scores(loads))
