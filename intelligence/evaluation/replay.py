"""Decision replay: what the predictive floor would have changed on a recorded load, and where it stands.

A trace of load (requests/s or concurrency, one column per Knative service) goes through
the live pipeline, strictly online: the forecaster learns each sample as the engine does
(through a :class:`~models.bank.ModelBank`), the decider turns each forecast into a
min-scale, and the decision is published calmly and enacted within the actuator's envelope
exactly as enact mode would (:mod:`intelligence.evaluation.arms`). The simulated KPA
(:mod:`intelligence.evaluation.kpa`) then serves the same load in every arm:

reactive    the KPA alone, within the static bounds
predictive  the service's floors
naive       floors from the highest load of the last hour (the trivial predictor to beat on cost)
oracle      floors from the load that will really come over the lead window (the limit)

The first ``warmup_days`` teach the models and settle the autoscalers; every arm is
reported over the same span after it. Moves are not simulated in this single-cluster
replay (see the continuum replay for those).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from collectors.replay import infer_step
from intelligence.decisions.specs import EnvelopeSpec, KnativeFloorSpec
from intelligence.evaluation.arms import ArmFloors, EnactPipeline, naive_source, oracle_source, run_arm
from intelligence.evaluation.kpa import KpaOutcome, KpaSettings, simulate
from intelligence.vocabulary import Forecast, SeriesKey
from models.bank import ModelBank
from models.fleet import ForecastRows
from models.kinds import DEFAULT_DETECTOR, DEFAULT_FORECASTER, ModelSpec

Progress = Callable[[str, int, int], None]  # (phase, done, total)
ARMS = ("reactive", "predictive", "naive", "oracle")
FIGURES = ("under_provisioned_seconds", "unserved_requests", "replica_hours", "cold_start_hits", "scaling_actions")


class ReplayError(ValueError):
    """The trace or the options cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """The decider's policy, the envelope it is enacted within, the simulated KPA and how the models run.

    Every arm runs within the policy's ``[min_scale, max_scale]`` (they replace the KPA's
    bounds), so the only difference between arms is the floor.
    """

    policy: KnativeFloorSpec = field(default_factory=KnativeFloorSpec)
    envelope: EnvelopeSpec = field(default_factory=EnvelopeSpec)
    kpa: KpaSettings = field(default_factory=KpaSettings)
    horizon: int = 12  # steps forecast at each sample
    warmup_days: float = 7.0  # learnt and simulated, not reported
    forecaster: str = DEFAULT_FORECASTER
    forecaster_params: Mapping[str, Any] = field(default_factory=dict)
    detector: str = DEFAULT_DETECTOR
    actuation_delay_seconds: float = 15.0  # from a sample's timestamp to min-scale in force (pull, step, API write)
    recommendation_ttl: timedelta = timedelta(hours=1)
    arms: tuple[str, ...] = ARMS

    @property
    def interval(self) -> float:
        """The band the models track: its upper edge is the policy's quantile."""
        return 2.0 * self.policy.quantile - 1.0

    def describe(self) -> dict[str, Any]:
        envelope = asdict(self.envelope)
        envelope["kill_switch_file"] = None
        return {
            "policy": asdict(self.policy),
            "envelope": envelope,
            "kpa": asdict(self.kpa),
            "horizon": self.horizon,
            "warmup_days": self.warmup_days,
            "forecaster": self.forecaster,
            "forecaster_params": dict(self.forecaster_params),
            "detector": self.detector,
            "interval": round(self.interval, 6),
            "actuation_delay_seconds": self.actuation_delay_seconds,
            "recommendation_ttl_minutes": self.recommendation_ttl.total_seconds() / 60.0,
            "arms": list(self.arms),
        }


@dataclass(frozen=True, slots=True)
class ArmFigures:
    """One arm's result over the reported span (one series, or the sum over series)."""

    under_provisioned_seconds: float
    under_provisioned_share: float  # of the reported time (of series x time for totals)
    unserved_requests: float  # the load above the ready pods' capacity, integrated over time
    unserved_share: float  # of all the load
    replica_hours: float  # pods from creation (pending pods cost too)
    scaling_actions: int  # changes of the scale the KPA asks for
    cold_starts: int  # pods created
    cold_start_hits: int  # times load arrived while no pod was ready
    floor_changes: int = 0  # min-scale changes enacted (0 for the reactive arm)
    moves: int = 0


