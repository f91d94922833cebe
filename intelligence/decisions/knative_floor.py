"""The predictive Knative floor: a pure function from (forecast, the floor published, policy, now) to a decision.

A floor is a *pulse*: "min-scale N from ``in_force_at`` until ``valid_until``", raised
ahead of a forecast peak that needs more pods than the reactive autoscaler holds, and
written just in time (a cold start and the write before the peak's first step). When
it ends, the floor goes back to the policy's ``min_scale`` and the autoscaler's own
stable window paces the way down ("predict up, react down"). A pulse still running is
extended, or raised, by the next decisions; it is never lowered, so the stream of
recommendations has no reversals by construction.

No I/O and no clock reads. "Not enough data", "too uncertain" and "nothing above what
the autoscaler holds" are normal outcomes carried in
:class:`~intelligence.decisions.outcomes.Decision`, not exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from intelligence.decisions.outcomes import Decision, Outcome, hold
from intelligence.decisions.publication import Published, continues
from intelligence.decisions.specs import KnativeFloorSpec
from intelligence.vocabulary import ActionKind, Explanation, Forecast, Lever, Recommendation, WorkloadRef

RULE_PREDICTIVE_FLOOR = "knative.predictive-min-scale"


def lead_steps(step_seconds: float, lead_seconds: float, horizon: int) -> int:
    """How many forecast steps a floor decided now must cover: those starting before the next decision's floor
    can be in force.

    The next decision comes one step later and needs ``lead_seconds`` (cold start and the write) to take
    effect; step k covers ((k - 1) * step, k * step], so steps with (k - 1) * step < step + lead.

    >>> lead_steps(300, 30, 12), lead_steps(60, 30, 12), lead_steps(60, 0, 12), lead_steps(60, 600, 12)
    (2, 2, 1, 11)
    """
    return max(1, min(horizon, math.ceil(2.0 + lead_seconds / step_seconds - 1e-9) - 1))


def _pods(load: float, policy: KnativeFloorSpec) -> int:
    """Pods for ``load`` at the autoscaler's target (0 for no load or none known)."""
    return math.ceil(max(load, 0.0) / policy.target_per_replica - 1e-9) if math.isfinite(load) else 0


def held_by_autoscaler(forecast: Forecast, policy: KnativeFloorSpec) -> int | None:
    """The pods the reactive autoscaler holds for the load observed now, at its target (None: not known)."""
    if forecast.last is None or not math.isfinite(forecast.last):
        return None
    return math.ceil(max(forecast.last, 0.0) / policy.target_per_replica - 1e-9)


def _hold(target: WorkloadRef, outcome: Outcome, summary: str, inputs: Mapping[str, object]) -> Decision:
    return hold(target, outcome, summary, inputs, RULE_PREDICTIVE_FLOOR, lever=Lever.KNATIVE_FLOOR)


def _at(seconds: float, now: datetime) -> datetime:
    return datetime.fromtimestamp(seconds, tz=now.tzinfo)


