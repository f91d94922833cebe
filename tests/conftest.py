"""Shared fixtures. The real components come from tests/stack.py: a stack started by
`make test` (or .ci/run) is reused; otherwise the session starts one and stops it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from intelligence.settings import Settings, load_settings
from intelligence.vocabulary import ManualClock
from tests import stack


@dataclass(frozen=True)
class Stack:
    prometheus: dict[str, str]  # cluster -> URL
    mlflow_url: str
    data: dict[str, Any]  # seed, step, start, end of the backfilled series
    state: dict[str, Any]


@pytest.fixture(scope="session")
def test_stack() -> Iterator[Stack]:
    state = stack.read_state()
    owned = state is None
    if owned:
        state = stack.up()
    assert state is not None
    yield Stack({c: e["url"] for c, e in state["prometheus"].items()}, state["mlflow"]["url"], state["data"], state)
    if owned:
        stack.down()


@pytest.fixture(autouse=True)
def _no_icos_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ICOS_* variables must not change what tests see."""
    for name in list(os.environ):
        if name.startswith("ICOS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return load_settings(None, **{"storage.state_dir": str(tmp_path / "state"), "mlflow.enabled": False})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_767_225_600.0)  # 2026-01-01T00:00:00Z
