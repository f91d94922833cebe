"""The floors each arm of a decision replay sets, sample by sample, strictly online.

Every arm runs the same pipeline the service runs in enact mode: a forecast goes to the
Knative floor decider (:func:`~intelligence.decisions.knative_floor.decide_knative_floor`:
a pulse of min-scale ahead of a peak the autoscaler would miss), the decision is published
calmly (:func:`~intelligence.decisions.publication.calm`) and a new pulse passes the
actuator's envelope (:func:`~intelligence.decisions.envelope.check`: bounds, step, budget)
before it is written, just in time; a pulse ends at its validity and the floor goes back to
the policy's min-scale. Only where the forecast comes from differs:

predictive  the service's own online models (a :class:`~models.bank.ModelBank`)
naive       the highest load of the last 60 minutes, as if it were coming again (the trivial predictor to beat on cost)
oracle      the load that will really come over the lead window (perfect foresight: the limit)

The reactive arm sets no floor at all (the KPA alone, within the static bounds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from intelligence.decisions.envelope import EnactedAction, Proposal, check
from intelligence.decisions.knative_floor import decide_knative_floor
from intelligence.decisions.outcomes import Outcome
from intelligence.decisions.publication import Published, calm, continues
from intelligence.decisions.specs import EnvelopeSpec, KnativeFloorSpec
from intelligence.vocabulary import Forecast, SeriesKey, WorkloadRef

ForecastSource = Callable[[int], Sequence[Forecast | None]]  # sample index -> one forecast (or none) per series
Progress = Callable[[str, int, int], None]  # (phase, done, total)
NAIVE_WINDOW_SECONDS = 3600.0


@dataclass
class Pulse:
    start: float  # epoch seconds the floor is in force from (the write plus the actuation delay)
    end: float
    value: int


@dataclass
class ArmFloors:
    """What one arm did: the floor pulses in force per series, and how often it decided and wrote."""

    pulses: list[list[Pulse]]  # per series, in time order
    recommendations: np.ndarray  # [series] pulses opened or raised after the warm-up (the published stream)
    enacted: np.ndarray  # [series] floor writes after the warm-up (pulse starts and raises)
    too_uncertain: np.ndarray  # [series] decisions refused as too uncertain after the warm-up
    refused: np.ndarray  # [series] pulses the envelope did not let through after the warm-up
    baseline: int = 0

    def events(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Series ``j``'s floor as (times, values): each value in force from its time until the next."""
        times, values = [-np.inf], [self.baseline]
        for pulse in self.pulses[j]:
            if pulse.end <= pulse.start:
                continue
            if times[-1] > pulse.start:  # the pulse before ends where this one starts
                times.pop(), values.pop()
            times += [pulse.start, pulse.end]
            values += [pulse.value, self.baseline]
        return np.array(times), np.array(values, np.int64)


@dataclass
class EnactPipeline:
    """Decider, calm publication and envelope for many series, as the service runs them in enact mode."""

    names: Sequence[str]
    policy: KnativeFloorSpec
    envelope: EnvelopeSpec
    delay_seconds: float  # from a decision to its write in force
    signal: str = "requests"
    keys: list[SeriesKey] = field(init=False)
    targets: list[WorkloadRef] = field(init=False)
    published: list[Published | None] = field(init=False)
    history: list[EnactedAction] = field(default_factory=list)  # writes within the envelope's longest window

    def __post_init__(self) -> None:
        self.keys = [
            SeriesKey.of("replay", self.signal, {"namespace": "replay", "workload": str(n)}) for n in self.names
        ]
        self.targets = [key.workload for key in self.keys]
        self.published = [None] * len(self.keys)

    def step(self, forecasts: Sequence[Forecast | None], now: datetime, counting: bool, arm: ArmFloors) -> None:
        window = timedelta(minutes=self.envelope.longest_window_minutes)
        self.history = [a for a in self.history if now - a.at < window]
        for j, target in enumerate(self.targets):
            known = self.published[j]
            decision = decide_knative_floor(forecasts[j], target, known, self.policy, now)
            arm.too_uncertain[j] += counting and decision.outcome is Outcome.TOO_UNCERTAIN
            rec = calm(decision, known, self.envelope, timedelta(0), now).recommendation
            if rec is None or rec.valid_until is None:
                continue
            value, until = int(rec.value), rec.valid_until
            running = known is not None and continues(known, value, now)
            if running and known is not None and int(known.value) == value:  # the pulse is extended
                self.published[j] = Published(value, known.direction, known.changed_at, now, until)
                arm.pulses[j][-1].end = max(arm.pulses[j][-1].end, until.timestamp() + self.delay_seconds)
                continue
            current = int(known.value) if running and known is not None else self.policy.min_scale
            bounds = (self.policy.min_scale, self.policy.max_scale)
            verdict = check(Proposal(target, current, value, bounds), self.history, self.envelope, False, now)
            if not verdict.allowed or verdict.value is None:
                arm.refused[j] += counting and not verdict.skip
                continue
            self.history.append(EnactedAction(target, now, 1))
            start = (rec.in_force_at or now).timestamp() + self.delay_seconds
            if running and arm.pulses[j]:  # a raise within the running pulse
                arm.pulses[j][-1].end = start
            arm.pulses[j].append(Pulse(start, until.timestamp() + self.delay_seconds, verdict.value))
            self.published[j] = Published(verdict.value, 1, now, now, until)
            arm.recommendations[j] += counting
            arm.enacted[j] += counting