def decide_knative_floor(
    forecast: Forecast | None,
    target: WorkloadRef,
    published: Published | None,
    policy: KnativeFloorSpec,
    now: datetime,
) -> Decision:
    """A pulse of min-scale for the forecast steps a floor decided now must cover (the lead window), if they
    need more pods than the autoscaler holds for the load now; or why not.

    It provisions for the forecast's surge (what to provision for: the point plus the rises
    usually seen then) when the model gives one, else for the upper ``quantile``, at the
    autoscaler's own target (``target_per_replica``), so the floor binds exactly where it adds
    pods. A band wider than ``max_relative_band`` x the forecast is too uncertain to raise a
    floor on: the workload stays with the reactive autoscaler (a running pulse runs out).
    """
    if forecast is None or forecast.horizon == 0:
        return _hold(target, Outcome.INSUFFICIENT_DATA, "no forecast yet", {})
    if policy.quantile not in forecast.quantiles:
        return _hold(
            target,
            Outcome.INSUFFICIENT_DATA,
            f"forecast has no {policy.quantile} quantile yet (band not calibrated)",
            {"quantiles": sorted(forecast.quantiles)},
        )
    if forecast.horizon * forecast.step_seconds < policy.cold_start_seconds:
        return _hold(
            target,
            Outcome.INSUFFICIENT_DATA,
            f"horizon {forecast.horizon * forecast.step_seconds:g}s is shorter than the cold start "
            f"{policy.cold_start_seconds:g}s: cannot act ahead of time",
            {},
        )
    steps = lead_steps(forecast.step_seconds, policy.cold_start_seconds, forecast.horizon)
    # the surge while the model has one for every step considered (it warms up later than the band)
    by_surge = policy.provision_for == "surge" and all(math.isfinite(v) for v in forecast.surge[:steps] or [math.nan])
    wanted = forecast.surge[:steps] if by_surge else forecast.upper(policy.quantile)[:steps]
    upper = forecast.upper(policy.quantile)
    if not all(math.isfinite(v) for v in (*wanted, *upper[:steps], *forecast.point[:steps])):
        return _hold(target, Outcome.INSUFFICIENT_DATA, "forecast is not finite", {})
    peak_index = max(range(steps), key=lambda k: wanted[k])
    peak, peak_point = max(wanted[peak_index], 0.0), forecast.point[peak_index]
    scale = max(abs(peak_point), policy.target_per_replica)
    relative_band = (max(upper[peak_index], 0.0) - max(peak_point, 0.0)) / scale
    peak_at = _at(forecast.timestamps()[peak_index], now)
    basis = "surge" if by_surge else f"q{policy.quantile}"
    held = held_by_autoscaler(forecast, policy)
    active = published if published is not None and published.until is not None and published.running(now) else None
    ending = published if active is None and published is not None and published.until == now else None
    inputs: dict[str, object] = {
        "series": str(forecast.key),
        "forecast_origin": _at(forecast.origin, now).isoformat(),
        "steps_considered": steps,
        "peak_at": peak_at.isoformat(),
        "peak_point": round(peak_point, 4),
        f"peak_q{policy.quantile}": round(upper[peak_index], 4),
        "provision_for": basis,
        "provisioned": round(peak, 4),
        "target_per_replica": policy.target_per_replica,
        "autoscaler_holds": held,
        "floor_published": active.value if active else None,
        "bounds": [policy.min_scale, policy.max_scale],
        "cold_start_seconds": policy.cold_start_seconds,
    }
    if relative_band > policy.max_relative_band:
        why = f"band {relative_band:.2f}x the forecast is wider than {policy.max_relative_band}x: too uncertain"
        return _hold(target, Outcome.TOO_UNCERTAIN, why, inputs)
    needs = [_pods(v, policy) for v in wanted]
    # the pods the autoscaler holds when step k starts: for the load of the step before; beyond the load observed
    # now, the fewer of that and the forecast of the step before (it may scale down in between)
    now_held = _pods(forecast.last, policy) if forecast.last is not None else 0
    before = [now_held, *(min(now_held, _pods(v, policy)) for v in forecast.point[: steps - 1])]
    held_then = [max(policy.min_scale, pods) for pods in before]
    needing = [k for k in range(steps) if needs[k] > held_then[k]]
    there = held_then[needing[0]] if needing else held_then[0]
    if not needing:
        still = f"; the pulse of {active.value} runs until {active.until:%H:%M:%S}" if active and active.until else ""
        return _hold(
            target, Outcome.HOLD, f"the autoscaler holds {there} pod(s), enough for the forecast peak{still}", inputs
        )
    rejected: list[str] = []
    needed = max(needs[k] for k in needing)
    value = min(needed, policy.max_scale, there + policy.max_step_up)
    if value < needed:
        rejected.append(f"min-scale {needed}: bounded by max_scale {policy.max_scale} and +{policy.max_step_up}")
    if ending is not None and continues(ending, value, now):  # the need goes on past a pulse ending now
        active = ending
    if value <= there and active is None:
        why = f"the autoscaler holds {there} pod(s) already, max_scale {policy.max_scale}: a floor would add nothing"
        return _hold(target, Outcome.HOLD, why, inputs | {"replicas_needed": needed})
    first, last = needing[0], needing[-1]
    in_force_at = max(now, _at(forecast.origin + first * forecast.step_seconds - policy.cold_start_seconds, now))
    until = _at(forecast.origin + (last + 1) * forecast.step_seconds + 60.0 * policy.linger_minutes, now)
    if active is not None and active.until is not None:
        value, until = max(value, int(active.value)), max(until, active.until)
        in_force_at = now if int(active.value) >= value else in_force_at
    inputs.update(replicas_needed=needed, in_force_at=in_force_at.isoformat(), until=until.isoformat())
    explanation = Explanation(
        rule=RULE_PREDICTIVE_FLOOR,
        summary=f"min-scale {value} for {target} from {in_force_at:%H:%M:%S} until {until:%H:%M:%S}: forecast "
        f"{basis} {peak:.1f} at {peak_at:%H:%M} / {policy.target_per_replica:g} per replica "
        f"(the autoscaler holds {there})",
        inputs=inputs,
        rejected=tuple(rejected),
        expected_effect=f"{value} replicas ready before {peak_at:%H:%M} for {peak:.1f} ({basis}); "
        f"back to min-scale {policy.min_scale} at {until:%H:%M:%S}, the autoscaler pacing the way down",
    )
    confidence = max(0.0, min(1.0, 1.0 - relative_band / policy.max_relative_band))
    recommendation = Recommendation(
        kind=ActionKind.SCALE_UP,
        lever=Lever.KNATIVE_FLOOR,
        target=target,
        params={"min_scale": value},
        created_at=now,
        confidence=round(confidence, 3),
        explanation=explanation,
        valid_until=until,
        in_force_at=in_force_at if in_force_at > now else None,
    )
    return Decision(target, Outcome.RECOMMEND, explanation, recommendation)