@dataclass(frozen=True, slots=True)
class SeriesReplay:
    name: str
    arms: Mapping[str, ArmFigures]
    recommendations: int  # predictive floors published after the warm-up
    too_uncertain: int  # predictive decisions refused because the band was too wide, after the warm-up

    @property
    def predictive(self) -> ArmFigures:
        return self.arms["predictive"]

    @property
    def reactive(self) -> ArmFigures:
        return self.arms["reactive"]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    arms: Mapping[str, ArmFigures]
    series: tuple[SeriesReplay, ...]
    step_seconds: float
    warmup_samples: int
    reported_seconds: float
    options: dict[str, Any]
    floors: Mapping[str, ArmFloors] = field(default_factory=dict, repr=False)  # the floor pulses of each deciding arm

    @property
    def predictive(self) -> ArmFigures:
        return self.arms["predictive"]

    @property
    def reactive(self) -> ArmFigures:
        return self.arms["reactive"]

    def changes(self, arm: str = "predictive") -> dict[str, float]:
        """Relative change of each figure, ``arm`` against reactive (-0.5: halved; NaN: reactive is 0)."""
        return relative(self.arms[arm], self.reactive)

    def as_dict(self) -> dict[str, Any]:
        return {
            "arms": {name: asdict(figures) for name, figures in self.arms.items()},
            "changes": {name: self.changes(name) for name in self.arms if name != "reactive"},
            "step_seconds": self.step_seconds,
            "warmup_samples": self.warmup_samples,
            "reported_hours": self.reported_seconds / 3600.0,
            "options": self.options,
            "series": [{**asdict(s), "arms": {k: asdict(v) for k, v in s.arms.items()}} for s in self.series],
        }


def relative(arm: ArmFigures, base: ArmFigures) -> dict[str, float]:
    out = {}
    for name in FIGURES:
        old, new = float(getattr(base, name)), float(getattr(arm, name))
        out[name] = (new - old) / old if old else (0.0 if new == old else math.nan)
    return out


