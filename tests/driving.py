"""Driving the service in tests: engine steps on a manual clock, never the wall clock."""

from __future__ import annotations

from intelligence.runtime.service import Service
from intelligence.vocabulary import ManualClock


def drive(svc: Service, clock: ManualClock, steps: int, step_seconds: float | None = None) -> None:
    """``steps`` engine steps, the clock moved by one sample spacing (the simulation's by default) after each."""
    spacing = step_seconds if step_seconds is not None else svc.settings.simulation.step_seconds
    for _ in range(steps):
        svc.engine.step(clock.now())
        clock.advance(spacing)
