"""A deterministic simulation of Knative's pod autoscaler (KPA), to replay decisions against.

Why a simulation: the predictive floor is worth what it changes in a real autoscaler, and
Knative's KPA reacts on its own to the load it sees. The model follows Knative Serving's
``pkg/autoscaler/scaling/autoscaler.go`` at its defaults (``config-autoscaler``):

- every ``tick_seconds`` (KPA tick-interval, 2 s) the observed request rate is averaged
  over the stable window (60 s) and the panic window (10% of it, 6 s);
- desired = ceil(average / target), kept within [floor(ready / max-scale-down-rate),
  ceil(ready * max-scale-up-rate)] (rates 2 and 1000; ready counted as at least 1);
- panic mode starts when the panic-window desired is >= 200% of the ready pods, uses the
  larger of both desires, never scales down, and ends a stable window after the last tick
  over the threshold;
- scale-down-delay (0 s): the desired scale is the maximum over that window;
- scaling to zero waits scale-to-zero-grace (30 s) of continuous zero desire;
- min-scale / max-scale bound the result; min-scale may change at every sample (what the
  predictive decider sets);
- new pods are pending for ``cold_start_seconds`` and then ready; removed pods are the
  pending ones first (newest first, as the ReplicaSet controller prefers unready pods),
  then ready ones;
- a *cold-start hit* is load arriving while no pod is ready (a request that waits for a
  pod to start): counted once per such episode.

Serving model: ``target_per_replica`` is the KPA target in the unit of the load (requests/s
for the ``rps`` metric, concurrent requests for Knative's default ``concurrency`` metric),
which Knative derives as ``target * target-utilisation`` (0.7), so a ready replica serves at
most ``target_per_replica / target_utilisation``; demand above the ready pods' capacity is
under-provisioned (counted in time and in requests). The KPA observes the incoming load,
served or not (the activator and queue-proxy count requests as they arrive).

Load: requests/s or concurrency at each sample of a trace. Between samples it is ``linear`` (a sample is
the rate at its instant) or ``hold`` (a sample is the mean rate of the interval ending at
it, like a Prometheus ``rate()``): in both cases a sample is known at its own timestamp,
so acting on it never looks ahead. Everything is vectorised over series (one column
each) and has no randomness: the same input gives the same output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Interpolation = Literal["linear", "hold"]
CHUNK_TICKS = 1800  # ticks whose load and window averages are computed at once (1 hour at 2 s)


@dataclass(frozen=True, slots=True)
class KpaSettings:
    """The KPA's parameters (Knative defaults), the serving model and the simulation's tick."""

    target_per_replica: float = 10.0  # requests/s per replica the KPA aims at (target x utilisation)
    target_utilisation: float = 0.7  # so one replica's capacity is target_per_replica / target_utilisation
    cold_start_seconds: float = 30.0  # a new pod is pending this long before it serves
    tick_seconds: float = 2.0
    stable_window_seconds: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_seconds: float = 30.0
    scale_down_delay_seconds: float = 0.0
    min_scale: int = 0
    max_scale: int = 0  # 0: unbounded, as in Knative
    interpolation: Interpolation = "hold"

    def __post_init__(self) -> None:
        if self.target_per_replica <= 0 or not 0 < self.target_utilisation <= 1:
            raise ValueError("target_per_replica must be > 0 and target_utilisation in (0, 1]")
        if self.tick_seconds <= 0 or self.stable_window_seconds < self.tick_seconds:
            raise ValueError("tick_seconds must be > 0 and at most the stable window")
        if self.max_scale and self.min_scale > self.max_scale:
            raise ValueError(f"min_scale {self.min_scale} is above max_scale {self.max_scale}")
        if self.interpolation not in ("linear", "hold"):
            raise ValueError(f"interpolation must be 'linear' or 'hold', got {self.interpolation!r}")

    @property
    def capacity_per_replica(self) -> float:
        return self.target_per_replica / self.target_utilisation

    def ticks(self, seconds: float) -> int:
        return max(0, math.ceil(seconds / self.tick_seconds - 1e-9))


@dataclass(frozen=True, slots=True)
class KpaOutcome:
    """What the autoscaler did to each series (one entry per column) over the reported span."""

    seconds: float  # simulated time reported (after the warm-up)
    under_provisioned_seconds: np.ndarray  # demand above the ready pods' capacity
    unserved_requests: np.ndarray  # the demand above capacity, integrated over time
    requests: np.ndarray  # all demand, integrated over time
    replica_seconds: np.ndarray  # pods from creation (pending pods cost too)
    scaling_actions: np.ndarray  # changes of the scale the KPA asks for
    cold_starts: np.ndarray  # pods created
    cold_start_hits: np.ndarray  # times load arrived while no pod was ready (it waited for a cold start)
    panic_seconds: np.ndarray
    pods: np.ndarray | None = None  # with ``history``: pods (ready and pending) at each reported tick
    ready: np.ndarray | None = None  # with ``history``: ready pods at each reported tick


@dataclass(slots=True)
class _State:
    ready: np.ndarray
    pending: np.ndarray
    born: np.ndarray  # [cold-start ticks, series]: pods created at tick k sit at row k % rows
    scale: np.ndarray
    panic_since: np.ndarray  # tick of the last tick over the panic threshold (-1: not panicking)
    max_panic: np.ndarray
    zero_ticks: np.ndarray
    delayed: np.ndarray  # [scale-down-delay ticks, series]: recent desired scales


def load_at(rates: np.ndarray, step_seconds: float, seconds: np.ndarray, interpolation: Interpolation) -> np.ndarray:
    """Requests/s of every series at the given seconds after the first sample ``[len(seconds), series]``.

    Before the first sample the load is the first sample's; after the last, the last's.
    """
    n = rates.shape[0]
    position = np.clip(seconds / step_seconds, 0.0, n - 1.0)
    if interpolation == "hold":
        return rates[np.minimum(np.ceil(position - 1e-9).astype(np.int64), n - 1)]
    low = np.minimum(np.floor(position).astype(np.int64), n - 1)
    high = np.minimum(low + 1, n - 1)
    frac = (position - low)[:, None]
    return rates[low] * (1.0 - frac) + rates[high] * frac


def _fill_missing(rates: np.ndarray) -> np.ndarray:
    """Missing samples (NaN) carry the previous sample (0 before the first) for the load."""
    rates = np.array(rates, dtype=np.float64)
    for j in np.flatnonzero(~np.isfinite(rates).all(axis=0)).tolist():
        col = rates[:, j]
        ok = np.isfinite(col)
        last = np.maximum.accumulate(np.where(ok, np.arange(len(col)), -1))
        rates[:, j] = np.where(last >= 0, col[np.maximum(last, 0)], 0.0)
    return np.maximum(rates, 0.0)


def _initial(settings: KpaSettings, load0: np.ndarray, floor0: np.ndarray) -> _State:
    """Start in steady state for the first sample's load: the warm-up then settles the rest."""
    count = load0.shape[0]
    scale = np.ceil(load0 / settings.target_per_replica - 1e-9).astype(np.int64)
    scale = _bounded(scale, floor0, settings)
    cold = settings.ticks(settings.cold_start_seconds)
    delay = settings.ticks(settings.scale_down_delay_seconds)
    return _State(
        ready=scale.copy(),
        pending=np.zeros(count, np.int64),
        born=np.zeros((max(cold, 1), count), np.int64),
        scale=scale,
        panic_since=np.full(count, -1, np.int64),
        max_panic=np.zeros(count, np.int64),
        zero_ticks=np.zeros(count, np.int64),
        delayed=np.repeat(scale[None, :], max(delay, 1), axis=0),
    )


