"""The predictive Knative floor: a pure function from (forecast, floor in force, policy, now) to a decision.

No I/O and no clock reads. "Not enough data" and "too uncertain" are normal
outcomes carried in :class:`~intelligence.decisions.outcomes.Decision`, not exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from intelligence.decisions.outcomes import Decision, FloorState, Outcome, hold
from intelligence.decisions.specs import KnativeFloorSpec
from intelligence.vocabulary import ActionKind, Explanation, Forecast, Lever, Recommendation, WorkloadRef

RULE_PREDICTIVE_FLOOR = "knative.predictive-min-scale"


def lead_steps(step_seconds: float, lead_seconds: float, horizon: int) -> int:
    """How many forecast steps a floor set now must cover: those starting before the next floor is in force.

    A floor is in force from now + lead until the next decision (one step later) + lead;
    step k covers ((k - 1) * step, k * step], so steps with (k - 1) * step < step + lead.

    >>> lead_steps(300, 30, 12), lead_steps(60, 30, 12), lead_steps(60, 0, 12), lead_steps(60, 600, 12)
    (2, 2, 1, 11)
    """
    return max(1, min(horizon, math.ceil(2.0 + lead_seconds / step_seconds - 1e-9) - 1))


def _hold(target: WorkloadRef, outcome: Outcome, summary: str, inputs: Mapping[str, object]) -> Decision:
    return hold(target, outcome, summary, inputs, RULE_PREDICTIVE_FLOOR, lever=Lever.KNATIVE_FLOOR)


def decide_knative_floor(
    forecast: Forecast | None,
    target: WorkloadRef,
    floor: FloorState,
    policy: KnativeFloorSpec,
    now: datetime,
    ttl: timedelta,
) -> Decision:
    """Raise min-scale ahead of a forecast rise; lower it when the forecast falls ("predict up, react down").

    A floor set now is in force from now + the lead time (cold start and actuation,
    ``cold_start_seconds``) until the next decision + the lead time, so it provisions
    for the forecast steps that start before then: the reactive autoscaler covers the
    rest once a step has started. It provisions for the forecast's surge (the point
    plus the rises recently seen at that time of day) when the model gives one, else
    for the upper ``quantile``; replicas needed = that / ``target_per_replica``.
    Lowering waits ``scale_down_delay_minutes`` after any change and then goes at
    most ``scale_down_per_hour`` replicas per hour; the autoscaler's own stable
    window then paces the pods.
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
    by_surge = policy.provision_for == "surge" and bool(forecast.surge)
    wanted = forecast.surge if by_surge else forecast.upper(policy.quantile)
    upper = forecast.upper(policy.quantile)
    peak_index = max(range(steps), key=lambda k: wanted[k])
    peak, peak_point = wanted[peak_index], forecast.point[peak_index]
    if not (math.isfinite(peak) and math.isfinite(peak_point) and math.isfinite(upper[peak_index])):
        return _hold(target, Outcome.INSUFFICIENT_DATA, "forecast is not finite", {})
    peak = max(peak, 0.0)
    scale = max(abs(peak_point), policy.target_per_replica)
    relative_band = (max(upper[peak_index], 0.0) - max(peak_point, 0.0)) / scale
    peak_at = datetime.fromtimestamp(forecast.timestamps()[peak_index], tz=now.tzinfo)
    basis = "surge" if by_surge else f"q{policy.quantile}"
    inputs: dict[str, object] = {
        "series": str(forecast.key),
        "forecast_origin": datetime.fromtimestamp(forecast.origin, tz=now.tzinfo).isoformat(),
        "steps_considered": steps,
        "peak_at": peak_at.isoformat(),
        "peak_point": round(peak_point, 4),
        f"peak_q{policy.quantile}": round(upper[peak_index], 4),
        "provision_for": basis,
        "provisioned": round(peak, 4),
        "target_per_replica": policy.target_per_replica,
        "current_min_scale": floor.min_scale,
        "bounds": [policy.min_scale, policy.max_scale],
        "cold_start_seconds": policy.cold_start_seconds,
    }
    uncertain = relative_band > policy.max_relative_band
    too_wide = f"band {relative_band:.2f}x the forecast is wider than {policy.max_relative_band}x"
    if uncertain and floor.min_scale <= policy.min_scale:
        return _hold(target, Outcome.TOO_UNCERTAIN, too_wide, inputs)
    # too uncertain to hold a floor up: hand the workload back to the reactive autoscaler (paced as any lowering)
    needed = policy.min_scale if uncertain else math.ceil(peak / policy.target_per_replica - 1e-9)
    bounded = min(max(needed, policy.min_scale), policy.max_scale)
    inputs["replicas_needed"] = needed
    rejected: list[str] = []
    if uncertain:
        rejected.append(f"a floor from the forecast: {too_wide}; back to the reactive autoscaler")
    if bounded != needed:
        rejected.append(f"min-scale {needed}: outside bounds [{policy.min_scale}, {policy.max_scale}]")
    current = floor.min_scale
    if bounded > current:
        proposal = min(bounded, current + policy.max_step_up)
        if proposal < bounded:
            rejected.append(f"min-scale {bounded} at once: step limit is +{policy.max_step_up}")
        kind, verb = ActionKind.SCALE_UP, "raise"
        effect = f"{proposal} replicas ready before {peak_at:%H:%M} for {peak:.1f} ({basis})"
    elif bounded < current:
        hours = (now - floor.changed_at).total_seconds() / 3600.0 if floor.changed_at else math.inf
        allowed = math.inf if math.isinf(hours) else math.floor(policy.scale_down_per_hour * hours)
        if hours * 60.0 < policy.scale_down_delay_minutes or allowed < 1:
            return _hold(
                target,
                Outcome.HOLD,
                f"would lower min-scale to {bounded}, but the floor changed {hours * 60:.0f} min ago "
                f"(delay {policy.scale_down_delay_minutes:g} min, at most {policy.scale_down_per_hour}/h down)",
                inputs,
            )
        proposal = int(max(bounded, current - allowed))
        if proposal > bounded:
            rejected.append(f"min-scale {bounded} at once: lowered by at most {policy.scale_down_per_hour} per hour")
        kind, verb = ActionKind.SCALE_DOWN, "lower"
        effect = f"release {current - proposal} idle replica(s); peak {peak:.1f} still fits {proposal} replicas"
        if uncertain:
            effect = f"release {current - proposal} replica(s) held for a forecast too uncertain to trust"
    else:
        return _hold(target, Outcome.HOLD, f"min-scale {current} already fits the forecast peak", inputs)
    explanation = Explanation(
        rule=RULE_PREDICTIVE_FLOOR,
        summary=f"{verb} min-scale of {target} from {current} to {proposal}: forecast "
        f"{basis} {peak:.1f} at {peak_at:%H:%M} / {policy.target_per_replica:g} per replica",
        inputs=inputs,
        rejected=tuple(rejected),
        expected_effect=effect,
    )
    confidence = max(0.0, min(1.0, 1.0 - relative_band / policy.max_relative_band))
    recommendation = Recommendation(
        kind=kind,
        lever=Lever.KNATIVE_FLOOR,
        target=target,
        params={"min_scale": proposal},
        created_at=now,
        confidence=round(confidence, 3),
        explanation=explanation,
        valid_until=now + ttl,
    )
    return Decision(target, Outcome.RECOMMEND, explanation, recommendation)
