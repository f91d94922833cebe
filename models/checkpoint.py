"""Checkpoints of the model bank: atomic, versioned with the model kinds' params, with an index of their series.

A checkpoint file is two pickles one after the other: a small header (format, the model
signature, who wrote it, and each series' last learnt timestamp and sample count) and the
bank's snapshot. :func:`read_header` reads only the first, so a replica can see which series
another replica's checkpoint holds, and how far each got, without loading its models.
Files of formats 2 and 3 (the fleets' state in rows) are refused with a clear message.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intelligence.vocabulary import SeriesKey

log = logging.getLogger(__name__)

# 4: a header with the index of the series, then the bank's snapshot with the fleets' state as columns ([..., slot]);
# 3: the same header, fleets' state in rows; 2: the snapshot alone, in rows. 2 and 3 cannot be read into columns.
FORMAT = 4
READABLE = (4,)

Index = dict[SeriesKey, tuple[float, int]]  # per series: last learnt timestamp, samples learnt
Indexer = Callable[[dict[str, Any]], Index]


class CheckpointError(Exception):
    """The checkpoint cannot be used (corrupt, or made by incompatible model kinds)."""


@dataclass(frozen=True, slots=True)
class Header:
    """What a checkpoint says about itself; ``series`` is None for a file of format 2 (no index)."""

    format: int
    signature: dict[str, Any]
    series: Index | None
    meta: dict[str, Any] = field(default_factory=dict)  # who wrote it (the runtime puts the shard there)


def dump(
    snapshot: dict[str, Any], signature: dict[str, Any], series: Index | None = None, meta: dict[str, Any] | None = None
) -> bytes:
    """Serialise a bank snapshot with its header; call from the engine thread, write from anywhere."""
    header = {"format": FORMAT, "signature": signature, "series": series, "meta": meta or {}}
    return pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL) + pickle.dumps(
        {"bank": snapshot}, protocol=pickle.HIGHEST_PROTOCOL
    )


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


_UNREADABLE = (OSError, pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError, TypeError, ValueError)


def _header(path: Path, first: Any) -> Header:
    if not isinstance(first, dict) or first.get("format") not in READABLE:
        found = first.get("format") if isinstance(first, dict) else "?"
        raise CheckpointError(f"checkpoint {path} has format {found}, expected one of {READABLE}")
    series = first.get("series") if first["format"] >= 3 else None
    return Header(first["format"], first.get("signature", {}), series, dict(first.get("meta") or {}))


def read_header(path: Path) -> Header:
    """The header alone (for format 2, the whole file is read: it has no separate header)."""
    try:
        with path.open("rb") as fh:
            first = pickle.load(fh)  # noqa: S301 - our own file in our state directory
    except _UNREADABLE as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    return _header(path, first)


def read(path: Path) -> tuple[Header, dict[Any, Any]]:
    """Header and snapshot, whatever the signature (see :func:`load` to refuse other model kinds)."""
    return _read(path, None)


def load(path: Path, signature: dict[str, Any]) -> dict[Any, Any]:
    """Read a checkpoint written by :func:`dump`, refusing one of other model kinds or params."""
    return _read(path, signature)[1]


def _read(path: Path, signature: dict[str, Any] | None) -> tuple[Header, dict[Any, Any]]:
    try:
        with path.open("rb") as fh:
            first = pickle.load(fh)  # noqa: S301 - our own file in our state directory
            header = _header(path, first)
            if signature is not None and header.signature != signature:
                raise CheckpointError(
                    f"checkpoint {path} was made by other model kinds or params "
                    f"({header.signature} != {signature}); move it away to start cold"
                )
            body = pickle.load(fh) if header.format >= 3 else first  # noqa: S301
    except _UNREADABLE as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    snapshot: dict[Any, Any] = body["bank"]
    return header, snapshot


class CheckpointWriter:
    """Writes checkpoints from snapshots on its own thread, so the engine never waits for the disk.

    ``submit`` hands over a snapshot (already copied by the engine thread) and returns at
    once; if a write is still running, the newest snapshot replaces any waiting one (a
    slow disk skips checkpoints instead of queueing them). ``flush`` waits until
    everything submitted is on disk.
    """

    def __init__(
        self,
        path: Path,
        signature: dict[str, Any],
        on_written: Any = None,
        indexer: Indexer | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.signature = signature
        self.on_written = on_written  # called with (path, bytes written, seconds) after each write
        self.indexer = indexer  # the index of the series, from a snapshot (on this thread); None: no index
        self.meta = meta or {}
        self._lock = threading.Condition()
        self._waiting: tuple[dict[str, Any], dict[str, Any]] | None = None  # a snapshot and its header's meta
        self._busy = False
        self._closed = False
        self.written = 0
        self.skipped = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._work, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def submit(self, snapshot: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Write ``snapshot`` (with ``meta`` in its header, else the writer's own) as soon as the disk is free."""
        with self._lock:
            if self._waiting is not None:
                self.skipped += 1
            self._waiting = (snapshot, dict(self.meta if meta is None else meta))
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
                (snapshot, meta), self._waiting, self._busy = self._waiting, None, True
            try:
                started = time.perf_counter()
                index = self.indexer(snapshot) if self.indexer is not None else None
                payload = dump(snapshot, self.signature, index, meta)
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
