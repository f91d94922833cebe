"""The model registry against the real MLflow server of tests/stack.py and the embedded SQLite store."""

import uuid

import pytest
from mlflow.exceptions import MlflowException

from models.tracking import ModelRegistry, RegistryError

pytestmark = pytest.mark.integration

SPEC_A = {"forecaster": "seasonal_ar", "detector": "record_ratio", "forecaster_params": {"p": 12}}
SPEC_B = {"forecaster": "seasonal_ar", "detector": "record_ratio", "forecaster_params": {"p": 16}}
SPEC_C = {"forecaster": "ar_rls", "detector": "record_ratio", "forecaster_params": {}}


@pytest.fixture(params=["server", "embedded"])
def registry(request, tmp_path):
    if request.param == "server":
        uri = request.getfixturevalue("test_stack").mlflow_url
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return ModelRegistry(uri, experiment="it-registry")


def test_first_start_registers_the_configured_kinds_as_champion(registry):
    name = f"icos-requests-{uuid.uuid4().hex[:8]}"
    first = registry.ensure_champion(name, SPEC_A)
    assert first.version == 1
    assert first.aliases == ("champion",)
    again = registry.ensure_champion(name, SPEC_B)  # a champion exists: it wins over the settings
    assert again.version == 1
    assert registry.load_spec(name) == SPEC_A  # loaded by models:/name@champion
    assert name in registry.names()


def test_promote_a_better_challenger_refuse_a_worse_one_and_roll_back(registry):
    name = f"icos-cpu-{uuid.uuid4().hex[:8]}"
    registry.register(name, SPEC_A, {"mase": 1.00, "coverage": 0.9}, alias="champion")
    worse = registry.register(name, SPEC_C, {"mase": 0.995}, alias="challenger")
    better = registry.register(name, SPEC_B, {"mase": 0.90})
    with pytest.raises(RegistryError, match=r"does not beat champion version 1 .* by 2%"):
        registry.promote(name, worse.version)
    assert registry.by_alias(name, "champion").version == 1
    promoted = registry.promote(name, better.version)
    assert promoted.aliases == ("champion",)
    assert registry.load_spec(name) == SPEC_B
    versions = {v.version: v for v in registry.versions(name)}
    assert versions[2].aliases == ("challenger",)
    assert versions[3].metrics["mase"] == pytest.approx(0.90)
    rolled = registry.rollback(name)
    assert rolled.version == 1
    assert registry.load_spec(name) == SPEC_A
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback(name)


def test_unknown_models_and_versions_are_clear_errors(registry):
    name = f"icos-none-{uuid.uuid4().hex[:8]}"
    assert registry.by_alias(name, "champion") is None
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback(name)
    registry.register(name, SPEC_A, {"mase": 1.0}, alias="champion")
    # an unknown version is still mlflow's own not-found error (the API answers 404 on its code), not a RegistryError
    with pytest.raises(MlflowException, match=r"version=99\) not found") as raised:
        registry.promote(name, 99)
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert registry.by_alias(name, "champion").version == 1
