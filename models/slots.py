"""State of many series in numpy arrays: one column ("slot") per series.

A vectorised kind declares its per-series fields (shape, dtype, initial value);
:class:`SlotArrays` allocates them for ``capacity`` series, grows by doubling, resets
slots for new series and copies fields between slots (cold start). The slot is the
*last* axis (structure of arrays): a field of shape ``(bins,)`` is a ``[bins, capacity]``
array, so reading one time-of-day bin of every series, which a step of a fleet does
dozens of times, is a contiguous row instead of a column strided by the whole profile.
The same kind serves one series on one slot, so the per-series protocol and the
vectorised bank run exactly the same arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import Expectation


@dataclass(frozen=True, slots=True)
class FieldSpec:
    shape: tuple[int, ...]
    dtype: type
    initial: float | np.ndarray  # a constant, or one slot's initial array


class SlotArrays:
    """Named arrays whose last axis is the slot."""

    def __init__(self, fields: dict[str, FieldSpec], capacity: int = 0) -> None:
        self.fields = fields
        self.capacity = 0
        self.used = 0  # slots ever asked for; a checkpoint keeps these, not the spare capacity
        self.arrays: dict[str, np.ndarray] = {
            name: np.empty((*spec.shape, 0), dtype=spec.dtype) for name, spec in fields.items()
        }
        if capacity:
            self.grow(capacity)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.arrays[name] = value

    def grow(self, capacity: int) -> None:
        """Room for at least ``capacity`` slots (doubling, so appends are amortised O(1))."""
        self.used = max(self.used, capacity)
        if capacity <= self.capacity:
            return
        new = max(capacity, 2 * self.capacity, 8)
        for name, spec in self.fields.items():
            old = self.arrays[name]
            grown: np.ndarray = np.empty((*spec.shape, new), dtype=spec.dtype)
            grown[..., : self.capacity] = old[..., : self.capacity]
            self.arrays[name] = grown
        fresh = np.arange(self.capacity, new)
        self.capacity = new
        self.reset(fresh)

    def reset(self, slots: np.ndarray) -> None:
        """Give ``slots`` their initial, untrained state."""
        if len(slots) == 0:
            return
        for name, spec in self.fields.items():
            self.arrays[name][..., slots] = np.asarray(spec.initial)[..., None]

    def copy(self, names: list[str], source: np.ndarray, target: np.ndarray) -> None:
        for name in names:
            self.arrays[name][..., target] = self.arrays[name][..., source]

    def __deepcopy__(self, memo: dict[int, object]) -> SlotArrays:
        twin = SlotArrays.__new__(SlotArrays)
        twin.fields, twin.used, twin.capacity = self.fields, self.used, self.used
        twin.arrays = {name: a[..., : self.used].copy() for name, a in self.arrays.items()}
        return twin

    def __getstate__(self) -> dict[str, object]:
        return {
            "fields": self.fields,
            "used": self.used,
            "arrays": {name: np.ascontiguousarray(a[..., : self.used]) for name, a in self.arrays.items()},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.fields = state["fields"]
        self.used = self.capacity = state["used"]
        self.arrays = dict(state["arrays"])

    def bytes_per_slot(self) -> int:
        return sum(
            int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize for spec in self.fields.values()
        )


class Slotted:
    """Base of vectorised kinds: ``_fields()`` declares the per-series state, ``state_`` holds it."""

    vectorised = True

    def _fields(self) -> dict[str, FieldSpec]:
        raise NotImplementedError

    def _state(self) -> SlotArrays:
        state: SlotArrays | None = getattr(self, "state_", None)
        if state is None:
            state = self.state_ = SlotArrays(self._fields())
        return state

    def ensure(self, capacity: int) -> SlotArrays:
        state = self._state()
        state.grow(capacity)
        return state

    def reset(self, slots: np.ndarray) -> None:
        self._state().reset(slots)

    def bytes_per_series(self) -> int:
        return self._state().bytes_per_slot()

    def slot_arrays(self) -> list[SlotArrays]:
        """Every array of per-series state this kind holds (a composite kind lists its parts')."""
        return [self._state()]

    def transplant(self, source: Slotted, targets: np.ndarray, sources: np.ndarray) -> None:
        """Give ``targets`` (slots made with ``ensure``) the learnt state of ``source``'s ``sources``: a series
        moving to another fleet of the same kind (another replica's), exactly as it was."""
        for mine, theirs in zip(self.slot_arrays(), source.slot_arrays(), strict=True):
            copy_slots(mine, theirs, targets, sources)


def copy_slots(target: SlotArrays, source: SlotArrays, targets: np.ndarray, sources: np.ndarray) -> None:
    """Slots ``sources`` of ``source`` into slots ``targets`` of ``target`` (same fields), every field: the slot is
    the last axis of each array."""
    for name in target.fields:
        target.arrays[name][..., targets] = source.arrays[name][..., sources]


SLOT0 = np.zeros(1, dtype=np.int64)

Index = slice | np.ndarray


def as_index(slots: np.ndarray) -> Index:
    """A slice when ``slots`` are consecutive (numpy then gives views: no gather, no scatter)."""
    if slots.size and slots[-1] - slots[0] == slots.size - 1 and (slots.size < 3 or bool((np.diff(slots) == 1).all())):
        return slice(int(slots[0]), int(slots[-1]) + 1)
    return slots


def as_slots(idx: Index, n: int) -> np.ndarray:
    return np.arange(idx.start, idx.start + n) if isinstance(idx, slice) else idx


@dataclass(frozen=True, slots=True)
class Round:
    """The slots of one round (one sample each, at ``steps``), and how to read and write their cells.

    Series scraped together are at the same step (``common``): then a time-of-day bin or a
    ring position is the same row for every slot, and consecutive slots are a slice, so
    reads and writes are basic indexing (contiguous, no gather). Otherwise each slot has
    its own row (fancy indexing). Both paths give the same numbers.
    """

    slots: np.ndarray
    idx: Index
    steps: np.ndarray
    common: int | None  # the step of every slot, when they share one

    @classmethod
    def of(cls, slots: np.ndarray, steps: np.ndarray) -> Round:
        shared = steps.size > 0 and bool(steps[0] == steps[-1]) and bool((steps == steps[0]).all())
        return cls(slots, as_index(slots), steps, int(steps[0]) if shared else None)

    def subset(self, mask: np.ndarray) -> Round:
        return Round.of(self.slots[mask], self.steps[mask])

    def cell(self, a: np.ndarray, row: int | np.integer | np.ndarray) -> np.ndarray:
        """``a[row, slot]`` of each slot: ``row`` common to all (an integer) or one per slot."""
        if isinstance(row, int | np.integer):
            return a[row, self.idx]
        return a[row, self.slots]

    def put(self, a: np.ndarray, row: int | np.integer | np.ndarray, values: np.ndarray) -> None:
        if isinstance(row, int | np.integer):
            a[row, self.idx] = values
        else:
            a[row, self.slots] = values

    def put_cells(self, a: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` ``[m, slots]`` to ``a[rows, slot]``: ``rows`` [m] common to all, or [m, slots]."""
        if rows.ndim == 1:
            if isinstance(self.idx, slice):
                a[rows, self.idx] = values
            else:
                a[rows[:, None], self.slots] = values
        else:
            a[rows, self.slots] = values

    def shifted(self, by: int) -> Round:
        """The same slots ``by`` steps later (earlier if negative)."""
        return Round(self.slots, self.idx, self.steps + by, None if self.common is None else self.common + by)

    def cells(self, a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``a[rows, slot]`` ``[m, slots]``: ``rows`` [m] common to all, or [m, slots]."""
        if rows.ndim == 1:
            if isinstance(self.idx, slice):
                return a[rows, self.idx]
            return a[rows[:, None], self.slots]
        return a[rows, self.slots]


def one(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float64)


class OneSeriesDetector:
    """The per-series detector protocol on slot 0, for a vectorised detector.

    The detector provides ``ensure``, ``score_many``, ``learn_many`` and ``explain``.
    """

    def score_one(self, t: float, y: float, expected: Expectation | None) -> tuple[float, str]:
        self.ensure(1)  # type: ignore[attr-defined]
        value = expected.value if expected is not None else math.nan
        score = float(self.score_many(SLOT0, one(t), one(y), one(value))[0])  # type: ignore[attr-defined]
        return score, str(self.explain(0, t, y, value))  # type: ignore[attr-defined]

    def learn_one(self, t: float, y: float, expected: Expectation | None) -> None:
        self.ensure(1)  # type: ignore[attr-defined]
        value = expected.value if expected is not None else math.nan
        self.learn_many(SLOT0, one(t), one(y), one(value))  # type: ignore[attr-defined]
