"""An MLflow server stopped mid-run: the engine goes on, health says degraded, the queued logs arrive later."""

import pytest
from mlflow.tracking import MlflowClient

from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests import stack
from tests.polling import wait_for

pytestmark = pytest.mark.integration

START = 1_767_249_000.0


def test_the_engine_goes_on_while_mlflow_is_down_and_the_queue_drains_when_it_returns(tmp_path):
    server = stack.start_mlflow(tmp_path / "mlflow")
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.tracking_uri": server["url"],
            "mlflow.log_every_steps": 1,
            "mlflow.timeout_seconds": 2,
            "mlflow.follow_champions": False,
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    svc.tracker.retry_seconds = 0.2
    svc.tracker.start()

    def step() -> None:
        svc.engine.step(clock.now())
        clock.advance(settings.simulation.step_seconds)

    try:
        step()
        run_id = wait_for(lambda: svc.tracker.health().queued == 0 and svc.tracker.health().run_id, "first delivery")
        stack.stop_group(server["pid"])
        for _ in range(3):
            step()  # the engine does not wait for MLflow
        assert svc.engine.status.steps == 4
        health = wait_for(
            lambda: svc.tracker.health() if svc.tracker.health().state == "degraded" else None, "degraded"
        )
        assert health.queued >= 1
        server = stack.start_mlflow(tmp_path / "mlflow", port=int(server["url"].rsplit(":", 1)[1]), fresh=False)
        wait_for(lambda: svc.tracker.health().state == "ok" and svc.tracker.health().queued == 0, "the queue to drain")
        history = MlflowClient(server["url"]).get_metric_history(run_id, "series")
        assert sorted(m.step for m in history) == [1, 2, 3, 4]
    finally:
        svc.stop()
        stack.stop_group(server["pid"])
