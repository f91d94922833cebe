"""Waiting for background threads and processes in tests: polling, bounded by a deadline (never a bare sleep)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # polling a background thread, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")
