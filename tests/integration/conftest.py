"""Fixtures of the tests that talk to fake Kubernetes clusters (tests/fakekube)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intelligence.actuation.adapters.metakernel import KubeMetaKernel
from intelligence.actuation.adapters.spec import KubernetesSpec
from intelligence.vocabulary import ManualClock
from tests.fakekube import FakeKube, running_fake_kubes, write_kubeconfig
from tests.fakekube.objects import managed_cluster


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeKube]]:
    """``hub`` (OCM) and the member clusters ``edge-a``, ``edge-b``."""
    with running_fake_kubes("hub", "edge-a", "edge-b") as running:
        running["hub"].seed(managed_cluster("edge-a"), managed_cluster("edge-b"))
        yield running


@pytest.fixture
def kube_settings(fakes: dict[str, FakeKube], tmp_path: Path) -> KubernetesSpec:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fakes)
    return KubernetesSpec(
        kubeconfig=kubeconfig,
        hub_context="hub",
        cluster_contexts={"edge-a": "edge-a", "edge-b": "edge-b"},
        retries=3,
        backoff_seconds=0.5,
    )


@pytest.fixture
def sleeps() -> list[float]:
    """What the retries slept (the kernel's ``sleep`` appends here instead of waiting)."""
    return []


@pytest.fixture
def kernel(kube_settings: KubernetesSpec, sleeps: list[float], clock: ManualClock) -> Iterator[KubeMetaKernel]:
    meta_kernel = KubeMetaKernel(kube_settings, sleep=sleeps.append, clock=clock)
    yield meta_kernel
    meta_kernel.close()
