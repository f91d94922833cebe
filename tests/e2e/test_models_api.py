"""``/v1/models`` on the embedded MLflow store: list, promote (authenticated, with evidence), roll back."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock

pytestmark = pytest.mark.e2e

SPEC = {"forecaster": "seasonal_ar", "detector": "record_ratio", "forecaster_params": {}, "detector_params": {}}
TOKEN = "s3cret-token"


@pytest.fixture
def client(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    settings = load_settings(None, **{"storage.state_dir": str(tmp_path / "state"), "api.token_file": str(token)})
    svc = build_service(settings, clock=ManualClock(1_767_225_600.0), with_tracker=False)
    registry = svc.model_registry
    registry.register("icos-requests", SPEC, {"mase": 1.0, "coverage": 0.9}, alias="champion")
    registry.register("icos-requests", {**SPEC, "forecaster": "ar_rls"}, {"mase": 0.99}, alias="challenger")
    registry.register("icos-requests", {**SPEC, "forecaster_params": {"p": 16}}, {"mase": 0.85})
    with TestClient(create_app(settings, service=svc)) as client:
        yield client
    svc.stop()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_models_lists_kinds_versions_aliases_and_accuracy(client):
    body = client.get("/v1/models").json()
    assert "seasonal_ar" in body["forecaster_kinds"]
    assert "record_ratio" in body["detector_kinds"]
    [model] = body["registered"]
    assert model["name"] == "icos-requests"
    assert model["champion"] == 1
    assert [v["aliases"] for v in model["versions"]] == [["champion"], ["challenger"], []]
    assert model["versions"][2]["metrics"]["mase"] == pytest.approx(0.85)
    assert model["versions"][0]["spec"] == SPEC


def test_promote_and_rollback_need_the_token(client):
    assert client.post("/v1/models/icos-requests/promote", json={"version": 3}).status_code == 401
    assert client.post("/v1/models/icos-requests/promote", json={"version": 3}, headers=auth("nope")).status_code == 401
    assert client.post("/v1/models/icos-requests/rollback", headers=auth("nope")).status_code == 401


def test_a_worse_challenger_is_refused_with_the_evidence_a_better_one_promoted_then_rolled_back(client):
    refused = client.post("/v1/models/icos-requests/promote", json={"version": 2}, headers=auth())
    assert refused.status_code == 409
    assert "version 2 (mase 0.99) does not beat champion version 1 (mase 1) by 2%" in refused.json()["detail"]
    promoted = client.post("/v1/models/icos-requests/promote", json={"version": 3}, headers=auth())
    assert promoted.status_code == 200
    assert promoted.json()["aliases"] == ["champion"]
    assert client.get("/v1/models").json()["registered"][0]["champion"] == 3
    rolled = client.post("/v1/models/icos-requests/rollback", headers=auth())
    assert rolled.status_code == 200
    assert rolled.json()["version"] == 1
    assert client.post("/v1/models/nothing/rollback", headers=auth()).status_code == 409


def test_without_a_token_file_mutations_are_disabled(tmp_path):
    settings = load_settings(None, **{"storage.state_dir": str(tmp_path / "state")})
    svc = build_service(settings, clock=ManualClock(1_767_225_600.0), with_tracker=False)
    with TestClient(create_app(settings, service=svc)) as client:
        response = client.post("/v1/models/icos-requests/rollback")
    svc.stop()
    assert response.status_code == 403
    assert "api.token_file" in response.json()["detail"]


def test_a_backtest_registers_its_models_with_the_measured_accuracy(tmp_path):
    import csv

    import numpy as np
    from typer.testing import CliRunner

    from api.cli import app
    from models.tracking import ModelRegistry

    data = tmp_path / "in.csv"
    rng = np.random.default_rng(1)
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for i in range(600):
            w.writerow([1_767_225_600 + 300 * i, 50 + 20 * np.sin(2 * np.pi * i / 288) + rng.normal()])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["backtest", "-i", str(data), "-o", str(tmp_path / "out.csv"), "--register", "icos-requests"]
    result = CliRunner().invoke(app, [*args, "--alias", "challenger", "--mlflow-uri", uri])
    assert result.exit_code == 0, result.output
    assert "registered icos-requests version 1 as challenger" in result.output
    version = ModelRegistry(uri).by_alias("icos-requests", "challenger")
    assert version.spec["forecaster"] == "seasonal_ar"
    assert version.spec["forecaster_params"]["step_seconds"] == 300.0
    assert 0 < version.metrics["mase"] < 1.5
    assert 0.5 < version.metrics["coverage"] <= 1.0


def test_a_backtest_with_labels_logs_precision_and_recall_as_a_run(tmp_path):
    import csv

    import numpy as np
    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from api.cli import app

    data, labels = tmp_path / "in.csv", tmp_path / "labels.csv"
    rng = np.random.default_rng(2)
    start = 1_767_225_600
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for i in range(800):
            w.writerow(
                [start + 300 * i, 50 + 20 * np.sin(2 * np.pi * i / 288) + rng.normal() + (80 if i == 600 else 0)]
            )
    labels.write_text(f"timestamp\n{start + 300 * 600}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["backtest", "-i", str(data), "-o", str(tmp_path / "out.csv"), "--labels", str(labels)]
    result = CliRunner().invoke(app, [*args, "--mlflow-uri", uri])
    assert result.exit_code == 0, result.output
    assert "recall 1.00" in result.output
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("icos-backtests/seasonal_ar+record_ratio")
    [run] = client.search_runs([exp.experiment_id])
    assert run.data.metrics["recall"] == 1.0
    assert 0.0 < run.data.metrics["precision"] <= 1.0
    assert run.data.params["forecaster"] == "seasonal_ar"
    assert "mase" in run.data.metrics
