"""A small simulator of a continuum: clusters with a capacity in cores, workloads with a CPU demand, and moves.

Time advances one trace interval at a time; sample ``i`` is each workload's mean demand over
the interval ending at its timestamp (as a Prometheus ``rate()`` over the step). Within an
interval the demand holds; the placement changes where a move completes.

- A move started at ``t`` (when it was decided) completes at ``t + delay`` (pulling the
  image and starting). Until then the workload runs, and costs, on both clusters: its
  demand counts on the source, which still serves, and on the destination, which starts.
- A cluster whose demand exceeds its capacity throttles: every copy running there gets the
  same share of its demand (the CPU scheduler's fair share), so the throttled rate is
  ``demand - capacity``, split among the copies in proportion to their demand.
- A move back is a move of a workload to a cluster it left less than the dwell time ago.

Everything is counted only while ``counting`` (the reported span). Throttled core-seconds
add up the same per cluster and per workload (a starting copy's throttling is its workload's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SATURATION_TOLERANCE = 1e-9  # cores: demand above capacity by less than this is not saturation


@dataclass(frozen=True, slots=True)
class Move:
    """One move: decided (and started) at ``at``, serving from the destination alone from ``in_force_at``."""

    at: float  # epoch seconds
    in_force_at: float
    workload: int
    source: int
    destination: int


@dataclass
class ContinuumBill:
    """What one arm's placements cost over the reported span."""

    throttled_by_cluster: np.ndarray  # [clusters] core-seconds
    throttled_by_workload: np.ndarray  # [workloads] core-seconds
    saturated_seconds: np.ndarray  # [clusters] time with demand above capacity
    demand_core_seconds: float = 0.0  # all the demand served or throttled (each workload once)
    double_core_seconds: float = 0.0  # demand of the copies that ran twice during moves
    moves: list[Move] = field(default_factory=list)
    move_backs: int = 0

    @classmethod
    def empty(cls, clusters: int, workloads: int) -> ContinuumBill:
        return cls(np.zeros(clusters), np.zeros(workloads), np.zeros(clusters))


class Continuum:
    """Placement, moves in flight and the bill of one arm."""

    def __init__(self, capacity: np.ndarray, placement: np.ndarray, delay_seconds: float, dwell_seconds: float):
        self.capacity = np.asarray(capacity, dtype=np.float64)
        self.serving = np.asarray(placement, dtype=np.int64).copy()  # the cluster each workload serves from
        self.starting = np.full_like(self.serving, -1)  # the cluster a move is starting it on (-1: none)
        self.done_at = np.full(len(self.serving), np.inf)  # when that move completes
        self.delay = float(delay_seconds)
        self.dwell = float(dwell_seconds)
        self.left_at: dict[tuple[int, int], float] = {}  # (workload, cluster) -> when it last moved away
        self.bill = ContinuumBill.empty(len(self.capacity), len(self.serving))
        if delay_seconds < 0:
            raise ValueError(f"the move delay must not be negative, got {delay_seconds}")
        if np.any(self.serving < 0) or np.any(self.serving >= len(self.capacity)):
            raise ValueError("every workload must start on one of the clusters")

    @property
    def clusters(self) -> int:
        return len(self.capacity)

    def in_flight(self, workload: int) -> bool:
        return bool(self.starting[workload] >= 0)

    def placement(self) -> np.ndarray:
        """Where each workload is going to run: the destination of a move in flight, else where it serves."""
        return np.where(self.starting >= 0, self.starting, self.serving)

    def move(self, workload: int, destination: int, at: float, counting: bool) -> Move:
        """Start moving ``workload`` to ``destination`` at ``at``; it serves from there alone after the delay."""
        if self.in_flight(workload):
            raise ValueError(f"workload #{workload} is already moving")
        source = int(self.serving[workload])
        if destination == source or not 0 <= destination < self.clusters:
            raise ValueError(f"workload #{workload} cannot move from cluster #{source} to #{destination}")
        left = self.left_at.get((workload, destination))
        if counting and left is not None and at - left < self.dwell:
            self.bill.move_backs += 1
        self.left_at[(workload, source)] = at
        move = Move(at, at + self.delay, workload, source, destination)
        if counting:
            self.bill.moves.append(move)
        self.starting[workload] = destination
        self.done_at[workload] = at + self.delay
        self._complete(at)
        return move

    def advance(self, start: float, end: float, demand: np.ndarray, counting: bool) -> np.ndarray:
        """Run the interval ``[start, end)`` with each workload's ``demand`` (cores; NaN: none); returns the mean
        demand per cluster over it (copies in flight count on both clusters)."""
        cores = np.nan_to_num(np.asarray(demand, dtype=np.float64), nan=0.0)
        cores = np.maximum(cores, 0.0)
        total = np.zeros(self.clusters)
        if counting:
            self.bill.demand_core_seconds += float(cores.sum()) * (end - start)
        t = start
        self._complete(t)
        while t < end:
            flying = self.starting >= 0
            until = min(end, float(self.done_at[flying].min())) if flying.any() else end
            total += self._segment(cores, until - t, counting)
            t = until
            self._complete(t)
        return total / (end - start) if end > start else total

    def _complete(self, t: float) -> None:
        done = (self.starting >= 0) & (self.done_at <= t)
        if done.any():
            self.serving[done] = self.starting[done]
            self.starting[done] = -1
            self.done_at[done] = np.inf

    def _segment(self, cores: np.ndarray, seconds: float, counting: bool) -> np.ndarray:
        """A stretch of time with a fixed placement: the demand per cluster, and the bill for it."""
        flying = np.flatnonzero(self.starting >= 0)
        load = np.bincount(self.serving, cores, self.clusters)
        if flying.size:
            load += np.bincount(self.starting[flying], cores[flying], self.clusters)
        if counting and seconds > 0:
            excess = np.maximum(load - self.capacity, 0.0)
            share = np.divide(excess, load, out=np.zeros_like(load), where=load > 0)
            bill = self.bill
            bill.throttled_by_cluster += excess * seconds
            bill.throttled_by_workload += cores * share[self.serving] * seconds
            if flying.size:
                bill.throttled_by_workload[flying] += cores[flying] * share[self.starting[flying]] * seconds
                bill.double_core_seconds += float(cores[flying].sum()) * seconds
            bill.saturated_seconds += seconds * (load > self.capacity + SATURATION_TOLERANCE)
        return load * seconds
