"""The service pointed at the three real Prometheus servers and the real MLflow server."""

import time

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_engine_learns_from_prometheus_and_logs_to_mlflow(test_stack, tmp_path):
    clusters = [
        {"name": c, "url": u, "tier": t}
        for (c, u), t in zip(test_stack.prometheus.items(), ("cloud", "fog", "edge"), strict=True)
    ]
    settings = load_settings(
        None,
        clusters=clusters,
        **{
            "collection.backfill_hours": 36,
            "storage.state_dir": str(tmp_path),
            "mlflow.tracking_uri": test_stack.mlflow_url,
            "mlflow.experiment": "e2e-prometheus",
            "mlflow.log_every_steps": 1,
        },
    )
    end = test_stack.data["end"]
    clock = ManualClock(end - 3600)
    svc = build_service(settings, clock=clock)
    svc.tracker.start()
    try:
        while clock.now() <= end:
            svc.engine.step(clock.now())
            clock.advance(60)
        with TestClient(create_app(settings, service=svc)) as client:
            forecasts = client.get("/v1/forecasts").json()
            assert {f["series"]["cluster"] for f in forecasts} == {"cloud-1", "fog-1", "edge-1"}
            assert len(forecasts) == 7 + 7 + 6  # cpu and memory of 7 workloads, requests of 6 Knative services
            assert client.get("/healthz").json()["clusters"][0]["state"] == "up"
            # pulses come and go: over the hour some were made, whether or not one is running at its end
            assert client.get("/v1/recommendations?all=true").json()
            clusters = {c["cluster"]: c for c in client.get("/v1/clusters").json()}
            assert clusters["edge-1"]["tier"] == "edge"
            assert clusters["edge-1"]["url"] == test_stack.prometheus["edge-1"]
            metrics = client.get("/metrics").text
            assert 'icos_collector_samples_total{cluster="edge-1",signal="memory"}' in metrics
            assert 'icos_collector_pulls_total{cluster="cloud-1",outcome="ok"}' in metrics
            assert "icos_collector_pull_seconds_bucket" in metrics
        deadline = time.monotonic() + 60
        while (svc.tracker.health().run_id is None or svc.tracker.health().queued) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the tracker's thread, bounded by the deadline
        run_id = svc.tracker.health().run_id
    finally:
        svc.stop()
    run = MlflowClient(test_stack.mlflow_url).get_run(run_id)
    assert run.data.params["requests.forecaster"] == "seasonal_ar"
    assert 0.5 < run.data.metrics["coverage_1step"] <= 1.0