def replay(
    epoch: np.ndarray,
    load: np.ndarray,
    names: Sequence[str],
    options: ReplayOptions,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay ``load[samples, series]`` (requests/s or concurrency at evenly spaced ``epoch`` seconds) in every arm."""
    epoch = np.asarray(epoch, dtype=np.float64)
    load = np.asarray(load, dtype=np.float64).reshape(len(epoch), -1)
    step = even_step(epoch)
    if load.shape[1] != len(names):
        raise ReplayError(f"{load.shape[1]} value columns but {len(names)} names")
    unknown = [a for a in options.arms if a not in ARMS]
    if unknown or "reactive" not in options.arms:
        raise ReplayError(f"arms must include reactive and be among {', '.join(ARMS)}; got {list(options.arms)}")
    warmup = math.ceil(options.warmup_days * 86_400.0 / step - 1e-9)
    if warmup >= len(epoch) - 1:
        raise ReplayError(
            f"the trace covers {(len(epoch) - 1) * step / 86_400.0:.2f} days, not more than the "
            f"{options.warmup_days:g}-day warm-up: nothing would be reported"
        )
    decided: dict[str, ArmFloors] = {}
    for arm in options.arms:
        if arm != "reactive":
            decided[arm] = _decide(arm, epoch, load, names, options, warmup, progress)
    policy = options.policy
    order = ["reactive", *decided]
    static = (np.array([-np.inf]), np.array([policy.min_scale]))
    events = []
    for arm in order:
        for j in range(len(names)):
            times, values = decided[arm].events(j) if arm in decided else static
            events.append((times - epoch[0], values))
    kpa = replace(options.kpa, min_scale=policy.min_scale, max_scale=policy.max_scale)
    outcome = simulate(
        np.hstack([load] * len(order)),
        step,
        kpa,
        report_from=warmup,
        progress=(lambda done, total: progress("simulate", done, total)) if progress else None,
        floor_events=events,
    )
    count = len(names)

    def figures(arm: str, columns: Sequence[int]) -> ArmFigures:
        base = order.index(arm) * count
        changes = int(decided[arm].enacted[list(columns)].sum()) if arm in decided else 0
        return _figures(outcome, [base + j for j in columns], changes)

    predictive = decided.get("predictive")
    per_series = tuple(
        SeriesReplay(
            str(name),
            {arm: figures(arm, [j]) for arm in order},
            int(predictive.recommendations[j]) if predictive else 0,
            int(predictive.too_uncertain[j]) if predictive else 0,
        )
        for j, name in enumerate(names)
    )
    return ReplayReport(
        arms={arm: figures(arm, range(count)) for arm in order},
        series=per_series,
        step_seconds=step,
        warmup_samples=warmup,
        reported_seconds=outcome.seconds,
        options=options.describe(),
        floors=decided,
    )


def _decide(
    arm: str,
    epoch: np.ndarray,
    load: np.ndarray,
    names: Sequence[str],
    options: ReplayOptions,
    warmup: int,
    progress: Progress | None,
) -> ArmFloors:
    pipeline = EnactPipeline(
        names, options.policy, options.envelope, options.actuation_delay_seconds, options.policy.signal
    )
    if arm == "naive":
        source = naive_source(epoch, load, pipeline.keys, options.horizon, options.policy.quantile)
    elif arm == "oracle":
        source = oracle_source(epoch, load, pipeline.keys, options.horizon, options.policy.quantile)
    else:
        source = _model_source(epoch, load, pipeline.keys, options)
    return run_arm(source, epoch, pipeline, warmup, f"{arm}: forecast and decide", progress)


def _model_source(
    epoch: np.ndarray, load: np.ndarray, keys: Sequence[SeriesKey], options: ReplayOptions
) -> Callable[[int], list[Forecast | None]]:
    """The service's models, learning each sample before forecasting from it."""
    step = float(epoch[1] - epoch[0])
    params = {"step_seconds": step, "horizon": options.horizon, "interval": options.interval}
    spec = ModelSpec.of(options.forecaster, options.detector, {**params, **options.forecaster_params}, {})
    bank = ModelBank(lambda _key: spec, interval=options.interval)

    def forecasts(i: int) -> list[Forecast | None]:
        stamp = epoch[i : i + 1]
        bank.observe_many([(key, stamp, load[i, j : j + 1]) for j, key in enumerate(keys)], report_at=2.0)
        found = _by_key(bank.forecast_many(keys, options.horizon, step))
        return [found.get(key) for key in keys]

    return forecasts


def _by_key(found: Sequence[Forecast | ForecastRows]) -> dict[SeriesKey, Forecast]:
    out: dict[SeriesKey, Forecast] = {}
    for item in found:
        if isinstance(item, ForecastRows):
            out.update((key, item.row(r)) for r, key in enumerate(item.keys))
        else:
            out[item.key] = item
    return out


def even_step(epoch: np.ndarray, error: type[ValueError] = ReplayError) -> float:
    """The step of a trace's rows; ``error`` when there are fewer than two or they are not evenly spaced."""
    if len(epoch) < 2:
        raise error("a replay needs at least two rows")
    step = infer_step(epoch)
    gaps = np.diff(epoch)
    if np.any(np.abs(gaps - step) > 1e-6 * step):
        raise error(f"rows must be evenly spaced ({step:g}s apart); leave a cell empty for a missing value")
    return step


def _figures(outcome: KpaOutcome, columns: list[int], floor_changes: int) -> ArmFigures:
    under = float(outcome.under_provisioned_seconds[columns].sum())
    unserved = float(outcome.unserved_requests[columns].sum())
    total = float(outcome.requests[columns].sum())
    return ArmFigures(
        under_provisioned_seconds=under,
        under_provisioned_share=under / (outcome.seconds * len(columns)) if outcome.seconds else 0.0,
        unserved_requests=unserved,
        unserved_share=unserved / total if total else 0.0,
        replica_hours=float(outcome.replica_seconds[columns].sum()) / 3600.0,
        scaling_actions=int(outcome.scaling_actions[columns].sum()),
        cold_starts=int(outcome.cold_starts[columns].sum()),
        cold_start_hits=int(outcome.cold_start_hits[columns].sum()),
        floor_changes=floor_changes,
    )


def write_floors(directory: Path, epoch: np.ndarray, floors: ArmFloors, names: Sequence[str]) -> list[Path]:
    """``DIR/<column>.csv`` per series, header ``timestamp,floor``: each min-scale and the time (ISO 8601 UTC) from
    which it is in force (the first row: the baseline from the trace's start), one row per change."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for j, name in enumerate(names):
        path = directory / f"{_file_name(str(name))}.csv"
        times, values = floors.events(j)
        times = np.maximum(times, float(epoch[0]))
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "floor"])
            last = None
            for at, value in zip(times.tolist(), values.tolist(), strict=True):
                if value != last:
                    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                    writer.writerow([stamp, int(value)])
                    last = value
        written.append(path)
    return written


def _file_name(name: str) -> str:
    """The column name as a file name (path separators and control characters replaced)."""
    cleaned = "".join("_" if c in '/\\:*?"<>|' or ord(c) < 32 else c for c in name).strip(". ")
    return cleaned or "column"


def format_report(report: ReplayReport) -> str:
    """Every arm side by side, and each one's change against the reactive KPA."""
    arms = list(report.arms)

    def pct(v: float) -> str:
        return "" if not math.isfinite(v) else f" ({100.0 * v:+.0f}%)"

    def cells(name: str, value: Callable[[ArmFigures], str], key: str | None) -> list[str]:
        out = []
        for arm in arms:
            change = relative(report.arms[arm], report.reactive)[key] if key and arm != "reactive" else math.nan
            out.append(value(report.arms[arm]) + pct(change))
        return [name, *out]

    rows = [
        ["", *[f"{a}" + (" (KPA)" if a == "reactive" else "") for a in arms]],
        cells(
            "under-provisioned time",
            lambda f: f"{f.under_provisioned_seconds / 3600:.2f} h",
            "under_provisioned_seconds",
        ),
        cells("unserved load", lambda f: f"{100 * f.unserved_share:.3f}%", "unserved_requests"),
        cells("cold-start hits", lambda f: f"{f.cold_start_hits:,}", "cold_start_hits"),
        cells("pod-hours", lambda f: f"{f.replica_hours:,.1f}", "replica_hours"),
        cells("KPA scaling actions", lambda f: f"{f.scaling_actions:,}", "scaling_actions"),
        cells("floor changes", lambda f: f"{f.floor_changes:,}", None),
    ]
    width = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = [
        f"{len(report.series)} series, {report.reported_seconds / 3600:.1f} h reported after "
        f"{report.warmup_samples} warm-up samples of {report.step_seconds:g}s",
        *(
            "  ".join(cell.ljust(width[c]) if c == 0 else cell.rjust(width[c]) for c, cell in enumerate(r))
            for r in rows
        ),
    ]
    return "\n".join(lines)
