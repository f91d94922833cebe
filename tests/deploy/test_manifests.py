"""The Kustomize manifests (deploy/): rendered with `kubectl kustomize`, as an operator applies them.

- every object of every overlay validates offline against the Kubernetes schemas (kubernetes-validate,
  strict: an unknown field is an error), the custom resources against deploy/crds/;
- the pods are hardened (non-root, read-only root, no capabilities, seccomp, requests and limits, probes)
  and their writable mounts are the image's state directory and /tmp;
- names resolve: ConfigMaps, Secrets, the service account, selectors, the ServiceMonitor's port;
- the shipped settings equal the code's defaults but for the keys each overlay deliberately sets, and
  every file they name is mounted from a Secret;
- the RBAC the enact overlay grants is exactly what the adapters use (observed against the fake
  Kubernetes API, and the client calls of their source), no other overlay grants anything, and the fake
  enforces the same rules;
- the alert rules load in promtool, name only metrics the service exports, and fire in promtool's tests.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from intelligence.actuation.adapters.base import ClusterScore
from intelligence.actuation.adapters.metakernel import KubeMetaKernel
from intelligence.actuation.adapters.spec import KnativeScalePath, KubernetesSpec
from intelligence.settings import Settings, load_settings
from intelligence.vocabulary import ManualClock
from tests.deploy.container import ROOT
from tests.fakekube import running_fake_kubes, write_kubeconfig
from tests.fakekube.objects import OCM, deployment, managed_cluster, manifest_work, shop
from tests.fakekube.rbac import Authorizer
from tests.stack import find_binary

DEPLOY = ROOT / "deploy"
OVERLAYS = ("single", "sharded", "enact")
NAMESPACE = "icos"
ACCOUNT = (NAMESPACE, "icos-intelligence")
# The oldest Kubernetes the manifests claim (the pod-index label of StatefulSet pods is 1.28) and kubectl's.
KUBERNETES_VERSIONS = ("1.28", "1.32")
CONFIG_MOUNT = "/etc/icos-intelligence"
WORKLOADS = ("Deployment", "StatefulSet")

# What each overlay's settings deliberately set apart from the code's defaults (every other key must be
# the default). The environment sets more in the sharded overlay: the shard and two URLs from Secrets.
DELIBERATE = {
    "single": {"api.host", "api.token_file", "storage.state_dir"},
    "sharded": {"clusters", "api.host", "api.token_file", "storage.state_dir"},
    "enact": {"clusters", "policy.mode", "kubernetes.in_cluster", "api.host", "api.token_file", "storage.state_dir"},
}

# What the meta-kernel adapters (intelligence/actuation/adapters/) do on a Kubernetes API: RBAC verb, API group,
# resource (plural or plural/subresource). Observed against the fake API and derived from the source below.
ADAPTERS_USE = {
    ("get", "apps", "deployments/scale"),
    ("patch", "apps", "deployments/scale"),
    ("get", "serving.knative.dev", "services"),
    ("patch", "serving.knative.dev", "services"),
    ("get", "serving.knative.dev", "revisions"),
    ("patch", "serving.knative.dev", "revisions"),
    ("get", "autoscaling.internal.knative.dev", "podautoscalers"),
    ("patch", "autoscaling.internal.knative.dev", "podautoscalers"),
    ("get", "cluster.open-cluster-management.io", "managedclusters"),
    ("patch", "cluster.open-cluster-management.io", "managedclusters"),
    ("get", "cluster.open-cluster-management.io", "placements"),
    ("patch", "cluster.open-cluster-management.io", "placements"),
    ("get", "cluster.open-cluster-management.io", "addonplacementscores"),
    ("create", "cluster.open-cluster-management.io", "addonplacementscores"),
    ("patch", "cluster.open-cluster-management.io", "addonplacementscores/status"),
    ("get", "work.open-cluster-management.io", "manifestworks"),
    ("list", "work.open-cluster-management.io", "manifestworks"),
    ("create", "work.open-cluster-management.io", "manifestworks"),
    ("patch", "work.open-cluster-management.io", "manifestworks"),
    ("delete", "work.open-cluster-management.io", "manifestworks"),
}


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], *kinds: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] in kinds]


def named(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def workload(overlay: str) -> dict[str, Any]:
    (found,) = of_kind(render(overlay), *WORKLOADS)
    return found


def container(overlay: str) -> dict[str, Any]:
    (found,) = workload(overlay)["spec"]["template"]["spec"]["containers"]
    return dict(found)


def image_env(name: str) -> str:
    """A variable the Containerfile's final stage sets (ENV NAME=value)."""
    match = re.search(rf"\b{name}=(\S+)", (ROOT / "Containerfile").read_text())
    assert match, f"{name} is not set in the Containerfile"
    return match.group(1)


