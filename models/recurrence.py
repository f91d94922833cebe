"""Recurrence: the load a series had at the same phase of its recurring period, for timer-triggered work.

A function invoked every 5 minutes, a job every hour: the next burst comes at the same
phase of the period as the last ones. Per candidate period (1 to 60 steps) each series
keeps, per phase, a fast-decaying maximum of what it saw there; the period whose phase
values have recently predicted the series best (the asymmetric cost of a missed burst
against an idle pod, in units of the series' own level) is the one read. Learnt from the
first periods of a new series: no day of history needed. Vectorised over slots: the state
lives in the owner's slot arrays (:mod:`models.slots`).

>>> r = Recurrence(periods=(1, 3))
>>> state = {name: np.full((*f.shape, 1), f.initial, f.dtype) for name, f in r.fields().items()}
>>> slot = np.array([0])
>>> for t, y in enumerate([0, 0, 5, 0, 0, 5, 0, 0, 5, 0, 0]):
...     r.learn(state, Round.of(slot, np.array([t])), np.array([float(y)]))
>>> [round(float(v), 2) for v in r.predict(state, Round.of(slot, np.array([10])), 3)[:, 0]]  # after step 10: 11, 12, 13
[5.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.slots import FieldSpec, Round

PERIODS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)  # candidate periods, in steps


@dataclass(frozen=True, slots=True)
class Recurrence:
    periods: tuple[int, ...] = PERIODS
    decay: float = 0.3  # each visit of a phase keeps this share of its old maximum
    miss_cost: float = 4.0  # a missed unit of load costs this many idle units
    memory: float = 0.98  # per step: the weight of the past in each period's cost
    offsets: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", tuple(np.cumsum((0, *self.periods))[:-1].tolist()))

    def fields(self) -> Mapping[str, FieldSpec]:
        """Phase maxima of every period side by side, each period's recent cost, and the series' level."""
        return {
            "recurrence_phase": FieldSpec((sum(self.periods),), np.float32, 0.0),
            "recurrence_cost": FieldSpec((len(self.periods),), np.float32, 0.0),
            "recurrence_level": FieldSpec((), np.float32, 0.0),
        }

    def _columns(self, steps: np.ndarray | int) -> np.ndarray:
        """The column of each step's phase in every period: ``[periods]`` for one step, else ``[periods, steps]``."""
        periods, offsets = np.asarray(self.periods), np.asarray(self.offsets)
        if np.ndim(steps) == 0:
            return offsets + np.mod(steps, periods)
        return offsets[:, None] + np.mod(np.asarray(steps)[None, :], periods[:, None])

    def learn(self, state: Any, r: Round, y: np.ndarray) -> None:
        """One sample of each slot: score every period's phase value against it, then keep it in the phases."""
        phase, cost, level = state["recurrence_phase"], state["recurrence_cost"], state["recurrence_level"]
        current = level[r.idx] * np.float32(0.99) + np.float32(0.01) * np.maximum(y, 0.0).astype(np.float32)
        level[r.idx] = current
        columns = self._columns(r.common if r.common is not None else r.steps)
        said = r.cells(phase, columns)  # [periods, slots]
        y32 = y.astype(np.float32)
        err = np.maximum(y32 - said, 0.0) * np.float32(self.miss_cost)
        err += np.maximum(said - y32, 0.0)
        err /= np.maximum(current, np.float32(1e-9))
        memory = np.float32(self.memory)
        cost[:, r.idx] = memory * cost[:, r.idx] + (1.0 - memory) * err
        said *= np.float32(self.decay)
        r.put_cells(phase, columns, np.maximum(said, y32))

    def predict(self, state: Any, r: Round, horizon: int) -> np.ndarray:
        """``[horizon, slots]``: the phase value of the best period at each step after each slot's step."""
        best = np.argmin(state["recurrence_cost"][:, r.idx], axis=0)
        ahead = np.arange(1, horizon + 1)[:, None] + (r.common if r.common is not None else r.steps[None, :])
        offsets, periods = np.asarray(self.offsets)[best], np.asarray(self.periods)[best]
        columns = offsets[None, :] + np.mod(ahead, periods[None, :])
        out: np.ndarray = state["recurrence_phase"][columns, r.slots[None, :]].astype(np.float64)
        return out

    def cost(self, state: Any, r: Round) -> np.ndarray:
        """The recent cost of the best period of each slot (to weigh it against another predictor)."""
        out: np.ndarray = state["recurrence_cost"][:, r.idx].min(axis=0).astype(np.float64)
        return out
