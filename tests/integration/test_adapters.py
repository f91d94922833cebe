"""The meta-kernel adapters against fake clusters (tests/fakekube): an OCM hub and two member clusters."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intelligence.actuation.adapters.base import ClusterScore, PermanentError, TemporaryError
from intelligence.actuation.adapters.metakernel import KubeMetaKernel
from intelligence.actuation.adapters.spec import KnativeScalePath, KubernetesSpec
from intelligence.vocabulary import ManualClock
from tests.fakekube import FakeKube, write_kubeconfig
from tests.fakekube.objects import (
    LABEL,
    MAX,
    MIN,
    OCM,
    PA,
    SERVING,
    WORK,
    deployment,
    knative_service,
    managed_cluster,
    manifest_work,
    pod_autoscaler,
    revision,
    shop,
)

pytestmark = pytest.mark.integration


def annotations(fake: FakeKube, api_version: str, kind: str, name: str) -> dict[str, str]:
    obj = fake.get(api_version, kind, "shop", name)
    assert obj is not None
    return dict(obj["metadata"].get("annotations") or {})


# -- Knative ---------------------------------------------------------------------------------------------


def test_min_scale_goes_on_the_pod_autoscaler_and_revision_without_a_new_revision(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel, caplog: pytest.LogCaptureFixture
) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    before = edge.get(SERVING, "Service", "shop", "checkout")

    with caplog.at_level(logging.INFO, logger="intelligence.actuation.adapters"):
        applied = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3, max_scale=10)

    assert applied.changed
    assert applied.obj == "Knative Service shop/checkout @ edge-a"
    assert applied.observed == {"min_scale": 3, "max_scale": 10}
    assert {MIN: "3", MAX: "10"}.items() <= annotations(edge, PA, "PodAutoscaler", "checkout-00001").items()
    assert {MIN: "3", MAX: "10"}.items() <= annotations(edge, SERVING, "Revision", "checkout-00001").items()
    assert edge.get(SERVING, "Service", "shop", "checkout") == before  # no template edit, so no new Revision
    assert len(edge.list(SERVING, "Revision", "shop")) == 1
    assert edge.requests_matching("PATCH", "/services/") == []
    assert "annotated PodAutoscaler shop/checkout-00001 @ edge-a" in caplog.text
    assert kernel.read_knative_scale("edge-a", "shop", "checkout") == {"min_scale": 3, "max_scale": 10}


def test_a_raise_wakes_a_revision_scaled_to_zero_through_its_deployments_scale(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel
) -> None:
    """knative/serving#10327: a min-scale on the PodAutoscaler of a Revision at zero waits for a request (the KPA has
    no metrics and returns before its bounds); the adapter also scales the PA's scale target, the Deployment."""
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 60), ("checkout-00002", 40)])
    asleep = {
        "desiredScale": -1,
        "actualScale": 0,
        "conditions": [{"type": "Active", "status": "False", "reason": "NoTraffic"}],
    }
    edge.edit(PA, "PodAutoscaler", "shop", "checkout-00001", {"status": asleep})
    edge.seed(deployment("checkout-00001-deployment", 0), deployment("checkout-00002-deployment", 1))

    applied = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    assert annotations(edge, PA, "PodAutoscaler", "checkout-00001")[MIN] == "2"
    scaled = edge.get("apps/v1", "Deployment", "shop", "checkout-00001-deployment")
    assert scaled is not None
    assert scaled["spec"]["replicas"] == 2
    awake = edge.get("apps/v1", "Deployment", "shop", "checkout-00002-deployment")
    assert awake is not None
    assert awake["spec"]["replicas"] == 1
    assert [r.path for r in edge.requests_matching("PATCH", "/deployments/")] == [
        "/apis/apps/v1/namespaces/shop/deployments/checkout-00001-deployment/scale"
    ]
    assert "checkout-00001 woken from zero (Deployment checkout-00001-deployment to 2)" in applied.detail
    again = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)
    assert not again.changed  # in force, pods asked for: nothing written twice
    assert kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=0).changed  # a release never scales down


def test_min_scale_is_split_by_traffic_percent_rounding_up(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 60), ("checkout-00002", 40)])

    applied = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    assert annotations(edge, PA, "PodAutoscaler", "checkout-00001")[MIN] == "2"
    assert annotations(edge, PA, "PodAutoscaler", "checkout-00002")[MIN] == "2"
    assert MAX not in annotations(edge, PA, "PodAutoscaler", "checkout-00001")  # not given: left alone
    assert applied.observed == {"min_scale": 4, "max_scale": None}


