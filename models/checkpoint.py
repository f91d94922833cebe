"""Checkpoints of the model bank: atomic, versioned with the model kinds' params."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 3  # 2: the bank's snapshot (per-series models and vectorised fleets); 3: fleet state as columns ([..., slot])


class CheckpointError(Exception):
    """The checkpoint cannot be used (corrupt, or made by incompatible model kinds)."""


def dump(snapshot: dict[str, Any], signature: dict[str, Any]) -> bytes:
    """Serialise a bank snapshot; call from the engine thread, write from anywhere."""
    return pickle.dumps({"format": FORMAT, "signature": signature, "bank": snapshot}, protocol=pickle.HIGHEST_PROTOCOL)


def snapshot_copy(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A private copy of a bank snapshot (arrays are copied with memcpy), safe to write from another thread."""
    return copy.deepcopy(snapshot)


def write_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, signature: dict[str, Any]) -> dict[Any, Any]:
    """Read a checkpoint written by :func:`dump`, refusing one of other model kinds or params."""
    try:
        data = pickle.loads(path.read_bytes())  # noqa: S301 - our own file in our state directory
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {data.get('format') if isinstance(data, dict) else '?'}, expected {FORMAT}"
        )
    if data.get("signature") != signature:
        raise CheckpointError(
            f"checkpoint {path} was made by other model kinds or params "
            f"({data.get('signature')} != {signature}); move it away to start cold"
        )
    snapshot: dict[Any, Any] = data["bank"]
    return snapshot


class CheckpointWriter:
    """Writes checkpoints from snapshots on its own thread, so the engine never waits for the disk.

    ``submit`` hands over a snapshot (already copied by the engine thread) and returns at
    once; if a write is still running, the newest snapshot replaces any waiting one (a
    slow disk skips checkpoints instead of queueing them). ``flush`` waits until
    everything submitted is on disk.
    """

    def __init__(self, path: Path, signature: dict[str, Any], on_written: Any = None) -> None:
        self.path = path
        self.signature = signature
        self.on_written = on_written  # called with (path, bytes written, seconds) after each write
        self._lock = threading.Condition()
        self._waiting: dict[str, Any] | None = None
        self._busy = False
        self._closed = False
        self.written = 0
        self.skipped = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._work, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def submit(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            if self._waiting is not None:
                self.skipped += 1
            self._waiting = snapshot
            self._lock.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted snapshot is written; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._waiting is None and not self._busy, timeout)

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._waiting is not None or self._closed)
                if self._waiting is None:
                    return
                snapshot, self._waiting, self._busy = self._waiting, None, True
            try:
                started = time.perf_counter()
                payload = dump(snapshot, self.signature)
                write_atomically(self.path, payload)
                self.written += 1
                self.last_error = None
                if self.on_written is not None:
                    self.on_written(self.path, len(payload), time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 - a failed write is reported, the next one may succeed
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("checkpoint to %s failed: %s", self.path, exc)
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
