"""One-off exchanges with MLflow outside the service's run: a finished run's record, a checkpoint's download."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from models.tracking.client import new_client, store_lock


def log_run(
    tracking_uri: str, experiment: str, run_name: str, params: dict[str, Any], metrics: dict[str, float]
) -> str:
    """One finished run (e.g. a backtest) with its params and metrics; returns its id."""
    client = new_client(tracking_uri)
    from mlflow.entities import Metric, Param

    with store_lock(tracking_uri):
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
        run = client.create_run(exp_id, run_name=run_name)
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v == v],
            params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())],
        )
        client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def fetch_checkpoint(tracking_uri: str, experiment: str, name: str, destination: Path, runs: int = 20) -> str | None:
    """Download the newest ``checkpoints/<name>`` uploaded by a service run of ``experiment``; returns its run id.

    For a replica whose local state is gone (a new node, no volume): it resumes from MLflow.
    """
    client = new_client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=runs):
        if any(f.path == f"checkpoints/{name}" for f in client.list_artifacts(run.info.run_id, "checkpoints")):
            destination.parent.mkdir(parents=True, exist_ok=True)
            # downloaded next to its destination: a rename within one filesystem (the state volume), never
            # across devices (a /tmp of another filesystem would fail with EXDEV)
            with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".download-") as tmp:
                got = Path(client.download_artifacts(run.info.run_id, f"checkpoints/{name}", tmp))
                got.replace(destination)
            return str(run.info.run_id)
    return None
