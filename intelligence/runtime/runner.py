"""The loop: one engine step every tick, on its own thread, until stopped.

A failing step is logged and recorded (``last_error``), never fatal: the next tick tries again.
Time is the clock's; the loop itself only paces real time between steps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        step: Callable[[], object],
        tick_seconds: float,
        on_error: Callable[[str | None], None],
        due_in: Callable[[], float | None] = lambda: None,
        run_due: Callable[[], object] = lambda: None,
    ) -> None:
        self._step = step
        self.tick_seconds = tick_seconds
        self._on_error = on_error
        self._due_in = due_in  # real seconds until something scheduled between steps is due (None: nothing)
        self._run_due = run_due
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            begun = time.monotonic()
            try:
                self._step()
                self._on_error(None)
            except Exception as exc:
                self._on_error(f"{type(exc).__name__}: {exc}")
                log.exception("engine step failed")
            self._wait_for_next_step(begun)

    def _wait_for_next_step(self, begun: float) -> None:
        """Until the next step, waking for what is scheduled in between (a warm-up due before the next step)."""
        while not self._stop.is_set():
            left = self.tick_seconds - (time.monotonic() - begun)
            if left <= 0:
                return
            due = self._due_in()
            if due is None or due >= left:
                self._stop.wait(left)
                return
            self._stop.wait(max(0.0, due))
            if self._stop.is_set():
                return
            try:
                self._run_due()
            except Exception:
                log.exception("scheduled action failed")

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop and wait for the step in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
