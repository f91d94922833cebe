"""Registered models in MLflow: one per signal, each version a model spec, aliases for what runs.

Calls are synchronous (start-up and API requests, never the engine loop).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.tracking.client import new_client, store_lock

log = logging.getLogger(__name__)

# models:/ URIs resolve through mlflow's one global registry URI: set it and download under this lock.
_REGISTRY_URI_LOCK = threading.Lock()


class RegistryError(Exception):
    """The model registry refused or could not do what was asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """One version of a registered model: its spec, its aliases and the accuracy measured for it."""

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
    """

    CHAMPION, CHALLENGER = "champion", "challenger"

    def __init__(self, tracking_uri: str, experiment: str = "icos-models", timeout_seconds: float = 10.0) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.timeout_seconds = timeout_seconds
        self._client_: Any = None

    def _client(self) -> Any:
        if self._client_ is None:
            self._client_ = new_client(
                self.tracking_uri, registry_uri=self.tracking_uri, timeout_seconds=self.timeout_seconds
            )
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
        with store_lock(self.tracking_uri):
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
