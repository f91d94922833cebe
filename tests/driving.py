"""Driving the service in tests: engine steps on a manual clock, never the wall clock."""

from __future__ import annotations

from intelligence.runtime.service import Service
from intelligence.vocabulary import ManualClock


def drive(svc: Service, clock: ManualClock, steps: int, step_seconds: float | None = None) -> None:
    """``steps`` engine steps, the clock moved by one sample spacing (the simulation's by default) after each.

    Between two steps the clock stops at each scheduled write (a warm-up due before the next step) and the
    service writes it, as the runner does.
    """
    spacing = step_seconds if step_seconds is not None else svc.settings.simulation.step_seconds
    for _ in range(steps):
        svc.engine.step(clock.now())
        end = clock.now() + spacing
        while (due := svc.actuator.next_due()) is not None and clock.now() <= due.timestamp() < end:
            clock.advance(due.timestamp() - clock.now())
            svc.run_due()
        clock.advance(end - clock.now())
