"""Model tracking in MLflow: the only module that imports ``mlflow``.

Logging never blocks the engine: calls enqueue, a worker thread delivers. When the
tracking server is down or slow, what could not be logged stays queued (bounded)
and :meth:`MlflowTracker.health` says so; it is delivered once the server is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# An embedded SQLite store is created (and migrated) by its first client: the tracker's and the
# registry's threads take turns on it rather than race. A tracking server needs no such care.
_SQLITE_LOCK = threading.RLock()


_IMPORT_LOCK = threading.Lock()


def _import_mlflow() -> None:
    """Import mlflow's parts once, from one thread at a time (concurrent first imports deadlock)."""
    with _IMPORT_LOCK:
        import mlflow.artifacts
        import mlflow.entities
        import mlflow.exceptions
        import mlflow.tracking  # noqa: F401


def _store_lock(uri: str) -> Any:
    return _SQLITE_LOCK if uri.startswith("sqlite:") else _NoLock()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass(frozen=True, slots=True)
class TrackerHealth:
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
    def _client(self) -> Any:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, self.timeout_seconds))))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        _import_mlflow()
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

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
                    client = self._client()
                with _store_lock(self.tracking_uri):
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


_REGISTRY_URI_LOCK = threading.Lock()


class RegistryError(Exception):
    """The model registry refused or could not do what was asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    name: str
    version: int
    aliases: tuple[str, ...]
    spec: dict[str, Any]
    metrics: dict[str, float]
    run_id: str


class ModelRegistry:
    """Registered models in MLflow: one per signal, each version a model spec (kinds and params).

    Versions carry the accuracy measured for them (metrics of their run). Aliases, not
    stages (MLflow 3): ``champion`` is what the service runs, ``challenger`` what is
    evaluated next to it. :meth:`promote` moves ``champion`` only when the challenger's
    error beats the champion's by ``margin`` and records the evidence on the version;
    :meth:`rollback` gives ``champion`` back to the previous champion.
    Calls are synchronous (start-up and API requests, never the engine loop).
    """

    CHAMPION, CHALLENGER = "champion", "challenger"

    def __init__(self, tracking_uri: str, experiment: str = "icos-models", timeout_seconds: float = 10.0) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.timeout_seconds = timeout_seconds
        self._client_: Any = None

    def _client(self) -> Any:
        if self._client_ is None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, self.timeout_seconds))))
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            _import_mlflow()
            from mlflow.tracking import MlflowClient

            self._client_ = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client_

    def _artifact_location(self, experiment: str) -> str | None:
        """Artifacts of an embedded SQLite store go next to its file (a server decides for itself)."""
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri.removeprefix("sqlite:///")).resolve()
            return (db.parent / "mlflow-artifacts" / experiment.replace("/", "_")).as_uri()
        return None

    def _info(self, version: Any) -> ModelVersionInfo:
        client = self._client()
        run = client.get_run(version.run_id)
        spec = json.loads(run.data.tags.get("icos.spec", "{}"))
        return ModelVersionInfo(
            version.name,
            int(version.version),
            tuple(version.aliases or ()),
            spec,
            dict(run.data.metrics),
            version.run_id,
        )

    def register(
        self, name: str, spec: dict[str, Any], metrics: dict[str, float] | None = None, alias: str | None = None
    ) -> ModelVersionInfo:
        """A new version of ``name`` for ``spec``, with the accuracy measured for it."""
        client = self._client()
        from mlflow.exceptions import MlflowException

        experiment = f"{self.experiment}/{name}"  # an experiment per registered model (per signal)
        exp = client.get_experiment_by_name(experiment)
        exp_id = (
            exp.experiment_id
            if exp is not None
            else client.create_experiment(experiment, artifact_location=self._artifact_location(experiment))
        )
        body = json.dumps(spec, sort_keys=True, default=str)
        run = client.create_run(exp_id, run_name=f"register {name}", tags={"icos.spec": body, "icos.model": name})
        run_id = run.info.run_id
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "spec.json").write_text(body)
            client.log_artifacts(run_id, tmp, "model")
        flat = {
            f"{part}.{k}": str(v)[:6000]
            for part in ("forecaster", "detector")
            for k, v in spec.get(f"{part}_params", {}).items()
        }
        from mlflow.entities import Metric, Param

        params = [Param("forecaster", str(spec.get("forecaster"))), Param("detector", str(spec.get("detector")))]
        params += [Param(k, v) for k, v in sorted(flat.items())]
        now = int(time.time() * 1000)
        client.log_batch(
            run_id, metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()], params=params
        )
        client.set_terminated(run_id)
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id)
        if alias is not None:
            client.set_registered_model_alias(name, alias, version.version)
        log.info(
            "registered %s version %s (%s)%s",
            name,
            version.version,
            spec.get("forecaster"),
            f" as {alias}" if alias else "",
        )
        return self.get(name, int(version.version))

    def get(self, name: str, version: int) -> ModelVersionInfo:
        return self._info(self._client().get_model_version(name, str(version)))

    def by_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        client = self._client()
        from mlflow.exceptions import MlflowException

        try:
            return self._info(client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def load_spec(self, name: str, alias: str = CHAMPION) -> dict[str, Any]:
        """The spec behind ``models:/name@alias`` (read from the version's artifacts)."""
        self._client()  # imports mlflow safely
        import mlflow
        from mlflow.artifacts import download_artifacts

        with _REGISTRY_URI_LOCK, tempfile.TemporaryDirectory() as tmp:
            mlflow.set_registry_uri(self.tracking_uri)  # models:/ URIs resolve through the global registry URI
            path = download_artifacts(
                artifact_uri=f"models:/{name}@{alias}", dst_path=tmp, tracking_uri=self.tracking_uri
            )
            spec: dict[str, Any] = json.loads(Path(path, "spec.json").read_text())
        return spec

    def ensure_champion(self, name: str, spec: dict[str, Any]) -> ModelVersionInfo:
        """The champion of ``name``; on a first start (no champion yet) ``spec`` is registered as champion."""
        with _store_lock(self.tracking_uri):
            found = self.by_alias(name, self.CHAMPION)
            return found if found is not None else self.register(name, spec, alias=self.CHAMPION)

    def versions(self, name: str) -> list[ModelVersionInfo]:
        client = self._client()
        found = client.search_model_versions(f"name = '{name}'")
        return sorted((self.get(name, int(v.version)) for v in found), key=lambda v: v.version)  # with aliases

    def names(self) -> list[str]:
        return sorted(m.name for m in self._client().search_registered_models())

    def record_metrics(self, name: str, version: int, metrics: dict[str, float]) -> None:
        """Add measured accuracy (e.g. of a live evaluation window) to a version's run."""
        client = self._client()
        run_id = client.get_model_version(name, str(version)).run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))

    def promote(self, name: str, version: int, metric: str = "mase", margin: float = 0.02) -> ModelVersionInfo:
        """Make ``version`` champion if its ``metric`` (lower is better) beats the champion's by ``margin``.

        The evidence (both values, the margin) is recorded as tags of the promoted version;
        a refusal raises :class:`RegistryError` with the same evidence.
        """
        client = self._client()
        challenger = self.get(name, version)
        champion = self.by_alias(name, self.CHAMPION)
        if champion is not None and champion.version == version:
            raise RegistryError(f"{name} version {version} is already the champion")
        if champion is not None:
            ours, theirs = challenger.metrics.get(metric), champion.metrics.get(metric)
            if ours is None:
                raise RegistryError(f"{name}: version {version} has no measured {metric!r}; not promoted")
            if theirs is not None and not ours <= theirs * (1.0 - margin):
                raise RegistryError(
                    f"{name}: version {version} ({metric} {ours:.4g}) does not beat champion version "
                    f"{champion.version} ({metric} {theirs:.4g}) by {margin:.0%}; not promoted"
                )
            evidence = (
                f"{metric} {ours:.4g} vs {theirs:.4g} of version {champion.version} (margin {margin:.0%})"
                if theirs is not None
                else f"{metric} {ours:.4g}; champion version {champion.version} had none measured"
            )
            client.set_model_version_tag(name, str(version), "icos.previous_champion", str(champion.version))
        else:
            evidence = "no champion before"
        client.set_model_version_tag(name, str(version), "icos.promotion", evidence)
        client.set_registered_model_alias(name, self.CHAMPION, str(version))
        log.info("promoted %s version %d to champion: %s", name, version, evidence)
        return self.get(name, version)

    def rollback(self, name: str) -> ModelVersionInfo:
        """Give ``champion`` back to the version it was taken from."""
        client = self._client()
        champion = self.by_alias(name, self.CHAMPION)
        if champion is None:
            raise RegistryError(f"{name} has no champion to roll back")
        tags = client.get_model_version(name, str(champion.version)).tags
        previous = tags.get("icos.previous_champion")
        if previous is None:
            raise RegistryError(f"{name}: champion version {champion.version} has no previous champion")
        client.set_registered_model_alias(name, self.CHAMPION, previous)
        client.set_model_version_tag(name, previous, "icos.rollback_from", str(champion.version))
        log.info("rolled %s back from version %d to %s", name, champion.version, previous)
        return self.get(name, int(previous))


def log_run(
    tracking_uri: str, experiment: str, run_name: str, params: dict[str, Any], metrics: dict[str, float]
) -> str:
    """One finished run (e.g. a backtest) with its params and metrics; returns its id."""
    _import_mlflow()
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    with _store_lock(tracking_uri):
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
    _import_mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=runs):
        if any(f.path == f"checkpoints/{name}" for f in client.list_artifacts(run.info.run_id, "checkpoints")):
            with tempfile.TemporaryDirectory() as tmp:
                got = Path(client.download_artifacts(run.info.run_id, f"checkpoints/{name}", tmp))
                destination.parent.mkdir(parents=True, exist_ok=True)
                got.replace(destination)
            return str(run.info.run_id)
    return None
