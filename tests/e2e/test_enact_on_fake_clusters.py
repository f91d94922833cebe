"""The embedded default in enact mode, acting through the real adapters on fake clusters (an OCM hub and three members).

The simulated continuum's workloads exist as Knative Services (and one plain Deployment) on fake member clusters, and
as ManifestWorks on the fake hub; the service is configured as an operator would, with a kubeconfig.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from collectors.simulated import CLUSTERS, WORKLOADS
from intelligence.runtime.service import Service
from intelligence.runtime.wiring import StartupError, build_service
from intelligence.settings import load_settings
from intelligence.storage.ledger import ActionState
from intelligence.vocabulary import Lever, ManualClock
from tests.driving import drive
from tests.fakekube import FakeKube, running_fake_kubes, write_kubeconfig
from tests.fakekube.objects import LABEL, MIN, PA, SERVING, WORK, deployment, managed_cluster, manifest_work, shop

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
MEMBERS = [c.name for c in CLUSTERS]
TOKEN = "operator-token"


@pytest.fixture
def continuum() -> Iterator[dict[str, FakeKube]]:
    with running_fake_kubes("hub", *MEMBERS) as fakes:
        hub = fakes["hub"]
        hub.seed(*(managed_cluster(name) for name in MEMBERS))
        for w in WORKLOADS:
            hub.seed(manifest_work(w.cluster, f"{w.namespace}-{w.name}", (w.namespace, w.name)))
            if w.knative:
                shop(fakes[w.cluster], [(f"{w.name}-00001", 100)], w.name, w.namespace)
            else:
                fakes[w.cluster].seed(deployment(w.name, 1, w.namespace))
        yield fakes


@pytest.fixture
def service(continuum: dict[str, FakeKube], tmp_path: Path) -> Iterator[tuple[Service, ManualClock]]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", continuum)
    (tmp_path / "token").write_text(TOKEN)
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.enabled": False,
            "api.token_file": str(tmp_path / "token"),
            "policy.mode": "enact",
            "policy.overrides": [{"namespace": "analytics", "kind": "deployment"}],
            "kubernetes.kubeconfig": str(kubeconfig),
            "kubernetes.hub_context": "hub",
            "kubernetes.cluster_contexts": {name: name for name in MEMBERS},
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    yield svc, clock
    svc.stop()


def test_floors_moves_and_scores_are_enacted_on_the_clusters(service, continuum):
    svc, clock = service
    drive(svc, clock, 60)
    actions = svc.engine.actuator.ledger.find()
    assert actions, "nothing was enacted in 5 simulated hours"
    assert {a.state for a in actions} <= {ActionState.ENACTED, ActionState.RELEASED}  # released: a pulse ended
    floors = [a for a in actions if a.lever is Lever.KNATIVE_FLOOR]
    assert floors
    for a in floors:
        cluster, namespace, name = a.target.cluster, a.target.namespace, a.target.name
        pa = continuum[cluster].get(PA, "PodAutoscaler", namespace, f"{name}-00001")
        assert pa is not None
        assert int(pa["metadata"]["annotations"][MIN]) >= 1
    for cluster in MEMBERS:  # min-scale went on the PodAutoscalers: no Service edit, no new Revision
        assert continuum[cluster].requests_matching("PATCH", "/services/") == []
        assert all(r["metadata"]["name"].endswith("-00001") for r in continuum[cluster].list(SERVING, "Revision", None))
    moves = [a for a in actions if a.lever is Lever.PLACEMENT]
    assert moves, "the saturating edge cluster was not relieved"
    hub = continuum["hub"]
    for a in moves:
        namespace, name = a.target.namespace, a.target.name
        label = f"{namespace}.{name}"
        works = [w for w in hub.list(WORK, "ManifestWork", None) if w["metadata"]["labels"][LABEL] == label]
        assert [w["metadata"]["namespace"] for w in works] == [a.params["cluster"]]
    scores = hub.list("cluster.open-cluster-management.io/v1alpha1", "AddOnPlacementScore", None)
    assert sorted(s["metadata"]["namespace"] for s in scores) == sorted(MEMBERS)
    assert all(s["status"]["validUntil"] for s in scores)
    budget = svc.settings.policy.envelope.budget_actions
    assert len(actions) <= budget * 6  # at most one budget per hour, 5 simulated hours


def test_the_kill_switch_stops_everything_including_scores(service, continuum):
    svc, clock = service
    svc.engine.actuator.set_kill_switch(True, "maintenance", datetime.fromtimestamp(START, UTC))
    drive(svc, clock, 40)
    assert svc.engine.actuator.ledger.find() == []
    assert all(fake.writes() == [] for fake in continuum.values())


def test_an_operator_drains_a_cluster_through_the_api(service, continuum):
    svc, _ = service
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(svc.settings, service=svc)) as client:
        assert client.post("/v1/actuator/clusters/edge-1/drain").status_code == 401
        body = {"effect": "NoSelect", "by": "alice", "reason": "hardware fault"}
        drained = client.post("/v1/actuator/clusters/edge-1/drain", json=body, headers=auth)
        assert drained.status_code == 200
        assert drained.json()["changed"] is True
        again = client.post("/v1/actuator/clusters/edge-1/drain", json=body, headers=auth)
        assert again.json()["changed"] is False
        assert client.post("/v1/actuator/clusters/nowhere/drain", headers=auth).status_code == 404
    cluster = continuum["hub"].get("cluster.open-cluster-management.io/v1", "ManagedCluster", None, "edge-1")
    assert [(t["key"], t["value"], t["effect"]) for t in cluster["spec"]["taints"]] == [
        ("icos.eu/drain", "alice", "NoSelect")
    ]


def test_enact_mode_with_a_bad_kubeconfig_fails_at_start_naming_it(tmp_path):
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.enabled": False,
            "policy.mode": "enact",
            "kubernetes.kubeconfig": str(tmp_path / "missing-kubeconfig"),
            "kubernetes.hub_context": "hub",
        },
    )
    with pytest.raises(StartupError, match=r"kubernetes: cannot set up the adapters.*kubeconfig current context"):
        build_service(settings, clock=ManualClock(START))
