"""The embedded default end to end: simulated continuum -> models -> decider -> stores -> API."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from collectors.simulated import ANOMALY
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def service(embedded_settings):
    clock = ManualClock(START)
    svc = build_service(embedded_settings, clock=clock)
    yield svc, clock
    svc.stop()


def test_forecasts_anomalies_and_recommendations_are_served(service):
    svc, clock = service
    drive(svc, clock, 40)  # 48 h of history, then 3 h 20 min live
    with TestClient(create_app(svc.settings, service=svc)) as client:
        health = client.get("/healthz").json()
        assert health["status"] == "ok"
        assert health["embedded"] is True
        assert {c["cluster"]: c["state"] for c in health["clusters"]} == {
            "cloud-1": "up",
            "fog-1": "up",
            "edge-1": "up",
        }
        assert health["engine"]["series"] == 20

        forecasts = client.get("/v1/forecasts").json()
        assert len(forecasts) == 20
        for fc in forecasts:
            assert len(fc["points"]) == 12
            assert fc["interval"] == [0.05, 0.95]
            assert all(p["lower"] <= p["value"] <= p["upper"] for p in fc["points"])
        one = client.get("/v1/forecasts", params={"cluster": "edge-1", "signal": "requests", "workload": "ingest"})
        assert [f["series"]["id"] for f in one.json()] == ['edge-1/requests{namespace="iot",workload="ingest"}']

        anomalies = client.get("/v1/anomalies", params={"cluster": ANOMALY.cluster, "signal": "requests"}).json()
        flood = [a for a in anomalies if a["series"]["labels"]["workload"] == ANOMALY.workload]
        start = START + ANOMALY.offset_seconds
        during = [a for a in flood if start <= datetime.fromisoformat(a["timestamp"]).timestamp() < start + 1800]
        assert during, "the injected request flood was not flagged"
        assert during[-1]["observed"] > during[-1]["upper"]  # the first sample of the flood: far above the band

        recs = client.get("/v1/recommendations").json()
        assert recs, "no recommendation after 40 steps"
        frontend = [r for r in recs if r["target"]["workload"] == "frontend"]
        assert frontend[0]["kind"] == "scale-up"
        assert frontend[0]["params"]["min_scale"] >= 5  # the morning ramp towards ~160 requests/s
        assert frontend[0]["explanation"]["rule"] == "knative.predictive-min-scale"
        assert "peak_q0.95" in frontend[0]["explanation"]["inputs"]
        assert {r["target"]["workload"] for r in recs} <= {
            "frontend",
            "checkout",
            "transcode",
            "traffic-api",
            "ingest",
            "sensor-gateway",
        }  # Knative services only
        history = client.get("/v1/recommendations", params={"all": True}).json()
        assert len(history) >= len(recs)

        metrics = client.get("/metrics").text
        assert (
            'icos_forecast{cluster="edge-1",horizon="1",namespace="iot",quantile="0.95",signal="requests",' in metrics
        )
        assert "icos_anomaly_score{" in metrics
        assert "icos_forecast_interval_coverage" in metrics


def test_restart_resumes_from_the_checkpoint(embedded_settings):
    clock = ManualClock(START)
    svc = build_service(embedded_settings, clock=clock)
    drive(svc, clock, 5)
    before = svc.forecasts.query(cluster="cloud-1", signal="requests", workload="frontend")[0]
    svc.stop()
    again = build_service(embedded_settings, clock=ManualClock(clock.now()))
    assert len(again.engine.bank) == 20
    restored = again.engine.bank.forecast(before.key, 12, 300.0)
    assert restored is not None
    assert restored.point == before.point
    assert again.engine.actuator.published == svc.engine.actuator.published, "what was published comes back"
    again.stop()


def test_a_restart_continues_with_the_accuracy_of_an_uninterrupted_run(tmp_path):
    def settings(name: str):
        return load_settings(None, **{"storage.state_dir": str(tmp_path / name), "mlflow.enabled": False})

    clock = ManualClock(START)
    straight = build_service(settings("straight"), clock=clock)
    drive(straight, clock, 24)
    expected = {fc.key: fc.point for fc in straight.forecasts.query()}
    accuracy = straight.engine.bank.accuracy()
    straight.stop()

    clock = ManualClock(START)
    first = build_service(settings("restarted"), clock=clock)
    drive(first, clock, 12)
    first.stop()  # final checkpoint
    second = build_service(settings("restarted"), clock=clock)
    drive(second, clock, 12)
    assert {fc.key: fc.point for fc in second.forecasts.query()} == expected  # not a cold start: the same models
    resumed = second.engine.bank.accuracy()
    assert resumed.scored == accuracy.scored
    assert resumed.relative_mae == pytest.approx(accuracy.relative_mae, rel=1e-9)
    second.stop()
