"""The service's own MLflow run: params of the model kinds, live accuracy as metrics, checkpoints as artifacts.

Logging never blocks the engine: calls enqueue, a worker thread delivers. When the
tracking server is down or slow, what could not be logged stays queued (bounded)
and :meth:`MlflowTracker.health` says so; it is delivered once the server is back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.tracking.client import new_client, store_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrackerHealth:
    """What the tracker can say about its run, for the service's health endpoint."""

    state: str  # "starting", "ok", "degraded", "disabled"
    detail: str = ""
    queued: int = 0
    run_id: str | None = None
    tracking_uri: str | None = None


@dataclass(frozen=True, slots=True)
class _Metrics:
    values: dict[str, float]
    step: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class _Artifact:
    path: Path  # a private copy, deleted once uploaded
    artifact_path: str


class MlflowTracker:
    """One MLflow run per service start: params of the model kinds, live accuracy as metrics."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str] | None = None,
        timeout_seconds: float = 10.0,
        max_queue: int = 10_000,
        retry_seconds: float = 5.0,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.params = params
        self.tags = tags or {}
        self.timeout_seconds = timeout_seconds
        self.retry_seconds = retry_seconds
        self._queue: queue.Queue[_Metrics | _Artifact] = queue.Queue(maxsize=max_queue)
        self._pending: list[_Metrics | _Artifact] = []
        self._stop = threading.Event()
        self._state = "starting"
        self._detail = ""
        self._run_id: str | None = None
        self._thread = threading.Thread(target=self._work, name="mlflow-tracker", daemon=True)

    # -- engine side (never blocks) ---------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        clean = {k: float(v) for k, v in values.items() if v == v}  # NaN is not logged
        try:
            self._queue.put_nowait(_Metrics(clean, step, int(time.time() * 1000)))
        except queue.Full:
            log.warning("MLflow queue full at %s: dropping metrics of step %d", self.tracking_uri, step)

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        """Upload ``path`` (a copy the tracker may delete) to the run; queued like metrics."""
        try:
            self._queue.put_nowait(_Artifact(path, artifact_path))
        except queue.Full:
            log.warning("MLflow queue full at %s: not uploading %s", self.tracking_uri, path)
            path.unlink(missing_ok=True)

    def health(self) -> TrackerHealth:
        return TrackerHealth(
            self._state, self._detail, self._queue.qsize() + len(self._pending), self._run_id, self.tracking_uri
        )

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- worker -----------------------------------------------------------------
    def _open_run(self, client: Any) -> str:
        from mlflow.entities import Param

        exp = client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(self.experiment)
        run = client.create_run(exp_id, run_name=self.run_name, tags=self.tags)
        params = [Param(k, str(v)[:6000]) for k, v in sorted(self.params.items())]
        client.log_batch(run.info.run_id, params=params)
        return str(run.info.run_id)

    def _deliver(self, client: Any) -> None:
        from mlflow.entities import Metric

        while self._pending:
            item = self._pending[0]
            if isinstance(item, _Artifact):
                if item.path.exists():
                    client.log_artifact(self._run_id, str(item.path), item.artifact_path)
                    item.path.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        item.path.parent.rmdir()  # the private folder of this copy
            else:
                metrics = [Metric(k, v, item.timestamp_ms, item.step) for k, v in item.values.items()]
                client.log_batch(self._run_id, metrics=metrics)
            self._pending.pop(0)

    def _work(self) -> None:
        client = None
        while True:
            stopping = self._stop.is_set()
            while True:
                try:
                    self._pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if client is None:
                    client = new_client(self.tracking_uri, timeout_seconds=self.timeout_seconds)
                with store_lock(self.tracking_uri):
                    if self._run_id is None:
                        self._run_id = self._open_run(client)
                        log.info(
                            "MLflow run %s in experiment %r at %s", self._run_id, self.experiment, self.tracking_uri
                        )
                    self._deliver(client)
                if self._state != "ok":
                    self._state, self._detail = "ok", ""
                if stopping:
                    client.set_terminated(self._run_id)
                    return
            except Exception as exc:  # noqa: BLE001 - any failure of the tracking server degrades, never kills
                if self._state != "degraded":
                    log.warning(
                        "MLflow at %s unavailable, queueing (%d pending): %s",
                        self.tracking_uri,
                        len(self._pending),
                        exc,
                    )
                self._state, self._detail = "degraded", f"{type(exc).__name__}: {exc}"[:300]
                if stopping:
                    return
            self._stop.wait(self.retry_seconds if self._state == "degraded" else 0.5)