def _bounded(desired: np.ndarray, floor: np.ndarray, settings: KpaSettings) -> np.ndarray:
    out = np.maximum(desired, floor)
    return np.minimum(out, settings.max_scale) if settings.max_scale else out


def simulate(
    rates: np.ndarray,
    step_seconds: float,
    settings: KpaSettings,
    min_scale: np.ndarray | None = None,
    report_from: int = 0,
    floor_delay_seconds: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    history: bool = False,
    floor_events: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> KpaOutcome:
    """Run the KPA over a trace: ``rates[samples, series]`` requests/s, one sample every ``step_seconds``.

    ``min_scale[samples, series]`` (optional) is the min-scale set at each sample, in force
    from the sample's time plus ``floor_delay_seconds`` (the actuator's latency) until the
    next; or ``floor_events`` (one ``(times, values)`` per series, times in seconds after the
    first sample, the first ``-inf``) gives each floor change at its own time. The static
    ``settings.min_scale`` applies before and when absent. Samples before
    ``report_from`` warm the autoscaler up and are not counted. ``progress(done, total)`` is
    called with ticks every chunk. ``history`` keeps the pods at every reported tick (tests).
    """
    rates = _fill_missing(np.asarray(rates, dtype=np.float64).reshape(len(rates), -1))
    samples, count = rates.shape
    floors = None
    schedule = _Schedule(floor_events) if floor_events is not None else None
    if min_scale is not None:
        floors = np.maximum(np.asarray(min_scale, dtype=np.int64).reshape(samples, count), settings.min_scale)
    tick = settings.tick_seconds
    total = math.floor((samples - 1) * step_seconds / tick + 1e-9)
    first_reported = min(total, math.ceil(report_from * step_seconds / tick - 1e-9))
    stable = max(1, round(settings.stable_window_seconds / tick))
    panic = max(1, round(settings.stable_window_seconds * settings.panic_window_percentage / 100.0 / tick))
    static_floor = np.full(count, settings.min_scale, np.int64)
    kpa = _Kpa(settings, stable, _initial(settings, rates[0], static_floor))
    totals = _Totals(count, history)
    for start in range(0, total, CHUNK_TICKS):
        stop = min(total, start + CHUNK_TICKS)
        span = stop - start
        seconds = np.arange(start - stable + 1, stop) * tick
        load = load_at(rates, step_seconds, seconds, settings.interpolation)
        cum = np.vstack([np.zeros((1, count)), np.cumsum(load, axis=0)])
        stable_avg = (cum[stable : stable + span] - cum[:span]) / stable
        panic_avg = (cum[stable : stable + span] - cum[stable - panic : stable - panic + span]) / panic
        want_stable = np.ceil(stable_avg / settings.target_per_replica - 1e-9).astype(np.int64)
        want_panic = np.ceil(panic_avg / settings.target_per_replica - 1e-9).astype(np.int64)
        if schedule is not None:
            floor_rows = np.maximum(schedule.at(seconds[stable - 1 :]), settings.min_scale)
        elif floors is None:
            floor_rows = np.broadcast_to(static_floor, (span, count))
        else:
            floor_rows = _floor_at(
                floors, seconds[stable - 1 :] - floor_delay_seconds, step_seconds, settings.min_scale
            )
        trace = _Trace(span, count)
        for i in range(span):
            kpa.tick(start + i, want_stable[i], want_panic[i], floor_rows[i], trace, i)
        skip = max(0, first_reported - start)
        if skip < span:
            totals.add(settings, trace, load[stable - 1 :], skip)
        if progress is not None:
            progress(stop, total)
    return totals.outcome(max(0, total - first_reported) * tick, tick)


def _floor_at(floors: np.ndarray, seconds: np.ndarray, step_seconds: float, before: int) -> np.ndarray:
    """The min-scale in force at each of ``seconds``: the last sample's at or before it (``before`` earlier)."""
    index = np.floor(seconds / step_seconds + 1e-9).astype(np.int64)
    rows = floors[np.clip(index, 0, len(floors) - 1)]
    return np.where((index < 0)[:, None], before, rows)


class _Schedule:
    """Floors given as change events per series: (times, values), each value in force from its time (seconds after
    the first sample) until the next."""

    def __init__(self, events: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.events = [(np.asarray(times, np.float64), np.asarray(values, np.int64)) for times, values in events]

    def at(self, seconds: np.ndarray) -> np.ndarray:
        out = np.empty((len(seconds), len(self.events)), np.int64)
        for j, (times, values) in enumerate(self.events):
            out[:, j] = values[np.maximum(np.searchsorted(times, seconds, side="right") - 1, 0)]
        return out


class _Trace:
    """What happened at each tick of a chunk ``[ticks, series]``; accounted for in one go afterwards."""

    def __init__(self, span: int, count: int) -> None:
        self.ready = np.empty((span, count), np.int64)
        self.pods = np.empty((span, count), np.int64)
        self.changed = np.empty((span, count), bool)
        self.created = np.zeros((span, count), np.int64)
        self.panicking = np.empty((span, count), bool)


class _Totals:
    def __init__(self, count: int, history: bool) -> None:
        self.sums = {name: np.zeros(count) for name in ("under", "unserved", "requests", "pods", "panic")}
        self.counts = {name: np.zeros(count, np.int64) for name in ("actions", "cold", "hits")}
        self.waiting = np.zeros(count, bool)  # the last tick had load and no ready pod
        self.history: dict[str, list[np.ndarray]] | None = {"pods": [], "ready": []} if history else None

    def add(self, cfg: KpaSettings, trace: _Trace, demand: np.ndarray, skip: int) -> None:
        capacity = trace.ready[skip:] * cfg.capacity_per_replica
        demand = demand[skip:]
        missing = np.maximum(demand - capacity, 0.0)
        self.sums["under"] += (missing > 1e-9 * np.maximum(demand, 1.0)).sum(axis=0)
        self.sums["unserved"] += missing.sum(axis=0)
        self.sums["requests"] += demand.sum(axis=0)
        self.sums["pods"] += trace.pods[skip:].sum(axis=0)
        self.sums["panic"] += trace.panicking[skip:].sum(axis=0)
        self.counts["actions"] += trace.changed[skip:].sum(axis=0)
        self.counts["cold"] += trace.created[skip:].sum(axis=0)
        waiting = (demand > 1e-12) & (trace.ready[skip:] == 0)
        if len(waiting):
            started = waiting & ~np.vstack([self.waiting[None, :], waiting[:-1]])
            self.counts["hits"] += started.sum(axis=0)
            self.waiting = waiting[-1]
        if self.history is not None:
            self.history["pods"].append(trace.pods[skip:])
            self.history["ready"].append(trace.ready[skip:])

    def outcome(self, seconds: float, tick: float) -> KpaOutcome:
        kept = {name: np.concatenate(parts) if parts else None for name, parts in (self.history or {}).items()}
        return KpaOutcome(
            seconds=seconds,
            under_provisioned_seconds=self.sums["under"] * tick,
            unserved_requests=self.sums["unserved"] * tick,
            requests=self.sums["requests"] * tick,
            replica_seconds=self.sums["pods"] * tick,
            scaling_actions=self.counts["actions"],
            cold_starts=self.counts["cold"],
            cold_start_hits=self.counts["hits"],
            panic_seconds=self.sums["panic"] * tick,
            pods=kept.get("pods"),
            ready=kept.get("ready"),
        )


class _Kpa:
    """The KPA's decision at each tick and its effect on the pods (state in ``_State``)."""

    def __init__(self, cfg: KpaSettings, stable_ticks: int, state: _State) -> None:
        self.cfg = cfg
        self.s = state
        self.stable_ticks = stable_ticks
        self.cold = cfg.ticks(cfg.cold_start_seconds)
        self.delay = cfg.ticks(cfg.scale_down_delay_seconds)
        self.grace = cfg.ticks(cfg.scale_to_zero_grace_seconds)
        self.threshold = cfg.panic_threshold_percentage / 100.0

    def tick(
        self, k: int, want_stable: np.ndarray, want_panic: np.ndarray, floor: np.ndarray, trace: _Trace, i: int
    ) -> None:
        s, cfg = self.s, self.cfg
        rows = s.born.shape[0]
        if self.cold:
            arriving = s.born[k % rows]
            if arriving.any():
                s.ready += arriving
                s.pending -= arriving
                arriving[:] = 0
        ready = np.maximum(s.ready, 1)
        # Knative: desired within [floor(ready / down-rate), ceil(ready * up-rate)]; ready counted as >= 1
        down = (ready / cfg.max_scale_down_rate).astype(np.int64)
        up = np.ceil(ready * cfg.max_scale_up_rate).astype(np.int64)
        desired = np.minimum(np.maximum(want_stable, down), up)
        over = want_panic >= ready * self.threshold
        if over.any():
            s.panic_since[over] = k
        panicking = s.panic_since >= 0
        if panicking.any():
            calm = ~over & panicking & (s.panic_since + self.stable_ticks < k)
            s.panic_since[calm] = -1
            s.max_panic[calm] = 0
            panicking &= ~calm
            # in panic: the larger desire, and never lower than the highest seen in this panic
            raised = np.maximum(desired, np.minimum(np.maximum(want_panic, down), up))
            s.max_panic = np.where(panicking, np.maximum(s.max_panic, raised), s.max_panic)
            desired = np.where(panicking, s.max_panic, desired)
        if self.delay:
            s.delayed[k % s.delayed.shape[0]] = desired
            desired = s.delayed.max(axis=0)
        zero = desired == 0
        if zero.any():
            s.zero_ticks = np.where(zero, s.zero_ticks + 1, 0)
            desired = np.where(zero & (s.scale > 0) & (s.zero_ticks < self.grace), 1, desired)
        else:
            s.zero_ticks[:] = 0
        scale = np.maximum(desired, floor)
        if cfg.max_scale:
            scale = np.minimum(scale, cfg.max_scale)
        trace.changed[i] = scale != s.scale
        s.scale = scale
        delta = scale - s.ready - s.pending
        if delta.any():
            grow = np.maximum(delta, 0)
            if self.cold:
                s.born[k % rows] += grow
                s.pending += grow
            else:
                s.ready += grow
            trace.created[i] = grow
            if (delta < 0).any():
                _remove(s, np.maximum(-delta, 0), k, rows if self.cold else 0)
        trace.ready[i] = s.ready
        trace.pods[i] = s.ready + s.pending
        trace.panicking[i] = panicking


def _remove(s: _State, shrink: np.ndarray, k: int, rows: int) -> None:
    """Delete pending pods first, newest first, then ready ones."""
    left = shrink.copy()
    for back in range(rows):
        if not (left > 0).any():
            break
        slot = (k - back) % rows
        taken = np.minimum(left, s.born[slot])
        s.born[slot] -= taken
        s.pending -= taken
        left -= taken
    s.ready -= np.minimum(left, s.ready)
