"""Retry delays and a circuit breaker; both take time as an argument, never read a clock."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field


def backoff_delays(first: float, retries: int, rng: random.Random, cap: float = 30.0) -> list[float]:
    """Exponential delays with "full jitter": each in [d/2, d] for d = first * 2**attempt, capped.

    >>> [round(d, 2) for d in backoff_delays(1.0, 3, random.Random(0))]
    [0.92, 1.76, 2.84]
    """
    delays = []
    for attempt in range(retries):
        d = min(cap, first * (2**attempt))
        delays.append(d / 2 + rng.random() * d / 2)
    return delays


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are skipped until the cooldown has passed
    HALF_OPEN = "half-open"  # one probe call decides


@dataclass
class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; each reopening doubles the cooldown (capped).

    >>> b = CircuitBreaker(failures=2, cooldown=10.0)
    >>> b.record(False, now=0.0); b.record(False, now=1.0); b.state
    <BreakerState.OPEN: 'open'>
    >>> b.allows(now=5.0), b.allows(now=11.0), b.state
    (False, True, <BreakerState.HALF_OPEN: 'half-open'>)
    >>> b.record(False, now=11.5); b.retry_at   # the probe failed: twice the cooldown
    31.5
    >>> b.allows(now=32.0); b.record(True, now=32.0); b.state
    True
    <BreakerState.CLOSED: 'closed'>
    """

    failures: int = 3
    cooldown: float = 30.0
    max_cooldown: float = 600.0
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    retry_at: float = 0.0
    _opened: int = field(default=0, repr=False)

    def allows(self, now: float) -> bool:
        if self.state is BreakerState.OPEN and now >= self.retry_at:
            self.state = BreakerState.HALF_OPEN
        return self.state is not BreakerState.OPEN

    def record(self, success: bool, now: float) -> None:
        if success:
            self.state, self.consecutive_failures, self._opened = BreakerState.CLOSED, 0, 0
            return
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.failures:
            self.retry_at = now + min(self.max_cooldown, self.cooldown * (2**self._opened))
            self._opened += 1
            self.state = BreakerState.OPEN