def image_user() -> str:
    match = re.search(r"^USER (\S+)$", (ROOT / "Containerfile").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


# -- schemas ------------------------------------------------------------------------------------------------


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "crds" / f"{kind.lower()}-monitoring-v1.json").read_text()))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay: str) -> None:
    objects = render(overlay)
    assert objects
    for obj in objects:
        what = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["apiVersion"] == "monitoring.coreos.com/v1":
            jsonschema.Draft202012Validator(crd_schema(obj["kind"])).validate(obj)
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{overlay}: {what} (Kubernetes {version}): {exc.message}") from exc


def test_the_crd_schemas_catch_a_typo() -> None:
    (monitor,) = of_kind(render("single"), "ServiceMonitor")
    typo = json.loads(json.dumps(monitor))
    typo["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        jsonschema.Draft202012Validator(crd_schema("ServiceMonitor")).validate(typo)
    (rule,) = of_kind(render("single"), "PrometheusRule")
    late = json.loads(json.dumps(rule))
    late["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(crd_schema("PrometheusRule")).validate(late)


# -- the pods -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_is_hardened_and_writes_only_to_its_volumes(overlay: str) -> None:
    pod = workload(overlay)["spec"]["template"]["spec"]
    uid, gid = image_user().split(":")
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": int(uid),
        "runAsGroup": int(gid),
        "fsGroup": int(gid),
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    main = container(overlay)
    assert main["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert set(main["resources"]["requests"]) == {"cpu", "memory"}
    assert set(main["resources"]["limits"]) == {"cpu", "memory"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert main["args"] == ["--config", f"{CONFIG_MOUNT}/icos.yaml"]
    writable = {mount["mountPath"] for mount in main["volumeMounts"] if not mount.get("readOnly")}
    assert writable == {image_env("ICOS_STORAGE__STATE_DIR"), "/tmp"}


def test_the_workloads_share_one_pod_template_but_for_sharding() -> None:
    """overlays/sharded's StatefulSet repeats overlays/single's pod: they may differ only where sharding does."""
    single, sharded = workload("single")["spec"]["template"], workload("sharded")["spec"]["template"]
    single_main, sharded_main = container("single"), container("sharded")
    assert [env["name"] for env in sharded_main.pop("env")] == [
        "ICOS_ENGINE__SHARD_INDEX",
        "ICOS_ENGINE__SHARD_COUNT",
        "ICOS_STORAGE__DATABASE_URL",
        "ICOS_MLFLOW__TRACKING_URI",
    ]
    assert [m for m in sharded_main.pop("volumeMounts") if m["name"] != "thanos"] == single_main.pop("volumeMounts")
    assert sharded_main == single_main
    pod = {key: value for key, value in single["spec"].items() if key not in ("containers", "volumes")}
    assert {key: value for key, value in sharded["spec"].items() if key not in ("containers", "volumes")} == pod
    assert single["metadata"] == sharded["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_names_and_selectors_resolve(overlay: str) -> None:
    objects = render(overlay)
    for obj in objects:
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']}"
    work = workload(overlay)
    pod = work["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert work["spec"]["selector"]["matchLabels"].items() <= labels.items()
    named(objects, "ServiceAccount", pod["spec"]["serviceAccountName"])
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    for volume in volumes.values():
        if "configMap" in volume:
            named(objects, "ConfigMap", volume["configMap"]["name"])
        if "secret" in volume:
            named(objects, "Secret", volume["secret"]["secretName"])
        if "persistentVolumeClaim" in volume:
            named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    claims = {claim["metadata"]["name"] for claim in work["spec"].get("volumeClaimTemplates", [])}
    for mount in container(overlay)["volumeMounts"]:
        assert mount["name"] in volumes or mount["name"] in claims
    for env in container(overlay).get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in named(objects, "Secret", ref["name"])["data"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"):
        for obj in of_kind(objects, kind):
            spec = obj["spec"]
            selector = spec["selector"] if kind == "Service" else spec.get("selector", spec.get("podSelector"))
            selector = selector.get("matchLabels", selector)
            if kind == "ServiceMonitor":
                (service,) = [s for s in of_kind(objects, "Service") if "clusterIP" not in s["spec"]]
                assert selector.items() <= service["metadata"]["labels"].items()
                ports = {port["name"] for port in service["spec"]["ports"]}
                assert {endpoint["port"] for endpoint in spec["endpoints"]} <= ports
            else:
                assert selector.items() <= labels.items(), f"{kind} {obj['metadata']['name']} selects no pod"


def test_the_sharded_overlay_passes_each_replica_its_shard() -> None:
    sts = workload("sharded")
    env = {item["name"]: item for item in container("sharded")["env"]}
    assert env["ICOS_ENGINE__SHARD_INDEX"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    assert env["ICOS_ENGINE__SHARD_COUNT"]["value"] == str(sts["spec"]["replicas"])
    assert sts["spec"]["replicas"] > 1
    assert (
        sts["spec"]["serviceName"]
        == named(render("sharded"), "Service", sts["spec"]["serviceName"])["metadata"]["name"]
    )
    assert [claim["metadata"]["name"] for claim in sts["spec"]["volumeClaimTemplates"]] == ["state"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_environment_variable_names_a_setting(overlay: str) -> None:
    for item in container(overlay).get("env", []):
        group, key = item["name"].removeprefix("ICOS_").lower().split("__")
        assert item["name"].startswith("ICOS_")
        assert key in type(getattr(Settings(), group)).model_fields


# -- settings -----------------------------------------------------------------------------------------------


def flatten(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from flatten(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def settings_of(overlay: str, tmp_path: Path) -> Settings:
    workload_volumes = workload(overlay)["spec"]["template"]["spec"]["volumes"]
    (config,) = [volume["configMap"]["name"] for volume in workload_volumes if "configMap" in volume]
    path = tmp_path / "icos.yaml"
    path.write_text(named(render(overlay), "ConfigMap", config)["data"]["icos.yaml"])
    return load_settings(path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_shipped_settings_are_the_code_defaults_but_for_what_the_overlay_sets(overlay: str, tmp_path: Path) -> None:
    shipped = dict(flatten(settings_of(overlay, tmp_path).model_dump(mode="json")))
    defaults = dict(flatten(Settings().model_dump(mode="json")))
    assert shipped.keys() == defaults.keys()
    differ = {key for key in defaults if shipped[key] != defaults[key]}
    assert differ == DELIBERATE[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_settings_name_only_mounted_paths(overlay: str, tmp_path: Path) -> None:
    settings = settings_of(overlay, tmp_path)
    assert str(settings.storage.state_dir) == image_env("ICOS_STORAGE__STATE_DIR")
    assert settings.api.host == "0.0.0.0"  # noqa: S104 - a pod's server listens on its interfaces
    files = [settings.api.token_file]
    files += [value for cluster in settings.clusters for value in cluster.auth.model_dump().values()]
    mounted: dict[str, set[str]] = {}
    pod = workload(overlay)["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    for mount in container(overlay)["volumeMounts"]:
        if mount["name"] in secrets:
            mounted[mount["mountPath"]] = set(named(render(overlay), "Secret", secrets[mount["name"]])["data"])
    for path in files:
        if isinstance(path, Path):
            assert path.name in mounted.get(str(path.parent), set()), f"{path} is not mounted from a Secret"


# -- RBAC ---------------------------------------------------------------------------------------------------


def rules_bound(objects: tuple[dict[str, Any], ...] | list[dict[str, Any]], account: tuple[str, str]) -> set[tuple]:
    """(verb, group, resource) the ClusterRoles bound to ``account`` grant; any other RBAC object is an error."""
    roles = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "ClusterRole"}
    assert not [obj for obj in objects if obj["kind"] in ("Role", "RoleBinding")]
    granted: set[tuple] = set()
    for binding in (obj for obj in objects if obj["kind"] == "ClusterRoleBinding"):
        subjects = {(s.get("namespace"), s["name"]) for s in binding["subjects"] if s["kind"] == "ServiceAccount"}
        assert subjects == {account}, f"ClusterRoleBinding {binding['metadata']['name']} binds {subjects}"
        for rule in roles.pop(binding["roleRef"]["name"])["rules"]:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
            granted |= {(v, g, r) for v in rule["verbs"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert not roles, f"ClusterRoles bound to nobody: {sorted(roles)}"
    return granted


def test_the_enact_overlay_grants_exactly_what_the_adapters_use() -> None:
    granted = rules_bound(render("enact"), ACCOUNT)
    assert granted - ADAPTERS_USE == set(), "granted, never used"
    assert ADAPTERS_USE - granted == set(), "used, not granted"
    assert named(render("enact"), "ServiceAccount", ACCOUNT[1])["automountServiceAccountToken"] is True
    assert workload("enact")["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


@pytest.mark.parametrize("overlay", ["single", "sharded"])
def test_no_other_overlay_grants_anything(overlay: str) -> None:
    objects = render(overlay)
    assert not of_kind(objects, "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    assert named(objects, "ServiceAccount", ACCOUNT[1])["automountServiceAccountToken"] is False
    assert workload(overlay)["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_the_fake_kubernetes_api_enforces_what_the_enact_overlay_grants() -> None:
    authorizer = Authorizer.load()
    enforced = {
        (verb, group, resource)
        for rule in authorizer.rules
        for verb in rule.verbs
        for group in rule.groups
        for resource in rule.resources
    }
    assert enforced == rules_bound(render("enact"), ACCOUNT)
    assert authorizer.user == f"system:serviceaccount:{ACCOUNT[0]}:{ACCOUNT[1]}"


_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/[^/]+/(?:namespaces/[^/]+/)?(?P<plural>[^/?]+)(?:/[^/?]+(?:/(?P<sub>[^/?]+))?)?"
)


def test_the_adapters_use_exactly_the_table_against_the_fake_api(tmp_path: Path) -> None:
    """Every method of the meta-kernel, on both Knative paths, against fakes that log every request."""
    with running_fake_kubes("hub", "edge-a", "edge-b", enforce_rbac=False) as fakes:
        hub, edge = fakes["hub"], fakes["edge-a"]
        cart = {"name": "shop-cart", "workload": ("shop", "cart")}
        half_moved = manifest_work("edge-b", **cart)  # a move interrupted after the copy, the copy since edited
        half_moved["spec"]["deleteOption"] = {"propagationPolicy": "Orphan"}
        hub.seed(managed_cluster("edge-a"), managed_cluster("edge-b"))
        hub.seed(manifest_work("edge-a"), manifest_work("edge-a", **cart), half_moved)
        hub.seed({"apiVersion": f"{OCM}/v1beta1", "kind": "Placement", "metadata": {"name": "p", "namespace": "shop"}})
        shop(edge, [("checkout-00001", 100)])
        edge.seed(deployment("web", replicas=2))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fakes)
        spec = KubernetesSpec(
            kubeconfig=kubeconfig, hub_context="hub", cluster_contexts={"edge-a": "edge-a", "edge-b": "edge-b"}
        )
        clock = ManualClock(1_767_225_600.0)
        until = datetime.fromtimestamp(clock.now(), UTC) + timedelta(minutes=15)
        for path in KnativeScalePath:
            kernel = KubeMetaKernel(replace(spec, knative_scale_path=path), sleep=lambda _: None, clock=clock)
            try:
                kernel.set_knative_scale("edge-a", "shop", "checkout", min_scale=3 + len(path.value), max_scale=20)
                kernel.read_knative_scale("edge-a", "shop", "checkout")
                kernel.knative_scale_in_force("edge-a", "shop", "checkout", 3)
                if path is KnativeScalePath.POD_AUTOSCALER:
                    kernel.scale_deployment("edge-a", "shop", "web", 4)
                    kernel.read_deployment_replicas("edge-a", "shop", "web")
                    kernel.publish_placement_scores("icos-headroom", [ClusterScore("edge-a", 40)], until)
                    kernel.workload_placement("shop", "checkout")
                    kernel.move_workload("shop", "checkout", "edge-a", "edge-b")  # created in the destination
                    kernel.move_workload("shop", "cart", "edge-a", "edge-b")  # the destination's copy aligned
                    kernel.taint_cluster("edge-b", "icos.eu/saturated", "true", "PreferNoSelect")
                    kernel.cluster_taints("edge-b")
                    kernel.retarget_placement("shop", "p", "edge-b")
            finally:
                kernel.close()
        used = set()
        for fake in fakes.values():
            for logged in fake.requests:
                match = _PATH.match(logged.path)
                assert match, logged
                assert logged.verb, logged
                plural = match["plural"] + (f"/{match['sub']}" if match["sub"] else "")
                used.add((logged.verb, match["group"], plural))
    assert used == ADAPTERS_USE


_CLIENT_CALL = re.compile(r"^(read|get|list|create|patch|replace|delete)_(namespaced_|cluster_)?\w+$")
_VERBS = {"read": "get", "get": "get", "list": "list", "create": "create", "patch": "patch", "replace": "update"} | {
    "delete": "delete"
}


def test_the_adapters_source_calls_the_client_for_exactly_these_verbs() -> None:
    """Every call of the official client in the adapters' source (``….custom.X(...)``, ``….apps.X(...)``)."""
    verbs, subresources = set(), set()
    for module in (ROOT / "intelligence" / "actuation" / "adapters").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            method = node.func.attr
            if not (receiver.endswith(("custom", ".apps")) and _CLIENT_CALL.match(method)):
                continue
            verbs.add(_VERBS[method.split("_", 1)[0]])
            for sub in ("status", "scale"):
                if method.endswith(f"_{sub}"):
                    subresources.add(sub)
    assert verbs == {verb for verb, _, _ in ADAPTERS_USE}
    assert subresources == {resource.split("/")[1] for _, _, resource in ADAPTERS_USE if "/" in resource}


# -- alert rules --------------------------------------------------------------------------------------------


def exported_metrics() -> set[str]:
    """The series names the service serves on /metrics (api/metrics.py, collectors/telemetry.py)."""
    from api.metrics import ServiceMetrics
    from collectors.telemetry import CollectorTelemetry

    facade = SimpleNamespace(
        forecasts=list,
        latest_scores=list,
        live_accuracy=lambda: SimpleNamespace(relative_mae=0.0, coverage=0.0),
        engine_steps=lambda: 0,
        cluster_health=list,
    )
    names = set()
    families = [*ServiceMetrics(facade).collect(), *CollectorTelemetry().registry.collect()]  # type: ignore[arg-type]
    for family in families:
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def rule_groups() -> list[dict[str, Any]]:
    (rule,) = of_kind(render("single"), "PrometheusRule")
    return list(rule["spec"]["groups"])


def test_the_alert_rules_name_only_exported_metrics() -> None:
    exported = exported_metrics()
    assert {"icos_engine_steps", "icos_cluster_up", "icos_collector_errors_total"} <= exported
    for group in rule_groups():
        for rule in group["rules"]:
            named_metrics = set(re.findall(r"\bicos_[a-z_]+\b", rule["expr"]))
            assert named_metrics <= exported, f"{rule['alert']}: {named_metrics - exported} is not exported"
    names = [group["name"] for group in rule_groups()]
    assert names == ["icos-intelligence.health", "icos-intelligence.forecasts"]  # the place for forecast alerts


# (alert, input series as promtool writes them, evaluation time, labels of the alert beyond the rule's own)
ALERT_CASES: list[tuple[str, list[tuple[str, str]], str, list[dict[str, str]]]] = [
    (
        "IcosIntelligenceDown",
        [('up{job="icos-intelligence", instance="a"}', "0x15")],
        "11m",
        [{"instance": "a", "job": "icos-intelligence"}],
    ),
    ("IcosIntelligenceDown", [('up{job="icos-intelligence", instance="a"}', "1x15")], "11m", []),
    ("IcosIntelligenceEngineStalled", [('icos_engine_steps{instance="a"}', "7x20")], "16m", [{"instance": "a"}]),
    ("IcosIntelligenceEngineStalled", [('icos_engine_steps{instance="a"}', "0+1x20")], "16m", []),
    (
        "IcosIntelligenceClusterDown",
        [
            ('icos_cluster_up{cluster="edge-1", state="down", instance="a"}', "0x10"),
            ('icos_cluster_up{cluster="edge-1", state="down", instance="b"}', "0x10"),
            ('icos_cluster_up{cluster="cloud-1", state="up", instance="a"}', "1x10"),
        ],
        "6m",
        [{"cluster": "edge-1"}],
    ),
    (
        "IcosIntelligenceClusterStale",
        [('icos_cluster_up{cluster="fog-1", state="stale", instance="a"}', "0x20")],
        "16m",
        [{"cluster": "fog-1"}],
    ),
    (
        "IcosIntelligenceCollectorErrors",
        [('icos_collector_errors_total{cluster="fog-1", signal="requests", kind="QueryRejected"}', "0+1x40")],
        "31m",
        [{"cluster": "fog-1", "signal": "requests", "kind": "QueryRejected"}],
    ),
]


def expand(template: str, labels: dict[str, str]) -> str:
    """The rules' templates use only ``{{ $labels.NAME }}``."""
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def test_the_alert_rules_load_and_fire_in_promtool(tmp_path: Path) -> None:
    promtool = find_binary("promtool")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    checked = subprocess.run([promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = {rule["alert"]: rule for group in rule_groups() for rule in group["rules"]}
    assert {case[0] for case in ALERT_CASES} == set(rules)  # every alert has a test
    tests = []
    for alert, series, at, fired in ALERT_CASES:
        rule = rules[alert]
        expected = [
            {
                "exp_labels": {**rule["labels"], **labels},
                "exp_annotations": {k: expand(v, labels) for k, v in rule["annotations"].items()},
            }
            for labels in fired
        ]
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}],
            }
        )
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    tested = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
