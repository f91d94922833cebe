"""Decision replay: what the predictive floor would have changed on a recorded load.

A trace of request rates (one column per Knative service) goes through the live
pipeline, strictly online: the default forecaster learns each sample as the engine does
(through a :class:`~models.bank.ModelBank`) and forecasts ``horizon`` steps from it; the
decider (:func:`~intelligence.decisions.knative_floor.decide_knative_floor`) turns the forecast into a
min-scale, fed back as the :class:`FloorState` after every recommendation as the
actuator does in enact mode. The simulated KPA (:mod:`intelligence.evaluation.kpa`)
then serves the same load twice: with min-scale driven by those decisions (predictive)
and with the static bounds only (reactive). The first ``warmup_days`` teach the models
and settle both autoscalers; both arms are reported over the same span after it.

Moves (cross-cluster rescheduling) are not simulated in a single-cluster Knative replay:
their column is reported, always 0, so the table matches the issue's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from collectors.replay import infer_step
from intelligence.decisions.knative_floor import FloorState, Outcome, decide_knative_floor
from intelligence.decisions.specs import KnativeFloorSpec
from intelligence.evaluation.kpa import KpaOutcome, KpaSettings, simulate
from intelligence.vocabulary import Forecast, SeriesKey
from models.bank import ModelBank
from models.fleet import ForecastRows
from models.kinds import DEFAULT_DETECTOR, DEFAULT_FORECASTER, ModelSpec

Progress = Callable[[str, int, int], None]  # (phase, done, total)
CLUSTER, NAMESPACE = "replay", "replay"


class ReplayError(ValueError):
    """The trace or the options cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """The decider's policy, the simulated KPA and how the models run.

    Both arms run within the policy's ``[min_scale, max_scale]`` (they replace the KPA's
    bounds), so the only difference between them is the predictive floor.
    """

    policy: KnativeFloorSpec = field(default_factory=KnativeFloorSpec)
    kpa: KpaSettings = field(default_factory=KpaSettings)
    horizon: int = 12  # steps forecast at each sample
    warmup_days: float = 7.0  # learnt and simulated, not reported
    forecaster: str = DEFAULT_FORECASTER
    forecaster_params: Mapping[str, Any] = field(default_factory=dict)
    detector: str = DEFAULT_DETECTOR
    actuation_delay_seconds: float = 15.0  # from a sample's timestamp to min-scale in force (pull, step, API write)
    recommendation_ttl: timedelta = timedelta(hours=1)

    @property
    def interval(self) -> float:
        """The band the models track: its upper edge is the policy's quantile."""
        return 2.0 * self.policy.quantile - 1.0

    def describe(self) -> dict[str, Any]:
        return {
            "policy": asdict(self.policy),
            "kpa": asdict(self.kpa),
            "horizon": self.horizon,
            "warmup_days": self.warmup_days,
            "forecaster": self.forecaster,
            "forecaster_params": dict(self.forecaster_params),
            "detector": self.detector,
            "interval": round(self.interval, 6),
            "actuation_delay_seconds": self.actuation_delay_seconds,
            "recommendation_ttl_minutes": self.recommendation_ttl.total_seconds() / 60.0,
        }


@dataclass(frozen=True, slots=True)
class ArmFigures:
    """One arm's result over the reported span (one series, or the sum over series)."""

    under_provisioned_seconds: float
    under_provisioned_share: float  # of the reported time (of series x time for totals)
    unserved_requests: float
    unserved_share: float  # of all requests
    replica_hours: float
    scaling_actions: int
    cold_starts: int
    moves: int = 0


@dataclass(frozen=True, slots=True)
class SeriesReplay:
    name: str
    predictive: ArmFigures
    reactive: ArmFigures
    recommendations: int  # floors recommended (and enacted) after the warm-up
    too_uncertain: int  # decisions refused because the band was too wide, after the warm-up


