"""The fake Kubernetes API server answers the official client as the real API server would."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config

from tests.fakekube import FakeKube, write_kubeconfig
from tests.fakekube.documents import selector_matches

pytestmark = pytest.mark.integration

OCM = "cluster.open-cluster-management.io"
WORK = "work.open-cluster-management.io"
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield fake


@pytest.fixture
def api(fake_kube: FakeKube, tmp_path: Path) -> Iterator[client.ApiClient]:
    api_client = official_client(fake_kube.kubeconfig(tmp_path / "kubeconfig"), "default")
    yield api_client
    api_client.close()


def official_client(kubeconfig: Path, context: str) -> client.ApiClient:
    """The client as the adapters configure it: urllib3's own retries (Retry-After sleeps) off."""
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), context=context, client_configuration=configuration)
    configuration.retries = urllib3.Retry(0, respect_retry_after_header=False, raise_on_status=False)
    return client.ApiClient(configuration)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def manifest_work(name: str, namespace: str = "edge-a", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{WORK}/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]}},
    }


def managed_cluster(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{OCM}/v1",
        "kind": "ManagedCluster",
        "metadata": {"name": name, "labels": {"name": name}},
        "spec": {"hubAcceptsClient": True},
    }


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": "nginx"}]}},
        },
        "status": {"replicas": replicas},
    }


def api_error(excinfo: pytest.ExceptionInfo[client.ApiException]) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(excinfo.value.body)
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["code"] == excinfo.value.status
    return status


def test_create_answers_201_with_the_object_and_409_when_it_exists(custom: client.CustomObjectsApi) -> None:
    created = custom.create_namespaced_custom_object(WORK, "v1", "edge-a", "manifestworks", manifest_work("w"))

    assert created["metadata"]["name"] == "w"
    assert created["metadata"]["namespace"] == "edge-a"
    assert created["metadata"]["uid"]
    assert created["metadata"]["creationTimestamp"].endswith("Z")
    assert created["metadata"]["generation"] == 1
    with pytest.raises(client.ApiException) as excinfo:
        custom.create_namespaced_custom_object(WORK, "v1", "edge-a", "manifestworks", manifest_work("w"))
    assert excinfo.value.status == 409
    assert api_error(excinfo)["reason"] == "AlreadyExists"


@pytest.mark.parametrize("name", ["", "Upper", "under_score", "-dash"])
def test_create_refuses_a_missing_or_invalid_name_with_422(custom: client.CustomObjectsApi, name: str) -> None:
    with pytest.raises(client.ApiException) as excinfo:
        custom.create_namespaced_custom_object(WORK, "v1", "edge-a", "manifestworks", manifest_work(name))
    assert excinfo.value.status == 422
    assert api_error(excinfo)["reason"] == "Invalid"


