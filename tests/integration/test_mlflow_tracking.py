"""Model tracking against the real MLflow server of tests/stack.py."""

import pytest
from mlflow.tracking import MlflowClient

from models.tracking import MlflowTracker
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def test_params_and_live_metrics_reach_the_tracking_server(test_stack):
    tracker = MlflowTracker(
        test_stack.mlflow_url, "it-tracking", "run-1", {"requests.forecaster": "seasonal_holt"}, retry_seconds=0.2
    )
    tracker.start()
    tracker.log_metrics({"mae_1step": 1.5, "coverage_1step": 0.9, "ignored": float("nan")}, step=1)
    tracker.log_metrics({"mae_1step": 1.2}, step=2)
    run_id = wait_for(
        lambda: tracker.health().state == "ok" and tracker.health().queued == 0 and tracker.health().run_id, "delivery"
    )
    tracker.close()
    run = MlflowClient(test_stack.mlflow_url).get_run(run_id)
    assert run.data.params["requests.forecaster"] == "seasonal_holt"
    history = MlflowClient(test_stack.mlflow_url).get_metric_history(run_id, "mae_1step")
    assert [(m.step, m.value) for m in history] == [(1, 1.5), (2, 1.2)]
    assert "ignored" not in run.data.metrics
    assert run.info.status == "FINISHED"


def test_an_unreachable_server_degrades_and_keeps_the_metrics_queued():
    tracker = MlflowTracker("http://127.0.0.1:9", "it-tracking", "run-2", {}, timeout_seconds=1, retry_seconds=0.2)
    tracker.start()
    tracker.log_metrics({"mae_1step": 1.0}, step=1)
    health = wait_for(lambda: tracker.health() if tracker.health().state == "degraded" else None, "degraded")
    assert health.queued == 1
    assert "127.0.0.1:9" in (health.tracking_uri or "")
    tracker.close(timeout=5)


def test_checkpoints_are_uploaded_to_the_services_run(test_stack, tmp_path):
    from intelligence.runtime.wiring import build_service
    from intelligence.settings import load_settings
    from intelligence.vocabulary import ManualClock

    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.tracking_uri": test_stack.mlflow_url,
            "mlflow.checkpoint_artifact_every": 1,
            "mlflow.follow_champions": False,
        },
    )
    clock = ManualClock(1_767_249_000.0)
    svc = build_service(settings, clock=clock)
    svc.tracker.retry_seconds = 0.2
    svc.tracker.start()
    try:
        svc.engine.step(clock.now())
        svc.checkpoint(wait=True)
        run_id = wait_for(lambda: svc.tracker.health().queued == 0 and svc.tracker.health().run_id, "the upload")
        files = [f.path for f in MlflowClient(test_stack.mlflow_url).list_artifacts(run_id, "checkpoints")]
        assert files == ["checkpoints/bank-shard0.pkl"]
        assert not (svc.checkpoints.path.parent / "upload" / "1").exists()  # the private copy is gone
    finally:
        svc.stop()


def test_a_replica_without_local_state_resumes_from_the_checkpoint_in_mlflow(test_stack, tmp_path):
    import uuid

    from intelligence.runtime.wiring import build_service
    from intelligence.settings import load_settings
    from intelligence.vocabulary import ManualClock

    experiment = f"it-resume-{uuid.uuid4().hex[:8]}"

    def settings(state: str):
        return load_settings(
            None,
            **{
                "storage.state_dir": str(tmp_path / state),
                "mlflow.tracking_uri": test_stack.mlflow_url,
                "mlflow.experiment": experiment,
                "mlflow.checkpoint_artifact_every": 1,
                "mlflow.follow_champions": False,
            },
        )

    clock = ManualClock(1_767_249_000.0)
    first = build_service(settings("node-a"), clock=clock)
    first.tracker.retry_seconds = 0.2
    first.tracker.start()
    first.engine.step(clock.now())
    key = first.forecasts.query(signal="requests")[0].key
    before = first.engine.bank.forecast(key, 12, 300.0)
    first.stop()  # the final checkpoint is uploaded before the run ends

    second = build_service(settings("node-b"), clock=clock)  # a new node: empty state directory
    try:
        assert len(second.engine.bank) == 20
        assert second.engine.bank.forecast(key, 12, 300.0).point == before.point
        # downloaded beside the checkpoint (one filesystem: a rename, never a copy across devices), then tidied
        assert not list(second.checkpoints.path.parent.glob(".download-*"))
    finally:
        second.stop()
