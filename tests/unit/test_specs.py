"""The frozen specs the components receive are built from the settings, with the same defaults."""

from __future__ import annotations

from dataclasses import fields

from intelligence.actuation.adapters.spec import KnativeScalePath, KubernetesSpec
from intelligence.decisions.specs import KnativeFloorSpec, OverrideSpec, PolicySpec
from intelligence.runtime.specs import kubernetes_spec, policy_spec
from intelligence.settings import KubernetesSettings, PolicySettings, load_settings
from intelligence.vocabulary import Mode, Tier, WorkloadKind


def test_the_settings_defaults_build_the_specs_defaults():
    settings = load_settings(None)
    assert policy_spec(settings.policy) == PolicySpec()
    assert kubernetes_spec(settings.kubernetes) == KubernetesSpec()


def test_every_spec_field_is_a_settings_key():
    assert {f.name for f in fields(KnativeFloorSpec)} == set(PolicySettings().knative.model_dump())
    assert {f.name for f in fields(KubernetesSpec)} == set(KubernetesSettings.model_fields)


def test_overrides_and_paths_reach_the_spec_typed():
    settings = load_settings(
        None,
        **{
            "policy.mode": "approve",
            "policy.overrides": [
                {"namespace": "iot", "kind": "deployment", "tiers": ["edge"], "knative": {"max_scale": 7}}
            ],
            "kubernetes.knative_scale_path": "service-template",
        },
    )
    policy = policy_spec(settings.policy)
    assert policy.mode is Mode.APPROVE
    assert policy.overrides == (
        OverrideSpec(namespace="iot", kind=WorkloadKind.DEPLOYMENT, tiers=(Tier.EDGE,), knative={"max_scale": 7}),
    )
    assert kubernetes_spec(settings.kubernetes).knative_scale_path is KnativeScalePath.SERVICE_TEMPLATE