def run_arm(
    source: ForecastSource,
    epoch: np.ndarray,
    pipeline: EnactPipeline,
    warmup: int,
    phase: str,
    progress: Progress | None = None,
) -> ArmFloors:
    count = len(pipeline.keys)
    arm = ArmFloors(
        pulses=[[] for _ in range(count)],
        recommendations=np.zeros(count, np.int64),
        enacted=np.zeros(count, np.int64),
        too_uncertain=np.zeros(count, np.int64),
        refused=np.zeros(count, np.int64),
        baseline=pipeline.policy.min_scale,
    )
    every = max(1, len(epoch) // 100)
    for i in range(len(epoch)):
        now = datetime.fromtimestamp(float(epoch[i]), UTC)
        pipeline.step(source(i), now, i >= warmup, arm)
        if progress is not None and (i % every == 0 or i == len(epoch) - 1):
            progress(phase, i + 1, len(epoch))
    return arm


def _known(load: np.ndarray) -> np.ndarray:
    """The load as the arms may see it: missing samples count as no load."""
    return np.nan_to_num(np.asarray(load, dtype=np.float64), nan=0.0)


def naive_source(
    epoch: np.ndarray, load: np.ndarray, keys: Sequence[SeriesKey], horizon: int, quantile: float
) -> ForecastSource:
    """At each sample: the highest load of the last hour, for every step ahead."""
    step = float(epoch[1] - epoch[0])
    window = max(1, round(NAIVE_WINDOW_SECONDS / step))
    known = _known(load)

    def forecasts(i: int) -> list[Forecast | None]:
        peak = known[max(0, i - window + 1) : i + 1].max(axis=0)
        return [
            _flat(keys[j], float(epoch[i]), step, (float(peak[j]),) * horizon, quantile, float(known[i, j]))
            for j in range(len(keys))
        ]

    return forecasts


def oracle_source(
    epoch: np.ndarray, load: np.ndarray, keys: Sequence[SeriesKey], horizon: int, quantile: float
) -> ForecastSource:
    """At each sample: the load that will really come (the decider looks at the lead window of it)."""
    step = float(epoch[1] - epoch[0])
    known = _known(load)
    n = len(known)

    def forecasts(i: int) -> list[Forecast | None]:
        ahead = known[np.minimum(np.arange(i + 1, i + 1 + horizon), n - 1)]
        return [
            _flat(keys[j], float(epoch[i]), step, tuple(ahead[:, j].tolist()), quantile, float(known[i, j]))
            for j in range(len(keys))
        ]

    return forecasts


def _flat(
    key: SeriesKey, origin: float, step: float, values: tuple[float, ...], quantile: float, last: float
) -> Forecast:
    """A forecast that is sure of itself: point, band and surge all equal the given values."""
    tail = round(1.0 - quantile, 6)
    return Forecast(key, origin, step, values, {tail: values, quantile: values}, "replay", values, last)
