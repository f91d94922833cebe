"""The model bank's state on disk, so that a restart loses no learning.

The engine only copies the state (its one pause); a writer thread serialises and writes
it atomically, and every n-th checkpoint also goes to the service's MLflow run. A replica
that starts without local state (a new node, no volume) resumes from the newest
checkpoint uploaded there.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from intelligence.runtime.model_specs import StartupError
from intelligence.settings import Settings
from models import checkpoint
from models.bank import ModelBank, progress_of

log = logging.getLogger(__name__)


def checkpoint_name(shard: int) -> str:
    return f"bank-shard{shard}.pkl"


def checkpoint_path(settings: Settings) -> Path:
    """This shard's checkpoint: in ``storage.checkpoint_dir`` (shared by a sharded fleet), else the state directory."""
    return settings.storage.resolved_checkpoint_dir() / checkpoint_name(settings.engine.shard_index)


def restore(settings: Settings, path: Path, signature: dict[str, Any]) -> dict[str, Any]:
    """The saved state (empty when there is none), fetched from MLflow first when there is no local file."""
    if not path.exists() and settings.mlflow.enabled and settings.mlflow.tracking_uri:
        _fetch_from_mlflow(settings, path)
    if not path.exists():
        return {}
    try:
        return checkpoint.load(path, signature)
    except checkpoint.CheckpointError as exc:
        raise StartupError(str(exc)) from exc


def _fetch_from_mlflow(settings: Settings, path: Path) -> None:
    from models.tracking import fetch_checkpoint

    try:
        run_id = fetch_checkpoint(settings.mlflow_uri, settings.mlflow.experiment, path.name, path)
    except Exception as exc:  # noqa: BLE001 - MLflow down: start cold rather than not at all
        log.warning("no local checkpoint and MLflow at %s unavailable (%s): starting cold", settings.mlflow_uri, exc)
        return
    if run_id is not None:
        log.info("no local checkpoint: fetched %s from MLflow run %s", path.name, run_id)


class Checkpoints:
    def __init__(
        self,
        path: Path,
        signature: dict[str, Any],
        tracker: Any | None = None,
        upload_every: int = 0,
        meta: dict[str, Any] | None = None,
    ):
        self.path = path
        self._signature = signature
        self.meta = meta or {}  # who writes them (the shard and the fleet's size), in every checkpoint's header
        self.tracker = tracker  # models.tracking.MlflowTracker, or None
        self.upload_every = upload_every
        self.last_pause = 0.0  # seconds the engine spent copying its state for the last checkpoint
        self._writer: checkpoint.CheckpointWriter | None = None

    @property
    def signature(self) -> dict[str, Any]:
        return self._signature

    @signature.setter
    def signature(self, value: dict[str, Any]) -> None:
        """The models changed (a new champion): later checkpoints carry the new signature."""
        self._signature = value
        if self._writer is not None:
            self._writer.signature = value

    @property
    def writer(self) -> checkpoint.CheckpointWriter:
        if self._writer is None:
            self._writer = checkpoint.CheckpointWriter(
                self.path, self._signature, self._written, indexer=progress_of, meta=self.meta
            )
        return self._writer

    def take(self, bank: ModelBank, wait: bool = False, **meta: Any) -> None:
        """Copy the bank's state (the engine's only pause) and let the writer thread put it on disk; ``meta``
        overrides this checkpoint's header (the split a sharded replica follows at the time of the copy)."""
        started = time.perf_counter()
        snapshot = checkpoint.snapshot_copy(bank.snapshot())
        self.last_pause = time.perf_counter() - started
        self.writer.submit(snapshot, {**self.meta, **meta})
        if wait:
            self.writer.flush()

    def _written(self, path: Path, size: int, seconds: float) -> None:
        """On the writer thread: every n-th checkpoint also goes to the MLflow run (a copy, uploaded later)."""
        log.debug("checkpoint %s written: %.1f MB in %.2f s", path, size / 1e6, seconds)
        if self.tracker is None or not self.upload_every or self.writer.written % self.upload_every:
            return
        copy = path.parent / "upload" / str(self.writer.written) / path.name  # the artifact keeps the file's name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        self.tracker.log_artifact(copy, "checkpoints")

    def close(self, timeout: float = 120.0) -> None:
        self.writer.close(timeout=timeout)
        if self.writer.last_error is not None:
            log.error("final checkpoint to %s failed: %s", self.path, self.writer.last_error)
