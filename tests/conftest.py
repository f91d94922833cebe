"""Shared fixtures. The real components come from tests/stack.py: a stack started by
`make test` (or .ci/run) is reused; otherwise the session starts one and stops it."""

from __future__ import annotations

import os
import uuid
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
    postgres_url: str  # SQLAlchemy URL of the database "icos"
    data: dict[str, Any]  # seed, step, start, end of the backfilled series
    state: dict[str, Any]


@pytest.fixture(scope="session")
def test_stack() -> Iterator[Stack]:
    state = stack.read_state()
    owned = state is None
    if owned:
        state = stack.up()
    assert state is not None
    yield Stack(
        {c: e["url"] for c, e in state["prometheus"].items()},
        state["mlflow"]["url"],
        state["postgres"]["url"],
        state["data"],
        state,
    )
    if owned:
        stack.down()


@pytest.fixture(scope="session")
def postgres_url(test_stack: Stack) -> str:
    """The stack's PostgreSQL: SQLAlchemy URL of its database ``icos`` (shared by the session)."""
    return test_stack.postgres_url


@pytest.fixture
def postgres_db(test_stack: Stack) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one test (dropped afterwards): its SQLAlchemy URL."""
    entry = test_stack.state["postgres"]
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = stack.create_database(entry, name)
    yield url
    stack.drop_database(entry, name)


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
