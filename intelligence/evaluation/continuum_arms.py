"""The arms of a continuum replay: who moves which workload where, sample by sample.

static      nothing ever moves
threshold   the reactive rule of ICOS-style policy managers: when a cluster's measured utilisation has
            stayed above 90% for 5 minutes, move its largest movable workload to the first cluster (in
            the layout's order) that it is allowed on and that stays at or below 90% with it now; the
            5 minutes are measured after its previous move off that cluster took effect
predictive  the service's own decisions (:func:`~intelligence.decisions.planner.plan`: cluster loads from
            each workload's forecast upper quantile, ``decide_moves`` with its move cost and dwell, calm
            publication), within the actuator's envelope (budget, cooldown), from forecasts of the
            service's models learning each workload's demand strictly online
oracle      the same decision code, fed the demand that will really come over the next hour (the limit)

An arm sees the samples up to now (never a later one, except the oracle, by design), the
measured demand per cluster, and the placement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from intelligence.decisions.envelope import EnactedAction, Proposal, check
from intelligence.decisions.outcomes import Outcome
from intelligence.decisions.planner import DecisionInputs, plan
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.publication import Published
from intelligence.decisions.specs import EnvelopeSpec, PolicySpec, RescheduleSpec
from intelligence.evaluation.continuum import Continuum
from intelligence.evaluation.continuum_layout import NAMESPACE, ContinuumLayout
from intelligence.vocabulary import Forecast, Lever, SeriesKey, WorkloadRef
from models.bank import ModelBank
from models.fleet import ForecastRows
from models.kinds import ModelSpec

Moves = list[tuple[int, int]]  # (workload, destination cluster)


@dataclass(frozen=True, slots=True)
class ContinuumView:
    """What an arm may see at sample ``i``: the past and the present, not the future."""

    i: int
    now: float  # epoch seconds of sample i
    step: float
    demand: np.ndarray  # [i + 1, workloads] each workload's demand so far (cores; NaN: missing)
    cluster_demand: np.ndarray  # [i + 1, clusters] measured mean demand per cluster and interval (copies in flight too)
    continuum: Continuum  # the placement and the moves in flight (read only)


class ContinuumArm(Protocol):
    refused: int  # moves decided but not let through (by the actuator's envelope)

    def decide(self, view: ContinuumView, acting: bool) -> Moves:
        """The moves to start now (none while not ``acting``: the warm-up, where models only learn)."""
        ...


class StaticArm:
    refused = 0

    def decide(self, view: ContinuumView, acting: bool) -> Moves:
        return []


@dataclass
class ThresholdArm:
    """Above ``threshold`` for ``minutes``: move the largest movable workload to the first cluster that fits now.

    The utilisation is measured (the demand of everything running there, a copy still
    starting included); the ``minutes`` start again once a move off the cluster is in force.
    """

    layout: ContinuumLayout
    threshold: float = 0.9
    minutes: float = 5.0
    refused: int = 0  # it has no envelope

    def __post_init__(self) -> None:
        self.capacity = np.array([c.capacity_cores for c in self.layout.clusters])
        self.allowed = np.array(self.layout.allowed(), dtype=bool)
        self.movable = np.array([w.movable for w in self.layout.workloads], dtype=bool)
        self.relieved_at = np.full(len(self.capacity), -np.inf)  # when the last move off each cluster took effect

    def decide(self, view: ContinuumView, acting: bool) -> Moves:
        samples = max(1, math.ceil(self.minutes * 60.0 / view.step - 1e-9))
        if not acting or view.i + 1 < samples:
            return []
        utilisation = view.cluster_demand[-samples:] / self.capacity
        measured_since = view.now - samples * view.step  # the window's start
        hot = np.flatnonzero((utilisation > self.threshold).all(axis=0) & (self.relieved_at <= measured_since))
        if hot.size == 0:
            return []
        now = np.nan_to_num(view.demand[-1], nan=0.0)
        load = view.cluster_demand[-1].copy()  # as planned so far this step
        sim = view.continuum
        moves: Moves = []
        for c in hot.tolist():
            candidates = [
                w
                for w in np.flatnonzero((sim.serving == c) & self.movable).tolist()
                if not sim.in_flight(w) and now[w] > 0
            ]
            for w in sorted(candidates, key=lambda w: (-now[w], w)):
                fits = [
                    d
                    for d in range(len(self.capacity))
                    if d != c and self.allowed[w, d] and load[d] + now[w] <= self.threshold * self.capacity[d]
                ]
                if fits:
                    moves.append((w, fits[0]))
                    load[fits[0]] += now[w]
                    load[c] -= now[w]
                    self.relieved_at[c] = view.now + sim.delay
                    break
        return moves


class LoadForecasts(Protocol):
    """Each workload's demand forecast, learnt (or known) sample by sample; ``serving``: each one's cluster."""

    def learn(self, i: int, serving: np.ndarray) -> None: ...

    def forecasts(self, i: int, serving: np.ndarray) -> Sequence[Forecast | None]: ...


def workload_keys(layout: ContinuumLayout, signal: str) -> list[SeriesKey]:
    """One series per workload, wherever it runs (its demand is its own, not its cluster's)."""
    return [SeriesKey.of("continuum", signal, {"namespace": NAMESPACE, "workload": w.name}) for w in layout.workloads]


class ModelForecasts:
    """The service's models: each sample is learnt (scored, then learnt) before forecasting from it.

    With ``per_cluster`` (as the service keys its series: cluster, signal, labels), a workload's
    demand is learnt as the series of the cluster it serves from: after a move its model on the
    destination starts afresh (and resumes where it stopped if it ever comes back). Without, one
    series follows the workload wherever it runs (kinder to the forecasts than the service is).
    """

    def __init__(
        self,
        epoch: np.ndarray,
        demand: np.ndarray,
        keys: Sequence[SeriesKey],
        horizon: int,
        quantile: float,
        forecaster: str,
        detector: str,
        forecaster_params: dict[str, Any],
        clusters: Sequence[str] = (),
    ) -> None:
        self.epoch, self.demand, self.keys, self.horizon = epoch, demand, list(keys), horizon
        self.clusters = list(clusters)  # empty: one series per workload
        self.step = float(epoch[1] - epoch[0])
        interval = 2.0 * quantile - 1.0  # the band's upper edge is the policy's quantile
        params = {"step_seconds": self.step, "horizon": horizon, "interval": interval, **forecaster_params}
        spec = ModelSpec.of(forecaster, detector, params, {})
        self.bank = ModelBank(lambda _key: spec, interval=interval)

    def _keys(self, serving: np.ndarray) -> list[SeriesKey]:
        if not self.clusters:
            return self.keys
        return [replace(key, cluster=self.clusters[int(c)]) for key, c in zip(self.keys, serving, strict=True)]

    def learn(self, i: int, serving: np.ndarray) -> None:
        stamp = self.epoch[i : i + 1]
        self.bank.observe_many(
            [(key, stamp, self.demand[i, j : j + 1]) for j, key in enumerate(self._keys(serving))], report_at=2.0
        )

    def forecasts(self, i: int, serving: np.ndarray) -> list[Forecast | None]:
        keys = self._keys(serving)
        found: dict[SeriesKey, Forecast] = {}
        for item in self.bank.forecast_many(keys, self.horizon, self.step):
            if isinstance(item, ForecastRows):
                found.update((key, item.row(r)) for r, key in enumerate(item.keys))
            else:
                found[item.key] = item
        return [found.get(key) for key in keys]


class OracleForecasts:
    """Perfect foresight: the demand that will really come over the next ``horizon`` samples, with no doubt."""

    def __init__(
        self, epoch: np.ndarray, demand: np.ndarray, keys: Sequence[SeriesKey], horizon: int, quantile: float
    ) -> None:
        self.epoch, self.keys, self.horizon, self.quantile = epoch, list(keys), horizon, quantile
        self.demand = np.nan_to_num(np.asarray(demand, dtype=np.float64), nan=0.0)
        self.step = float(epoch[1] - epoch[0])

    def learn(self, i: int, serving: np.ndarray) -> None:
        return None

    def forecasts(self, i: int, serving: np.ndarray) -> list[Forecast | None]:
        ahead = self.demand[np.minimum(np.arange(i + 1, i + 1 + self.horizon), len(self.demand) - 1)]
        tail = round(1.0 - self.quantile, 6)
        out: list[Forecast | None] = []
        for j, key in enumerate(self.keys):
            values = tuple(ahead[:, j].tolist())
            quantiles = {tail: values, self.quantile: values}
            out.append(Forecast(key, float(self.epoch[i]), self.step, values, quantiles, "oracle", (), values[0]))
        return out


@dataclass
class ServiceArm:
    """The service's rescheduling decisions and the actuator's envelope, from some forecasts of the demand."""

    layout: ContinuumLayout
    source: LoadForecasts
    reschedule: RescheduleSpec
    envelope: EnvelopeSpec
    ttl: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        spec = PolicySpec(reschedule=self.reschedule, envelope=self.envelope, overrides=self.layout.overrides())
        self.book = PolicyBook(spec)
        self.views = self.layout.views()
        self.cluster_of = self.layout.cluster_index()
        self.workload_of = {w.name: j for j, w in enumerate(self.layout.workloads)}
        self.last_moved: dict[tuple[str, str], datetime] = {}
        self.published: dict[tuple[WorkloadRef, Lever], Published] = {}
        self.history: list[EnactedAction] = []
        self.refused = 0  # moves the envelope did not let through

    def decide(self, view: ContinuumView, acting: bool) -> Moves:
        serving = view.continuum.serving
        self.source.learn(view.i, serving)
        if not acting:
            return []
        now = datetime.fromtimestamp(view.now, UTC)
        placement = view.continuum.placement()
        names = [c.name for c in self.layout.clusters]
        load = [
            replace(fc, key=SeriesKey(names[int(placement[j])], fc.key.signal, fc.key.labels))
            for j, fc in enumerate(self.source.forecasts(view.i, serving))
            if fc is not None
        ]
        inputs = DecisionInputs((), load, self.views, self.last_moved, self.published)
        decided = plan(inputs, self.book, now, self.ttl)
        window = timedelta(minutes=self.envelope.longest_window_minutes)
        self.history = [a for a in self.history if now - a.at < window]
        moves: Moves = []
        for decision in decided.decisions:
            rec = decision.recommendation
            if decision.outcome is not Outcome.RECOMMEND or rec is None or rec.lever is not Lever.PLACEMENT:
                continue
            w, destination = self.workload_of[rec.target.name], self.cluster_of[str(rec.value)]
            if view.continuum.in_flight(w):
                continue
            verdict = check(Proposal(rec.target, None, None), self.history, self.envelope, False, now)
            if not verdict.allowed:
                self.refused += 1
                continue
            self.history.append(EnactedAction(rec.target, now, 0))
            self.published[(rec.target, Lever.PLACEMENT)] = Published(str(rec.value), 0, now, now)
            self.last_moved[(rec.target.namespace, rec.target.name)] = now
            moves.append((w, destination))
        return moves
