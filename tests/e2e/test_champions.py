"""The service runs each signal's champion from the MLflow registry, and follows a promotion without a restart."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive

pytestmark = pytest.mark.e2e

START = 1_767_249_000.0  # 2026-01-01T06:30:00Z


def settings_for(tmp_path):
    return load_settings(None, **{"storage.state_dir": str(tmp_path / "state"), "mlflow.log_every_steps": 1000})


def models_of(svc, signal: str) -> set[str]:
    return {fc.model for fc in svc.forecasts.query(signal=signal)}


def test_first_start_registers_champions_then_a_promotion_is_followed_and_survives_a_restart(tmp_path):
    settings = settings_for(tmp_path)
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock, with_tracker=False)
    try:
        svc.watcher.poll_once()  # what the watcher thread does every registry_poll_seconds
        assert svc.watcher.state == "ok"
        assert svc.models.apply() == ["cpu", "memory", "requests"]  # the configured kinds became champions
        registry = svc.model_registry
        champion = registry.by_alias("icos-requests", "champion")
        assert champion.version == 1
        assert champion.spec["forecaster"] == "seasonal_ar"
        drive(svc, clock, 3)
        assert models_of(svc, "requests") == {"seasonal_ar"}

        better = registry.register("icos-requests", {**champion.spec, "forecaster": "ar_rls"}, {"mase": 0.8})
        registry.promote("icos-requests", better.version)
        svc.watcher.poll_once()
        assert svc.models.apply() == ["requests"]
        assert svc.forecasts.query(signal="requests") == []  # its series restart on the new model
        drive(svc, clock, 3)
        assert models_of(svc, "requests") == {"ar_rls"}
        assert models_of(svc, "cpu") == {"seasonal_ar"}  # other signals untouched
    finally:
        svc.stop()

    again = build_service(settings, clock=clock, with_tracker=False)  # the checkpoint matches the champions in use
    try:
        assert again.active["requests"]["version"] == 2
        drive(again, clock, 1)
        assert models_of(again, "requests") == {"ar_rls"}
    finally:
        again.stop()


def test_a_registry_that_cannot_be_reached_keeps_the_models_running(tmp_path):
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.tracking_uri": "http://127.0.0.1:9",  # nothing listens there
            "mlflow.timeout_seconds": 1,
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock, with_tracker=False)
    try:
        svc.watcher.poll_once()
        assert svc.watcher.state == "degraded"
        assert "127.0.0.1:9" in svc.watcher.registry.tracking_uri
        assert svc.models.apply() == []
        drive(svc, clock, 2)
        assert models_of(svc, "requests") == {"seasonal_ar"}
        with TestClient(create_app(settings, service=svc)) as client:
            health = client.get("/healthz").json()
        assert health["status"] == "degraded"
        assert health["model_registry"]["state"] == "degraded"
        assert health["champions"] == {}
    finally:
        svc.stop()


def test_a_better_challenger_runs_in_shadow_and_is_promoted_keeping_what_it_learnt(tmp_path):
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "models.forecaster_params": {"max_change": 0.0},  # a champion that can only repeat the last value
            "mlflow.challenger_window_samples": 200,
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock, with_tracker=False)
    try:
        svc.watcher.poll_once()
        svc.models.apply()
        registry = svc.model_registry
        spec = registry.by_alias("icos-requests", "champion").spec
        better = {**spec, "forecaster_params": {**spec["forecaster_params"], "max_change": 5.0}}
        challenger = registry.register("icos-requests", better, alias="challenger")
        svc.watcher.poll_once()
        svc.models.apply()
        assert svc.engine.shadow_signals == {"requests"}

        drive(svc, clock, 1)  # two days of history: both the champion and the challenger in shadow learn them
        assert svc.engine.shadow.accuracy("requests").scored >= 200
        svc.watcher.poll_once()  # the watcher carries out the promotion the engine asked for
        promoted = registry.by_alias("icos-requests", "champion")
        assert promoted.version == challenger.version
        assert promoted.metrics["live_relative_mae"] < registry.get("icos-requests", 1).metrics["live_relative_mae"]
        evidence = registry._client().get_model_version("icos-requests", str(promoted.version)).tags["icos.promotion"]
        assert "live_relative_mae" in evidence

        learnt = svc.engine.shadow.accuracy("requests").scored
        assert svc.models.apply() == ["requests"]
        assert svc.engine.bank.accuracy("requests").scored == learnt  # it keeps the state it learnt in shadow
        assert svc.engine.shadow_signals == frozenset()
        drive(svc, clock, 1)
        assert {fc.model for fc in svc.forecasts.query(signal="requests")} == {"seasonal_ar"}
    finally:
        svc.stop()
