"""The health rule: how engine, clusters, MLflow and the registry add up to one status."""

from __future__ import annotations

import pytest

from intelligence.runtime.health import ComponentHealth, EngineHealth, overall_status
from intelligence.vocabulary import ClusterHealth, HealthState, Tier

OK = ComponentHealth("ok")


def engine(steps: int = 5, error: str | None = None) -> EngineHealth:
    return EngineHealth(steps, 100, 10, 1.0, 0.01, error, "0/1")


def cluster(state: HealthState) -> ClusterHealth:
    return ClusterHealth("edge-1", Tier.EDGE, state)


def test_starting_until_the_first_step():
    assert overall_status(engine(steps=0), [cluster(HealthState.DOWN)], [OK]) == "starting"


@pytest.mark.parametrize(
    ("eng", "clusters", "components", "expected"),
    [
        (engine(), [cluster(HealthState.UP)], [OK, ComponentHealth("disabled")], "ok"),
        (engine(error="boom"), [cluster(HealthState.UP)], [OK], "degraded"),
        (engine(), [cluster(HealthState.STALE)], [OK], "degraded"),
        (engine(), [cluster(HealthState.DOWN)], [OK], "degraded"),
        (engine(), [cluster(HealthState.UNKNOWN)], [OK], "ok"),
        (engine(), [cluster(HealthState.UP)], [ComponentHealth("degraded", "MLflow down")], "degraded"),
    ],
)
def test_degraded_when_anything_it_depends_on_is(eng, clusters, components, expected):
    assert overall_status(eng, clusters, components) == expected
