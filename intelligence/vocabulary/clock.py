"""Time as an argument: the engine and the decider never read the wall clock themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    speed: float  # clock seconds per real second (1 for the wall clock; the simulation runs faster)

    def now(self) -> float:
        """Current time in epoch seconds (UTC)."""
        ...


def utc_now(clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime (what decisions, actions and the audit log carry)."""
    return datetime.fromtimestamp(clock.now(), UTC)


class SystemClock:
    speed = 1.0

    def now(self) -> float:
        return time.time()


class ScaledClock:
    """Simulated time running ``speed`` times faster than real time from ``start``."""

    def __init__(self, start: float, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._start = start
        self.speed = speed
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> float:
        return self._start + (self._monotonic() - self._t0) * self.speed


class ManualClock:
    """A clock tests move by hand."""

    speed = 1.0

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now