def test_create_refuses_a_namespace_other_than_the_url(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(client.ApiException) as excinfo:
        custom.create_namespaced_custom_object(WORK, "v1", "edge-b", "manifestworks", manifest_work("w", "edge-a"))
    assert excinfo.value.status == 400


def test_unknown_resources_and_absent_objects_are_404(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(client.ApiException) as unknown:
        custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    with pytest.raises(client.ApiException) as absent:
        custom.get_namespaced_custom_object(WORK, "v1", "edge-a", "manifestworks", "nothing")

    assert unknown.value.status == absent.value.status == 404
    assert api_error(absent)["message"] == f'manifestworks.{WORK} "nothing" not found'


def test_metadata_follows_writes(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    (seeded,) = fake_kube.seed(managed_cluster("edge-a"))

    labelled = custom.patch_cluster_custom_object(
        OCM, "v1", "managedclusters", "edge-a", {"metadata": {"labels": {"x": "1"}}}
    )
    respecced = custom.patch_cluster_custom_object(
        OCM, "v1", "managedclusters", "edge-a", {"spec": {"hubAcceptsClient": False}}
    )
    unchanged = custom.patch_cluster_custom_object(
        OCM, "v1", "managedclusters", "edge-a", {"spec": {"hubAcceptsClient": False}}
    )

    revisions = [int(obj["metadata"]["resourceVersion"]) for obj in (seeded, labelled, respecced)]
    assert revisions == sorted(set(revisions))
    assert [obj["metadata"]["generation"] for obj in (seeded, labelled, respecced)] == [1, 1, 2]
    assert unchanged["metadata"]["resourceVersion"] == respecced["metadata"]["resourceVersion"]  # a no-op write
    assert labelled["metadata"]["uid"] == seeded["metadata"]["uid"]


def test_replace_with_a_stale_resource_version_is_409(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.enforce_rbac(False)  # the actuator never replaces a ManagedCluster
    fake_kube.seed(managed_cluster("edge-a"))
    read = custom.get_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a")
    fake_kube.edit(f"{OCM}/v1", "ManagedCluster", None, "edge-a", {"metadata": {"labels": {"other": "writer"}}})

    read["spec"]["hubAcceptsClient"] = False
    with pytest.raises(client.ApiException) as excinfo:
        custom.replace_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a", read)

    assert excinfo.value.status == 409
    assert api_error(excinfo)["reason"] == "Conflict"
    fresh = custom.get_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a")
    fresh["spec"]["hubAcceptsClient"] = False
    assert custom.replace_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a", fresh)["spec"] == {
        "hubAcceptsClient": False
    }


def test_replace_of_an_absent_object_is_404(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.enforce_rbac(False)
    body = managed_cluster("ghost") | {"metadata": {"name": "ghost", "resourceVersion": "1"}}
    with pytest.raises(client.ApiException) as excinfo:
        custom.replace_cluster_custom_object(OCM, "v1", "managedclusters", "ghost", body)
    assert excinfo.value.status == 404


def test_merge_patch_with_a_stale_resource_version_is_409(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    (seeded,) = fake_kube.seed(managed_cluster("edge-a"))
    fake_kube.edit(f"{OCM}/v1", "ManagedCluster", None, "edge-a", {"metadata": {"labels": {"other": "writer"}}})
    stale = {
        "metadata": {"resourceVersion": seeded["metadata"]["resourceVersion"]},
        "spec": {"hubAcceptsClient": False},
    }

    with pytest.raises(client.ApiException) as excinfo:
        custom.patch_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a", stale)

    assert excinfo.value.status == 409


def test_patch_of_an_absent_object_is_404(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(client.ApiException) as excinfo:
        custom.patch_cluster_custom_object(OCM, "v1", "managedclusters", "ghost", {"spec": {}})
    assert excinfo.value.status == 404


def test_json_patch_needs_its_content_type(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.seed(managed_cluster("edge-a"))
    taint = [{"op": "add", "path": "/spec/taints", "value": [{"key": "k", "effect": "NoSelect"}]}]

    with pytest.raises(client.ApiException) as as_merge_patch:
        custom.patch_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a", taint)
    with pytest.raises(client.ApiException) as dict_as_json_patch:
        custom.patch_cluster_custom_object(
            OCM, "v1", "managedclusters", "edge-a", {"spec": {}}, _content_type=JSON_PATCH
        )
    patched = custom.patch_cluster_custom_object(
        OCM, "v1", "managedclusters", "edge-a", taint, _content_type=JSON_PATCH
    )

    assert as_merge_patch.value.status == 415
    assert api_error(as_merge_patch)["reason"] == "UnsupportedMediaType"
    assert dict_as_json_patch.value.status == 415  # the client turns it into a strategic merge, which CRDs refuse
    assert patched["spec"]["taints"] == [{"key": "k", "effect": "NoSelect"}]
    assert [logged.content_type for logged in fake_kube.requests_matching("PATCH")] == [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        JSON_PATCH,
    ]


def test_json_patch_with_a_failing_test_op_is_422(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.seed(managed_cluster("edge-a"))
    guarded = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/spec/taints", "value": []},
    ]
    bad_path = [{"op": "replace", "path": "/spec/nothing/here", "value": 1}]

    for operations in (guarded, bad_path):
        with pytest.raises(client.ApiException) as excinfo:
            custom.patch_cluster_custom_object(
                OCM, "v1", "managedclusters", "edge-a", operations, _content_type=JSON_PATCH
            )
        assert excinfo.value.status == 422
    assert "taints" not in fake_kube.get(f"{OCM}/v1", "ManagedCluster", None, "edge-a")["spec"]


def test_rbac_forbids_what_the_role_does_not_grant(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(client.ApiException) as excinfo:
        custom.create_cluster_custom_object(OCM, "v1", "managedclusters", managed_cluster("edge-a"))

    assert excinfo.value.status == 403
    assert api_error(excinfo)["message"] == (
        f'managedclusters.{OCM} is forbidden: User "system:serviceaccount:icos:icos-intelligence" '
        f'cannot create resource "managedclusters" in API group "{OCM}" at the cluster scope'
    )


def test_rbac_names_the_subresource_and_namespace(api: client.ApiClient) -> None:
    with pytest.raises(client.ApiException) as excinfo:
        client.AppsV1Api(api).patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})

    assert excinfo.value.status == 403
    assert api_error(excinfo)["message"] == (
        'deployments.apps "web" is forbidden: User "system:serviceaccount:icos:icos-intelligence" '
        'cannot patch resource "deployments" in API group "apps" in the namespace "default"'
    )


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=edge", ["a", "b"]),
        ("tier==edge,zone=north", ["a"]),
        ("tier!=edge", ["c"]),
        ("zone in (north, south)", ["a", "b"]),
        ("zone notin (north)", ["b", "c"]),
        ("zone", ["a", "b"]),
        ("!zone", ["c"]),
    ],
)
def test_list_filters_by_label_selector(
    fake_kube: FakeKube, custom: client.CustomObjectsApi, selector: str, expected: list[str]
) -> None:
    fake_kube.seed(
        manifest_work("a", labels={"tier": "edge", "zone": "north"}),
        manifest_work("b", "edge-b", labels={"tier": "edge", "zone": "south"}),
        manifest_work("c", labels={"tier": "cloud"}),
    )

    listed = custom.list_cluster_custom_object(WORK, "v1", "manifestworks", label_selector=selector)

    assert listed["kind"] == "ManifestWorkList"
    assert int(listed["metadata"]["resourceVersion"]) >= 3
    assert sorted(item["metadata"]["name"] for item in listed["items"]) == expected


def test_list_in_one_namespace(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.seed(manifest_work("a"), manifest_work("b", "edge-b"))
    listed = custom.list_namespaced_custom_object(WORK, "v1", "edge-b", "manifestworks")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["b"]


def test_status_is_a_subresource(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.enforce_rbac(False)  # the adapters never patch a score outside its status: the role does not grant it
    score = {
        "apiVersion": f"{OCM}/v1alpha1",
        "kind": "AddOnPlacementScore",
        "metadata": {"name": "headroom"},
        "status": {"scores": [{"name": "headroom", "value": 1}]},
    }
    created = custom.create_namespaced_custom_object(OCM, "v1alpha1", "edge-a", "addonplacementscores", score)
    ignored = custom.patch_namespaced_custom_object(
        OCM, "v1alpha1", "edge-a", "addonplacementscores", "headroom", {"status": {"scores": []}}
    )
    written = custom.patch_namespaced_custom_object_status(
        OCM,
        "v1alpha1",
        "edge-a",
        "addonplacementscores",
        "headroom",
        {"metadata": {"labels": {"ignored": "yes"}}, "status": {"scores": [{"name": "headroom", "value": 42}]}},
    )

    assert "status" not in created  # dropped on create, as the real API does
    assert "status" not in ignored
    assert written["status"] == {"scores": [{"name": "headroom", "value": 42}]}
    assert "labels" not in written["metadata"]
    assert written["metadata"]["generation"] == 1


def test_deployment_scale_subresource(fake_kube: FakeKube, api: client.ApiClient) -> None:
    fake_kube.enforce_rbac(False)  # PUT on the scale and GET of the Deployment: the fake's, not the adapters' verbs
    fake_kube.seed(deployment("web", replicas=2))
    apps = client.AppsV1Api(api)

    scale = apps.read_namespaced_deployment_scale("web", "default")
    patched = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    scale.spec.replicas = 7
    with pytest.raises(client.ApiException) as stale:
        apps.replace_namespaced_deployment_scale("web", "default", scale)
    scale = apps.read_namespaced_deployment_scale("web", "default")
    scale.spec.replicas = 7
    replaced = apps.replace_namespaced_deployment_scale("web", "default", scale)

    assert scale.kind == "Scale"
    assert scale.status.selector == "app=web"
    assert patched.spec.replicas == 5
    assert stale.value.status == 409
    assert replaced.spec.replicas == 7
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 7


def test_delete_then_404(fake_kube: FakeKube, custom: client.CustomObjectsApi) -> None:
    fake_kube.seed(manifest_work("w"))

    deleted = custom.delete_namespaced_custom_object(WORK, "v1", "edge-a", "manifestworks", "w")
    with pytest.raises(client.ApiException) as excinfo:
        custom.delete_namespaced_custom_object(WORK, "v1", "edge-a", "manifestworks", "w")

    assert deleted["status"] == "Success"
    assert excinfo.value.status == 404
    assert fake_kube.history(f"{WORK}/v1", "ManifestWork", "edge-a", "w")[-1] is None


def test_injected_faults_and_the_request_log(custom: client.CustomObjectsApi, fake_kube: FakeKube) -> None:
    fake_kube.seed(managed_cluster("edge-a"))
    fake_kube.fail_next("GET", "/managedclusters/edge-a", 503, times=2, retry_after=3)

    for _ in range(2):
        with pytest.raises(client.ApiException) as excinfo:
            custom.get_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a")
        assert excinfo.value.status == 503
        assert excinfo.value.headers["Retry-After"] == "3"
    custom.get_cluster_custom_object(OCM, "v1", "managedclusters", "edge-a")

    assert [logged.status for logged in fake_kube.requests_matching("GET", "/managedclusters/")] == [503, 503, 200]
    assert fake_kube.writes() == []


def test_discovery_lists_the_served_resources(fake_kube: FakeKube) -> None:
    with urllib.request.urlopen(f"{fake_kube.url}/apis/{OCM}/v1alpha1") as response:
        resources = {resource["name"] for resource in json.load(response)["resources"]}
    assert resources == {"addonplacementscores", "addonplacementscores/status"}


def test_several_fakes_stand_for_several_clusters(tmp_path: Path) -> None:
    # listing ManagedClusters is the fake's business here, not a verb the adapters use
    with FakeKube(enforce_rbac=False) as hub, FakeKube(enforce_rbac=False) as edge:
        hub.seed(managed_cluster("edge"))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"hub": hub, "edge": edge})
        hub_api = official_client(kubeconfig, "hub")
        edge_api = official_client(kubeconfig, "edge")
        try:
            on_hub = client.CustomObjectsApi(hub_api).list_cluster_custom_object(OCM, "v1", "managedclusters")
            on_edge = client.CustomObjectsApi(edge_api).list_cluster_custom_object(OCM, "v1", "managedclusters")
        finally:
            hub_api.close()
            edge_api.close()
    assert [len(on_hub["items"]), len(on_edge["items"])] == [1, 0]


@pytest.mark.parametrize("selector", ["=x", "in (x)", "a in (x", "a in x"])
def test_malformed_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="unable to parse"):
        selector_matches(selector, {"a": "x"})