def test_without_traffic_status_the_latest_ready_revision_serves(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel
) -> None:
    edge = fakes["edge-a"]
    service = knative_service("checkout", [], latest="checkout-00003")
    edge.seed(service, revision("checkout-00003", "checkout"), pod_autoscaler("checkout-00003"))

    kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=2)

    assert annotations(edge, PA, "PodAutoscaler", "checkout-00003")[MIN] == "2"


def test_a_second_identical_call_writes_nothing(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)
    edge.clear_log()

    again = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    assert not again.changed
    assert edge.writes() == []


def test_the_service_template_fallback_patches_the_service(
    fakes: dict[str, FakeKube], kube_settings: KubernetesSpec, sleeps: list[float], clock: ManualClock
) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    settings = replace(kube_settings, knative_scale_path=KnativeScalePath.SERVICE_TEMPLATE)
    kernel = KubeMetaKernel(settings, sleep=sleeps.append, clock=clock)
    try:
        applied = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=2)
        again = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=2)
        read = kernel.read_knative_scale("edge-a", "shop", "checkout")
    finally:
        kernel.close()

    service = edge.get(SERVING, "Service", "shop", "checkout")
    assert service is not None
    assert service["spec"]["template"]["metadata"]["annotations"][MIN] == "2"
    assert service["metadata"]["generation"] == 2
    assert (applied.changed, again.changed) == (True, False)
    assert read == {"min_scale": 2, "max_scale": None}
    assert len(edge.requests_matching("PATCH", "/services/checkout")) == 1
    assert edge.requests_matching("PATCH", "/podautoscalers/") == []


def test_a_read_back_that_differs_is_a_temporary_error(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])

    def controller_resets_the_pa() -> None:
        edge.edit(PA, "PodAutoscaler", "shop", "checkout-00001", {"metadata": {"annotations": {MIN: "1"}}})

    edge.before("PATCH", "/revisions/checkout-00001", controller_resets_the_pa)

    with pytest.raises(TemporaryError, match=r"PodAutoscaler shop/checkout-00001 @ edge-a: read back"):
        kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)


def test_a_conflict_is_retried_after_a_re_read(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel, sleeps: list[float]
) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])

    def someone_else_edits_the_pa() -> None:
        edge.edit(PA, "PodAutoscaler", "shop", "checkout-00001", {"metadata": {"labels": {"touched": "yes"}}})

    edge.before("PATCH", "/podautoscalers/checkout-00001", someone_else_edits_the_pa)

    applied = kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    patches = edge.requests_matching("PATCH", "/podautoscalers/")
    assert [logged.status for logged in patches] == [409, 200]
    assert sleeps == [0.5]
    pa = edge.get(PA, "PodAutoscaler", "shop", "checkout-00001")
    assert pa is not None
    assert pa["metadata"]["labels"]["touched"] == "yes"  # the concurrent edit is not lost
    assert pa["metadata"]["annotations"][MIN] == "3"
    assert applied.changed


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_sleeps"),
    [(429, 7.0, [7.0]), (503, None, [0.5, 1.0]), (500, None, [0.5])],
)
def test_throttling_and_server_errors_are_retried_with_the_fake_sleep(
    fakes: dict[str, FakeKube],
    kernel: KubeMetaKernel,
    sleeps: list[float],
    status: int,
    retry_after: float | None,
    expected_sleeps: list[float],
) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    edge.fail_next("PATCH", "/podautoscalers/", status, times=len(expected_sleeps), retry_after=retry_after)

    kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    assert sleeps == expected_sleeps
    assert len(edge.requests_matching("PATCH", "/podautoscalers/")) == len(expected_sleeps) + 1


def test_temporary_errors_give_up_after_the_retries(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel, sleeps: list[float]
) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    edge.fail_next("PATCH", "/podautoscalers/", 503, times=10)

    with pytest.raises(TemporaryError) as excinfo:
        kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    assert excinfo.value.status == 503
    assert excinfo.value.obj == "PodAutoscaler shop/checkout-00001 @ edge-a"
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(edge.requests_matching("PATCH", "/podautoscalers/")) == 4