@dataclass(frozen=True, slots=True)
class ReplayReport:
    predictive: ArmFigures
    reactive: ArmFigures
    series: tuple[SeriesReplay, ...]
    step_seconds: float
    warmup_samples: int
    reported_seconds: float
    options: dict[str, Any]

    def changes(self) -> dict[str, float]:
        """Relative change of each figure, predictive against reactive (-0.5: halved; NaN: reactive is 0)."""
        out = {}
        for name in ("under_provisioned_seconds", "unserved_requests", "replica_hours", "scaling_actions", "moves"):
            base, new = float(getattr(self.reactive, name)), float(getattr(self.predictive, name))
            out[name] = (new - base) / base if base else (0.0 if new == base else math.nan)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "predictive": asdict(self.predictive),
            "reactive": asdict(self.reactive),
            "changes": self.changes(),
            "step_seconds": self.step_seconds,
            "warmup_samples": self.warmup_samples,
            "reported_hours": self.reported_seconds / 3600.0,
            "options": self.options,
            "series": [asdict(s) for s in self.series],
        }


def replay(
    epoch: np.ndarray,
    rates: np.ndarray,
    names: Sequence[str],
    options: ReplayOptions,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay ``rates[samples, series]`` (requests/s at evenly spaced ``epoch`` seconds) through both arms."""
    epoch = np.asarray(epoch, dtype=np.float64)
    rates = np.asarray(rates, dtype=np.float64).reshape(len(epoch), -1)
    step = _even_step(epoch)
    if rates.shape[1] != len(names):
        raise ReplayError(f"{rates.shape[1]} value columns but {len(names)} names")
    warmup = math.ceil(options.warmup_days * 86_400.0 / step - 1e-9)
    if warmup >= len(epoch) - 1:
        raise ReplayError(
            f"the trace covers {(len(epoch) - 1) * step / 86_400.0:.2f} days, not more than the "
            f"{options.warmup_days:g}-day warm-up: nothing would be reported"
        )
    floors, recommended, uncertain = decide_floors(epoch, rates, names, options, warmup, progress)
    policy = options.policy
    kpa = replace(options.kpa, min_scale=policy.min_scale, max_scale=policy.max_scale)
    static = np.full_like(floors, policy.min_scale)
    outcome = simulate(
        np.hstack([rates, rates]),
        step,
        kpa,
        min_scale=np.hstack([floors, static]),
        report_from=warmup,
        floor_delay_seconds=options.actuation_delay_seconds,
        progress=(lambda done, total: progress("simulate", done, total)) if progress else None,
    )
    count = len(names)
    predictive, reactive = range(count), range(count, 2 * count)
    per_series = tuple(
        SeriesReplay(
            str(name),
            _figures(outcome, [j]),
            _figures(outcome, [count + j]),
            int(recommended[j]),
            int(uncertain[j]),
        )
        for j, name in enumerate(names)
    )
    return ReplayReport(
        predictive=_figures(outcome, list(predictive)),
        reactive=_figures(outcome, list(reactive)),
        series=per_series,
        step_seconds=step,
        warmup_samples=warmup,
        reported_seconds=outcome.seconds,
        options=options.describe(),
    )


def _even_step(epoch: np.ndarray) -> float:
    if len(epoch) < 2:
        raise ReplayError("a replay needs at least two rows")
    step = infer_step(epoch)
    gaps = np.diff(epoch)
    if np.any(np.abs(gaps - step) > 1e-6 * step):
        raise ReplayError(f"rows must be evenly spaced ({step:g}s apart); leave a cell empty for a missing value")
    return step


def _figures(outcome: KpaOutcome, columns: list[int]) -> ArmFigures:
    under = float(outcome.under_provisioned_seconds[columns].sum())
    unserved = float(outcome.unserved_requests[columns].sum())
    requests = float(outcome.requests[columns].sum())
    return ArmFigures(
        under_provisioned_seconds=under,
        under_provisioned_share=under / (outcome.seconds * len(columns)) if outcome.seconds else 0.0,
        unserved_requests=unserved,
        unserved_share=unserved / requests if requests else 0.0,
        replica_hours=float(outcome.replica_seconds[columns].sum()) / 3600.0,
        scaling_actions=int(outcome.scaling_actions[columns].sum()),
        cold_starts=int(outcome.cold_starts[columns].sum()),
    )


def decide_floors(
    epoch: np.ndarray,
    rates: np.ndarray,
    names: Sequence[str],
    options: ReplayOptions,
    warmup: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The min-scale in force after each sample's decision ``[samples, series]``, as the engine would set it.

    Also returns, per series, the recommendations and the too-uncertain refusals from
    sample ``warmup`` on.
    """
    policy = options.policy
    step = float(epoch[1] - epoch[0])
    params = {"step_seconds": step, "horizon": options.horizon, "interval": options.interval}
    spec = ModelSpec.of(options.forecaster, options.detector, {**params, **options.forecaster_params}, {})
    bank = ModelBank(lambda _key: spec, interval=options.interval)
    keys = [SeriesKey.of(CLUSTER, policy.signal, {"namespace": NAMESPACE, "workload": str(n)}) for n in names]
    targets = [key.workload for key in keys]
    state = [FloorState(policy.min_scale) for _ in keys]
    floors = np.empty(rates.shape, np.int64)
    recommended = np.zeros(len(keys), np.int64)
    uncertain = np.zeros(len(keys), np.int64)
    every = max(1, len(epoch) // 100)
    for i in range(len(epoch)):
        stamp = epoch[i : i + 1]
        bank.observe_many([(key, stamp, rates[i, j : j + 1]) for j, key in enumerate(keys)], report_at=2.0)
        now = datetime.fromtimestamp(float(epoch[i]), UTC)
        forecasts = _by_key(bank.forecast_many(keys, options.horizon, step))
        for j, key in enumerate(keys):
            decision = decide_knative_floor(
                forecasts.get(key), targets[j], state[j], policy, now, options.recommendation_ttl
            )
            if decision.outcome is Outcome.RECOMMEND and decision.recommendation is not None:
                state[j] = FloorState(int(decision.recommendation.params["min_scale"]), now)
                recommended[j] += i >= warmup
            elif decision.outcome is Outcome.TOO_UNCERTAIN:
                uncertain[j] += i >= warmup
            floors[i, j] = state[j].min_scale
        if progress is not None and (i % every == 0 or i == len(epoch) - 1):
            progress("forecast and decide", i + 1, len(epoch))
    return floors, recommended, uncertain


def _by_key(found: Sequence[Forecast | ForecastRows]) -> dict[SeriesKey, Forecast]:
    out: dict[SeriesKey, Forecast] = {}
    for item in found:
        if isinstance(item, ForecastRows):
            out.update((key, item.row(r)) for r, key in enumerate(item.keys))
        else:
            out[item.key] = item
    return out


def format_report(report: ReplayReport) -> str:
    """The side-by-side table (reactive, predictive, relative change) and the settings that matter."""
    r, p, change = report.reactive, report.predictive, report.changes()

    def pct(v: float) -> str:
        return "n/a" if not math.isfinite(v) else f"{100.0 * v:+.1f}%"

    rows = [
        (
            "under-provisioned time",
            f"{100 * r.under_provisioned_share:.3f}% ({r.under_provisioned_seconds / 3600:.2f} h)",
            f"{100 * p.under_provisioned_share:.3f}% ({p.under_provisioned_seconds / 3600:.2f} h)",
            pct(change["under_provisioned_seconds"]),
        ),
        (
            "unserved requests",
            f"{100 * r.unserved_share:.4f}% ({r.unserved_requests:,.0f})",
            f"{100 * p.unserved_share:.4f}% ({p.unserved_requests:,.0f})",
            pct(change["unserved_requests"]),
        ),
        ("replica-hours", f"{r.replica_hours:,.1f}", f"{p.replica_hours:,.1f}", pct(change["replica_hours"])),
        ("scaling actions", f"{r.scaling_actions:,}", f"{p.scaling_actions:,}", pct(change["scaling_actions"])),
        ("cold starts", f"{r.cold_starts:,}", f"{p.cold_starts:,}", ""),
        ("moves", f"{r.moves}", f"{p.moves}", "(not simulated)"),
    ]
    lines = [
        f"{len(report.series)} series, {report.reported_seconds / 86_400:.2f} days reported after "
        f"{report.warmup_samples} warm-up samples of {report.step_seconds:g}s",
        f"{'':<24} {'reactive (KPA)':>26} {'predictive floor':>26} {'change':>16}",
        *(f"{a:<24} {b:>26} {c:>26} {d:>16}" for a, b, c, d in rows),
    ]
    return "\n".join(lines)
