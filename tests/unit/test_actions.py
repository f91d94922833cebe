"""One handler per lever: each reads what is in force, applies a value, and checks that it took effect."""

from __future__ import annotations

import pytest

from intelligence.actuation.actions import (
    ClusterTaint,
    DeploymentReplicas,
    KnativeFloor,
    Placement,
    Taint,
    handlers,
)
from intelligence.vocabulary import Lever, WorkloadRef
from tests.fakes.kernel import MemoryKernel

INGEST = WorkloadRef("edge-1", "iot", "ingest")


def test_every_lever_has_exactly_one_handler():
    found = handlers(MemoryKernel())
    assert set(found) == set(Lever)
    assert all(handler.lever is lever for lever, handler in found.items())


@pytest.mark.parametrize(
    ("handler", "before", "value"),
    [
        (KnativeFloor, 1, 4),
        (DeploymentReplicas, 1, 3),
        (Placement, "edge-1", "fog-1"),
    ],
)
def test_a_handler_reads_applies_and_verifies(handler, before, value):
    kernel = MemoryKernel(placement={("iot", "ingest"): "edge-1"})
    h = handler(kernel)
    assert h.current(INGEST) == before
    assert not h.in_force(INGEST, value)
    applied = h.apply(INGEST, value)
    assert applied.changed
    assert h.current(INGEST) == value
    assert h.in_force(INGEST, value)
    assert len(kernel.writes) == 1


def test_a_drain_taint_is_applied_once_and_read_back():
    kernel = MemoryKernel()
    drain = ClusterTaint(kernel)
    taint = Taint("icos.eu/drain", "operator", "NoSelect")
    assert not drain.in_force("edge-1", taint)
    assert drain.apply("edge-1", taint).changed
    assert drain.in_force("edge-1", taint)
    assert not drain.apply("edge-1", taint).changed  # idempotent: nothing written the second time
    assert len(kernel.writes) == 1
    assert not drain.in_force("edge-1", Taint("icos.eu/drain", "operator", "PreferNoSelect"))