@pytest.mark.parametrize("status", [400, 403, 404, 415, 422])
def test_permanent_errors_are_not_retried(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel, sleeps: list[float], status: int
) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    edge.fail_next("PATCH", "/podautoscalers/", status)

    with pytest.raises(PermanentError) as excinfo:
        kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)

    assert excinfo.value.status == status
    assert excinfo.value.obj == "PodAutoscaler shop/checkout-00001 @ edge-a"
    assert len(edge.requests_matching("PATCH", "/podautoscalers/")) == 1
    assert sleeps == []


def test_an_absent_service_is_a_permanent_404(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    with pytest.raises(PermanentError, match=r"Knative Service shop/nothing @ edge-b: .*not found \(HTTP 404\)"):
        kernel.set_knative_scale("edge-b", "shop", "nothing", min_scale=1)


def test_an_unreachable_cluster_is_temporary(kube_settings: KubernetesSpec, tmp_path: Path) -> None:
    with FakeKube() as gone:
        kubeconfig = write_kubeconfig(tmp_path / "gone", {"gone": gone})
    settings = replace(kube_settings, kubeconfig=kubeconfig, context="gone", retries=1)
    sleeps: list[float] = []
    kernel = KubeMetaKernel(settings, sleep=sleeps.append)
    try:
        with pytest.raises(TemporaryError, match="Deployment shop/web @ somewhere: cannot reach the API server"):
            kernel.read_deployment_replicas("somewhere", "shop", "web")
    finally:
        kernel.close()
    assert sleeps == [0.5]


def test_building_the_kernel_contacts_nothing(tmp_path: Path) -> None:
    kernel = KubeMetaKernel(KubernetesSpec(kubeconfig=tmp_path / "absent"))  # no file, and building does not mind
    with pytest.raises(PermanentError, match="kubeconfig"):
        kernel.check()  # the kubeconfig is read only when asked (at start in approve/enact mode)
    kernel.close()


# -- Deployments -------------------------------------------------------------------------------------------


def test_deployments_scale_through_the_scale_subresource(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    edge = fakes["edge-b"]
    edge.seed(deployment("web", 2))

    applied = kernel.scale_deployment("edge-b", "shop", "web", 5)
    edge.clear_log()
    again = kernel.scale_deployment("edge-b", "shop", "web", 5)

    assert (applied.changed, again.changed) == (True, False)
    assert applied.observed == {"replicas": 5}
    assert kernel.read_deployment_replicas("edge-b", "shop", "web") == 5
    stored = edge.get("apps/v1", "Deployment", "shop", "web")
    assert stored is not None
    assert stored["spec"]["replicas"] == 5
    assert edge.writes() == []


def test_a_concurrent_scale_gives_a_conflict_then_a_recomputed_write(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel, sleeps: list[float]
) -> None:
    edge = fakes["edge-b"]
    edge.seed(deployment("web", 2))
    edge.before(
        "PATCH",
        "/deployments/web/scale",
        lambda: edge.edit("apps/v1", "Deployment", "shop", "web", {"spec": {"replicas": 4}}),
    )

    kernel.scale_deployment("edge-b", "shop", "web", 6)

    assert [logged.status for logged in edge.requests_matching("PATCH", "/scale")] == [409, 200]
    assert kernel.read_deployment_replicas("edge-b", "shop", "web") == 6


# -- OCM: placement scores -------------------------------------------------------------------------------


def test_placement_scores_are_written_through_the_status_subresource(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel
) -> None:
    hub = fakes["hub"]
    valid_until = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)

    applied = kernel.publish_placement_scores(
        "icos-headroom", [ClusterScore("edge-a", 150), ClusterScore("edge-b", -20)], valid_until
    )
    hub.clear_log()
    again = kernel.publish_placement_scores(
        "icos-headroom", [ClusterScore("edge-a", 100), ClusterScore("edge-b", -20)], valid_until
    )

    score = hub.get(f"{OCM}/v1alpha1", "AddOnPlacementScore", "edge-a", "icos-headroom")
    assert score is not None
    assert score["status"]["scores"] == [{"name": "icos-headroom", "value": 100}]
    assert score["status"]["validUntil"] == "2026-01-01T00:10:00Z"
    assert score["status"]["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert [a.obj for a in applied] == [
        "AddOnPlacementScore edge-a/icos-headroom @ hub",
        "AddOnPlacementScore edge-b/icos-headroom @ hub",
    ]
    assert [a.observed["value"] for a in applied] == [100, -20]
    assert all(a.changed for a in applied)
    assert not any(a.changed for a in again)
    assert hub.writes() == []


def test_placement_scores_update_an_existing_score(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    hub = fakes["hub"]
    kernel.publish_placement_scores("icos-headroom", [ClusterScore("edge-a", 10)], datetime(2026, 1, 1, tzinfo=UTC))

    kernel.publish_placement_scores("icos-headroom", [ClusterScore("edge-a", 30)], datetime(2026, 1, 2, tzinfo=UTC))

    assert [(logged.method, logged.status) for logged in hub.writes()] == [
        ("POST", 201),
        ("PATCH", 200),
        ("PATCH", 200),
    ]
    assert all(logged.path.endswith("/status") for logged in hub.writes() if logged.method == "PATCH")
    score = hub.get(f"{OCM}/v1alpha1", "AddOnPlacementScore", "edge-a", "icos-headroom")
    assert score is not None
    assert score["status"]["scores"][0]["value"] == 30


# -- OCM: ManifestWork moves -----------------------------------------------------------------------------


def works(hub: FakeKube) -> list[str]:
    return sorted(f"{w['metadata']['namespace']}/{w['metadata']['name']}" for w in hub.list(WORK, "ManifestWork"))


def test_a_workload_moves_by_creating_then_deleting(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    hub = fakes["hub"]
    (source,) = hub.seed(manifest_work("edge-a"))
    assert kernel.workload_placement("shop", "checkout") == "edge-a"

    applied = kernel.move_workload("shop", "checkout", "edge-a", "edge-b")

    assert applied.changed
    assert kernel.workload_placement("shop", "checkout") == "edge-b"
    assert works(hub) == ["edge-b/shop-checkout"]
    moved = hub.get(WORK, "ManifestWork", "edge-b", "shop-checkout")
    assert moved is not None
    assert moved["spec"] == source["spec"]
    assert moved["metadata"]["labels"] == {LABEL: "shop.checkout"}
    assert moved["metadata"]["annotations"] == {"icos.eu/owner": "shop"}
    assert "status" not in moved
    assert moved["metadata"]["uid"] != source["metadata"]["uid"]
    assert [logged.method for logged in hub.writes()] == ["POST", "DELETE"]


def test_a_move_interrupted_after_the_copy_completes_on_a_re_run(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel
) -> None:
    hub = fakes["hub"]
    hub.seed(manifest_work("edge-a"))
    hub.fail_next("DELETE", "/manifestworks/", 500, times=4)

    with pytest.raises(TemporaryError, match="ManifestWork edge-a/shop-checkout @ hub"):
        kernel.move_workload("shop", "checkout", "edge-a", "edge-b")
    assert works(hub) == ["edge-a/shop-checkout", "edge-b/shop-checkout"]  # a duplicate, never a loss
    assert kernel.workload_placement("shop", "checkout") == "edge-a"  # the oldest, so the move is re-run
    hub.clear_log()

    applied = kernel.move_workload("shop", "checkout", "edge-a", "edge-b")

    assert applied.changed
    assert works(hub) == ["edge-b/shop-checkout"]
    assert [logged.method for logged in hub.writes()] == ["DELETE"]  # no second copy


def test_a_move_already_done_writes_nothing(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    hub = fakes["hub"]
    hub.seed(manifest_work("edge-b"))

    applied = kernel.move_workload("shop", "checkout", "edge-a", "edge-b")

    assert not applied.changed
    assert hub.writes() == []


def test_moving_an_unknown_workload_is_permanent(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    with pytest.raises(PermanentError, match=r"apps\.icos\.eu/workload=shop\.nothing"):
        kernel.move_workload("shop", "nothing", "edge-a", "edge-b")
    assert kernel.workload_placement("shop", "nothing") is None


# -- OCM: taints ---------------------------------------------------------------------------------------------


def test_taint_is_added_once_with_a_guarded_json_patch(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    hub = fakes["hub"]
    existing = {"key": "maintenance", "value": "", "effect": "NoSelect", "timeAdded": "2025-12-31T00:00:00Z"}
    hub.delete(f"{OCM}/v1", "ManagedCluster", None, "edge-a")
    hub.seed(managed_cluster("edge-a", taints=[existing]))

    applied = kernel.taint_cluster("edge-a", "icos.eu/overloaded", "cpu", "PreferNoSelect")
    again = kernel.taint_cluster("edge-a", "icos.eu/overloaded", "cpu", "PreferNoSelect")

    cluster = hub.get(f"{OCM}/v1", "ManagedCluster", None, "edge-a")
    assert cluster is not None
    assert cluster["spec"]["taints"] == [
        existing,
        {"key": "icos.eu/overloaded", "value": "cpu", "effect": "PreferNoSelect", "timeAdded": "2026-01-01T00:00:00Z"},
    ]
    assert (applied.changed, again.changed) == (True, False)
    (patch,) = hub.requests_matching("PATCH", "/managedclusters/edge-a")
    assert patch.content_type == "application/json-patch+json"


def test_a_concurrent_cluster_edit_fails_the_test_op_and_is_retried(
    fakes: dict[str, FakeKube], kernel: KubeMetaKernel, sleeps: list[float]
) -> None:
    hub = fakes["hub"]
    hub.before(
        "PATCH",
        "/managedclusters/edge-b",
        lambda: hub.edit(f"{OCM}/v1", "ManagedCluster", None, "edge-b", {"metadata": {"labels": {"zone": "north"}}}),
    )

    kernel.taint_cluster("edge-b", "icos.eu/overloaded", "", "NoSelect")

    assert [logged.status for logged in hub.requests_matching("PATCH", "/managedclusters/edge-b")] == [422, 200]
    assert sleeps == [0.5]
    cluster = hub.get(f"{OCM}/v1", "ManagedCluster", None, "edge-b")
    assert cluster is not None
    assert cluster["metadata"]["labels"]["zone"] == "north"
    assert cluster["spec"]["taints"][0]["key"] == "icos.eu/overloaded"


def test_an_unknown_taint_effect_is_refused(kernel: KubeMetaKernel) -> None:
    with pytest.raises(PermanentError, match="ManagedCluster edge-a @ hub"):
        kernel.taint_cluster("edge-a", "k", "v", "NoExecute")


# -- OCM: Placement pinning ----------------------------------------------------------------------------------


def test_a_placement_is_pinned_to_one_cluster(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    hub = fakes["hub"]
    hub.seed(
        {
            "apiVersion": f"{OCM}/v1beta1",
            "kind": "Placement",
            "metadata": {"name": "shop", "namespace": "shop"},
            "spec": {"numberOfClusters": 1, "clusterSets": ["edge"], "predicates": []},
        }
    )

    applied = kernel.retarget_placement("shop", "shop", "edge-b")
    again = kernel.retarget_placement("shop", "shop", "edge-b")

    placement = hub.get(f"{OCM}/v1beta1", "Placement", "shop", "shop")
    assert placement is not None
    assert placement["spec"]["predicates"] == [
        {"requiredClusterSelector": {"labelSelector": {"matchLabels": {"name": "edge-b"}}}}
    ]
    assert placement["spec"]["clusterSets"] == ["edge"]
    assert (applied.changed, again.changed) == (True, False)
    assert len(hub.writes()) == 1


def test_in_force_compares_each_revision_share_not_the_sum(fakes: dict[str, FakeKube], kernel: KubeMetaKernel) -> None:
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 60), ("checkout-00002", 40)])
    assert not kernel.knative_scale_in_force("edge-a", "shop", "checkout", 3)
    kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3)
    assert kernel.read_knative_scale("edge-a", "shop", "checkout")["min_scale"] == 4  # 2 + 2
    assert kernel.knative_scale_in_force("edge-a", "shop", "checkout", 3)
    assert not kernel.knative_scale_in_force("edge-a", "shop", "checkout", 4)


def test_a_bad_kubeconfig_is_a_permanent_error_naming_the_context(tmp_path: Path) -> None:
    kernel = KubeMetaKernel(KubernetesSpec(kubeconfig=tmp_path / "absent", hub_context="hub"))
    with pytest.raises(PermanentError, match="kubeconfig current context: cannot load"):
        kernel.check()
    with pytest.raises(PermanentError, match="cannot load"):
        kernel.read_knative_scale("edge-a", "shop", "checkout")
